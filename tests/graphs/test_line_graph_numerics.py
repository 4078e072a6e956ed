"""The faster edge doubling (issue 15) returns exactly what the previous implementation did.

``reference_symmetrize`` is the previous :func:`symmetrize_edges` (a row-wise
``torch.unique(dim=0)``), kept here as the oracle: edges, images, vectors and their order must be
identical, so the ALIGNN forward pass and its gradients are unchanged bit for bit.
"""

from __future__ import annotations

import pytest
import torch

from crystalgnn.graphs.batching import collate_graphs
from crystalgnn.graphs.crystal_graph import GraphConfig, build_graph
from crystalgnn.graphs.line_graph import _bond_ids, bond_cosines, line_graph, symmetrize_edges


def reference_symmetrize(edge_index, edge_shift, edge_vec):
    src, dst = edge_index
    all_src, all_dst = torch.cat((src, dst)), torch.cat((dst, src))
    all_shift, all_vec = torch.cat((edge_shift, -edge_shift)), torch.cat((edge_vec, -edge_vec))
    key = torch.cat((all_src[:, None], all_dst[:, None], all_shift.to(all_src.dtype)), dim=1)
    _, inverse = torch.unique(key, dim=0, return_inverse=True)
    n_unique = int(inverse.max()) + 1 if inverse.numel() else 0
    position = torch.arange(key.shape[0])
    first = torch.full((n_unique,), key.shape[0], dtype=torch.long).scatter_reduce(0, inverse, position, reduce="amin")
    first, _ = torch.sort(first)
    return torch.stack((all_src[first], all_dst[first])), all_shift[first], all_vec[first]


def assert_identical(got, want):
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_periodic_multigraphs(seed):
    """Repeated bonds, reverses already present, negative and large images."""
    gen = torch.Generator().manual_seed(seed)
    n, e = 9, 300
    ei = torch.randint(0, n, (2, e), generator=gen)
    shift = torch.randint(-3, 4, (e, 3), generator=gen)
    shift[:40] = torch.randint(-40, 41, (40, 3), generator=gen)
    ei[:, 50:80], shift[50:80] = ei[:, 0:30].flip(0), -shift[0:30]  # reverses of earlier bonds
    ei[:, 80:90], shift[80:90] = ei[:, 0:10], shift[0:10]  # exact duplicates
    vec = torch.randn(e, 3, generator=gen)
    got = symmetrize_edges(ei, shift, vec)
    assert_identical(got, reference_symmetrize(ei, shift, vec))
    assert got[0].shape[1] < 2 * e  # the duplicates and present reverses were merged


def test_real_batch_and_downstream_line_graph(structures):
    """A batch of real crystals at ALIGNN's settings: same undirected graph, line graph, angles."""
    cfg = GraphConfig(radius=8.0, max_neighbors=12)
    batch = collate_graphs([build_graph(s, cfg) for s in structures.values()])
    got = symmetrize_edges(batch.edge_index, batch.edge_shift, batch.edge_vec)
    want = reference_symmetrize(batch.edge_index, batch.edge_shift, batch.edge_vec)
    assert_identical(got, want)
    li = line_graph(got[0], batch.num_nodes, edge_shift=got[1])
    assert torch.equal(li, line_graph(want[0], batch.num_nodes, edge_shift=want[1]))
    assert torch.equal(bond_cosines(got[2], li), bond_cosines(want[2], li))


def test_empty_graph():
    ei, shift, vec = torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 3)
    assert_identical(symmetrize_edges(ei, shift, vec), reference_symmetrize(ei, shift, vec))


def test_bond_ids_fall_back_when_the_packed_key_would_overflow():
    """Node ids near 2^40 make the mixed-radix key too wide: the row-wise unique takes over and
    the groups are the same as those of a plain row-wise unique."""
    big = 2**40
    src = torch.tensor([0, big, 0, big, 5])
    dst = torch.tensor([big, 0, big, 0, 5])
    shift = torch.tensor([[0, 0, 1], [0, 0, -1], [0, 0, 1], [0, 0, 0], [1, 1, 1]])
    ids = _bond_ids(src, dst, shift)
    rows = torch.cat((src[:, None], dst[:, None], shift), dim=1)
    assert torch.equal(ids, torch.unique(rows, dim=0, return_inverse=True)[1])
    assert ids[0] == ids[2] and len(set(ids.tolist())) == 4
