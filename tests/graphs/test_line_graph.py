"""The atomistic line graph: triplet counts and angles checked analytically on cubic cells."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystalgnn.graphs.crystal_graph import GraphConfig, build_graph
from crystalgnn.graphs.line_graph import bond_cosines, line_graph, line_graph_size, symmetrize_edges


def angles_deg(edge_vec: torch.Tensor, index: torch.Tensor) -> np.ndarray:
    return np.round(np.degrees(np.arccos(bond_cosines(edge_vec, index).double().numpy())), 6)


def counts(values: np.ndarray) -> dict[float, int]:
    keys, n = np.unique(np.round(values, 3), return_counts=True)
    return {float(k): int(c) for k, c in zip(keys, n, strict=True)}


@pytest.fixture
def srtio3_graph(structures):
    return build_graph(structures["srtio3"], GraphConfig(radius=8.0, max_neighbors=12))


def test_ti_o_network_of_srtio3(structures):
    """Only the Ti-O bonds (1.95 Å): Ti has 6 O, each O 2 Ti -> 12 directed bonds.

    Triplets through O (O->Ti bonds continuing a Ti->O bond): 6 bonds x 2 = 12, half the
    backtrack (0°), half straight through O (Ti-O-Ti = 180°). Through Ti: 6 x 6 = 36, of which 6
    backtracks, 6 trans O-Ti-O (180°) and 24 cis (90°). Total 48 = 12 + 24 + 12.
    """
    g = build_graph(structures["srtio3"], GraphConfig(radius=3.0, max_neighbors=None))
    keep = g.edge_dist < 2.0
    ei, shift, vec = g.edge_index[:, keep], g.edge_shift[keep], g.edge_vec[keep]
    assert ei.shape[1] == 12
    idx = line_graph(ei, 5)
    assert idx.shape == (2, 48) and line_graph_size(ei, 5) == 48
    assert counts(angles_deg(vec, idx)) == {0.0: 12, 90.0: 24, 180.0: 12}
    # the middle atom is shared: head of e1 == tail of e2
    assert torch.equal(ei[1, idx[0]], ei[0, idx[1]])
    no_back = line_graph(ei, 5, edge_shift=shift, backtracking=False)
    assert counts(angles_deg(vec, no_back)) == {90.0: 24, 180.0: 12}
    z = g.z
    mid = ei[1, idx[0]]
    ti_mid = z[mid] == 22
    assert counts(angles_deg(vec, idx[:, ti_mid])) == {0.0: 6, 90.0: 24, 180.0: 6}  # O-Ti-O
    assert counts(angles_deg(vec, idx[:, ~ti_mid])) == {0.0: 6, 180.0: 6}  # Ti-O-Ti


def test_srtio3_12nn_line_graph(srtio3_graph):
    """12-NN graph: every atom receives exactly 12 bonds, so |T| = 12 |E| = 12 * 60 = 720, and
    every angle is one between two perovskite neighbour directions (a/2)(h, k, l), h,k,l in
    {-1, 0, 1} (all neighbours within the 12-NN shells: Ti-O, Sr-O, O-O and Ti-Sr)."""
    g = srtio3_graph
    assert g.edge_index.shape[1] == 60
    idx = line_graph(g.edge_index, 5)
    assert idx.shape[1] == 720 == line_graph_size(g.edge_index, 5)
    dirs = np.array([v for v in itertools.product((-1, 0, 1), repeat=3) if any(v)], dtype=float)
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    allowed = np.unique(np.round(np.degrees(np.arccos(np.clip(unit @ unit.T, -1, 1))), 3))
    got = np.unique(np.round(angles_deg(g.edge_vec, idx), 3))
    assert set(got) <= set(allowed), sorted(set(got) - set(allowed))
    # species-resolved: the O-Ti-O and Ti-O-Ti angles of the octahedral network
    src, dst = g.edge_index
    z = g.z
    k, j, i = src[idx[0]], dst[idx[0]], dst[idx[1]]
    o_ti_o = (z[k] == 8) & (z[j] == 22) & (z[i] == 8)
    ti_o_ti = (z[k] == 22) & (z[j] == 8) & (z[i] == 22)
    assert counts(angles_deg(g.edge_vec, idx[:, o_ti_o])) == {0.0: 6, 90.0: 24, 180.0: 6}
    assert counts(angles_deg(g.edge_vec, idx[:, ti_o_ti])) == {0.0: 6, 180.0: 6}


def test_backtrack_removal_keeps_other_images():
    """Simple cubic, 1 atom: all 6 neighbours are images of the atom itself. 36 triplets, 6 of
    them backtracks (same image); dropping them must keep the 30 genuine angles (24 x 90° and
    6 x 180°) although k == i for all of them."""
    s = Structure(Lattice.cubic(2.5), ["Po"], [[0, 0, 0]])
    g = build_graph(s, GraphConfig(radius=3.0, max_neighbors=None))
    assert g.edge_index.shape[1] == 6
    full = line_graph(g.edge_index, 1)
    assert counts(angles_deg(g.edge_vec, full)) == {0.0: 6, 90.0: 24, 180.0: 6}
    pruned = line_graph(g.edge_index, 1, edge_shift=g.edge_shift, backtracking=False)
    assert counts(angles_deg(g.edge_vec, pruned)) == {90.0: 24, 180.0: 6}
    with pytest.raises(ValueError):
        line_graph(g.edge_index, 1, backtracking=False)


def test_matches_brute_force_on_random_multigraph():
    gen = torch.Generator().manual_seed(0)
    n, e = 7, 40
    ei = torch.randint(0, n, (2, e), generator=gen)
    idx = line_graph(ei, n)
    brute = {(a, b) for a in range(e) for b in range(e) if ei[1, a] == ei[0, b]}
    assert {tuple(p) for p in idx.T.tolist()} == brute
    assert idx.shape[1] == len(brute) == line_graph_size(ei, n)


def test_symmetrize_edges_is_exact_and_idempotent(srtio3_graph):
    g = srtio3_graph
    ei, shift, vec = symmetrize_edges(g.edge_index, g.edge_shift, g.edge_vec)
    keys = {(int(a), int(b), *map(int, s)) for a, b, s in zip(ei[0], ei[1], shift, strict=True)}
    assert len(keys) == ei.shape[1]  # no duplicate bond
    assert all((b, a, -x, -y, -w) in keys for a, b, x, y, w in keys)  # every reverse present
    assert torch.equal(ei[:, :60], g.edge_index) and torch.equal(vec[:60], g.edge_vec)  # originals first
    again = symmetrize_edges(ei, shift, vec)
    assert again[0].shape == ei.shape
    # the 12-NN relation is not symmetric (Sr lists 12 O, Ti lists 6 O + 6 of its 8 Sr), so the
    # undirected graph has more than 60 bonds
    assert ei.shape[1] > 60
