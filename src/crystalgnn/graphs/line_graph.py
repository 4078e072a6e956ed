r"""The atomistic line graph of ALIGNN (Choudhary & DeCost, npj Comput. Mater. 7, 185, 2021).

Nodes of the line graph are the (directed) bonds of the crystal graph; a line-graph edge joins
bond :math:`e_1 = (k \to j)` to bond :math:`e_2 = (j \to i)` whenever the two share the middle
atom :math:`j` (the head of :math:`e_1` is the tail of :math:`e_2`). Each such triplet carries
the bond angle at :math:`j`,

.. math::
    \cos\theta_{kji} = \frac{\mathbf r_{jk} \cdot \mathbf r_{ji}}{|\mathbf r_{jk}|\,|\mathbf r_{ji}|},
    \qquad \mathbf r_{jk} = \mathrm{vec}(e_1),\ \mathbf r_{ji} = -\mathrm{vec}(e_2),

where ``vec`` is the graph field ``edge_vec`` (``r_src + shift @ L - r_dst``, i.e. from the
receiving atom to the sending one). Messages on the line graph flow ``e_1 -> e_2``
(``line_index[0] = e_1``, ``line_index[1] = e_2``), the PyG convention.

Backtracking: ALIGNN builds its line graph with DGL's ``g.line_graph(shared=True)``, whose
default ``backtracking=True`` keeps the immediate backtrack :math:`k \to j \to k` (same periodic
image, :math:`\theta = 0`, :math:`\cos\theta = 1`). :func:`line_graph` therefore keeps it by
default; ``backtracking=False`` drops exactly those triplets (same atom *and* same image: the
other periodic images of :math:`k` are genuine angles and stay).

Size: bond :math:`e_2 = (j \to i)` takes part in :math:`\deg^{in}(j)` triplets, so
:math:`|T| = \sum_{(j\to i)} \deg^{in}(j)`; on a k-nearest-neighbour graph (every in-degree k)
that is exactly :math:`k\,|E| = k^2 |V|` (144 |V| for ALIGNN's k = 12, directed), and about
:math:`\sum_j \deg(j)^2` once the graph is made undirected. Everything is vectorised (a CSR
gather; no Python loop over atoms, bonds or structures), so the line graph of a whole batch is
built in one call inside the model's forward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor


def line_graph_size(edge_index: Tensor, num_nodes: int) -> int:
    """Number of triplets :func:`line_graph` returns (with backtracking), without building them."""
    src, dst = edge_index
    indeg = torch.bincount(dst, minlength=num_nodes)
    return int(indeg[src].sum())


def line_graph(
    edge_index: Tensor,
    num_nodes: int,
    *,
    edge_shift: Tensor | None = None,
    backtracking: bool = True,
) -> Tensor:
    r"""All bond pairs :math:`(k \to j, j \to i)` of a (multi)graph, as line-graph edges.

    Args:
        edge_index: (2, E) crystal-graph edges, ``edge_index[0]`` the sending atom.
        num_nodes: number of atoms.
        edge_shift: (E, 3) integer lattice images (needed only with ``backtracking=False``).
        backtracking: keep the immediate backtracks :math:`k \to j \to k` (ALIGNN does).

    Returns:
        (2, T) int64: row 0 the incoming bond :math:`e_1`, row 1 the outgoing bond :math:`e_2`;
        grouped by :math:`e_2` in edge order.
    """
    src, dst = edge_index[0], edge_index[1]
    device = src.device
    n_edges = src.numel()
    order = torch.argsort(dst, stable=True)  # bonds grouped by the atom they point to
    indeg = torch.bincount(dst, minlength=num_nodes)
    ptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=device)
    ptr[1:] = torch.cumsum(indeg, 0)
    counts = indeg[src]  # bond e2 = (j -> i) continues every bond that ends at j
    total = int(counts.sum())
    e2 = torch.repeat_interleave(torch.arange(n_edges, device=device), counts, output_size=total)
    block_start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(total, device=device) - torch.repeat_interleave(block_start, counts, output_size=total)
    e1 = order[ptr[src[e2]] + rank]
    index = torch.stack((e1, e2))
    if not backtracking:
        if edge_shift is None:
            raise ValueError("backtracking=False needs edge_shift (a backtrack is the same atom and image)")
        back = (src[e1] == dst[e2]) & ((edge_shift[e1] + edge_shift[e2]) == 0).all(dim=1)
        index = index[:, ~back]
    return index


def bond_cosines(edge_vec: Tensor, line_index: Tensor) -> Tensor:
    r"""Cosine of the angle at the shared atom for every triplet of ``line_index``.

    With ``edge_vec`` pointing from the receiving atom to the sending one, the bonds seen from
    the middle atom :math:`j` are :math:`\mathrm{vec}(e_1)` (to :math:`k`) and
    :math:`-\mathrm{vec}(e_2)` (to :math:`i`). Clamped to [-1, 1].

    Shapes:
        edge_vec (E, 3), line_index (2, T) -> (T,)
    """
    a = edge_vec[line_index[0]]
    b = -edge_vec[line_index[1]]
    cos: Tensor = (a * b).sum(dim=-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp(min=1e-12)
    return cos.clamp(-1.0, 1.0)


def symmetrize_edges(edge_index: Tensor, edge_shift: Tensor, edge_vec: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Make a directed periodic multigraph undirected, as ALIGNN's graph builder does.

    Every bond :math:`(j \to i, S)` gets its reverse :math:`(i \to j, -S)` with the opposite
    vector; bonds present in both directions are kept once (identified by atoms and integer
    image, so the result is exact). ALIGNN's ``build_undirected_edgedata`` adds both directions
    of every k-nearest-neighbour pair in the same way.

    Returns:
        (edge_index (2, E'), edge_shift (E', 3), edge_vec (E', 3)), ``E <= E' <= 2E``; the
        original bonds keep their own (not recomputed) vectors.
    """
    src, dst = edge_index
    all_src = torch.cat((src, dst))
    all_dst = torch.cat((dst, src))
    all_shift = torch.cat((edge_shift, -edge_shift))
    all_vec = torch.cat((edge_vec, -edge_vec))
    inverse = _bond_ids(all_src, all_dst, all_shift)
    n_unique = int(inverse.max()) + 1 if inverse.numel() else 0
    position = torch.arange(inverse.shape[0], device=inverse.device)
    first = torch.full((n_unique,), inverse.shape[0], dtype=torch.long, device=inverse.device)
    first = first.scatter_reduce(0, inverse, position, reduce="amin")
    first, _ = torch.sort(first)  # originals first, in their order, then the added reverses
    return torch.stack((all_src[first], all_dst[first])), all_shift[first], all_vec[first]


def _bond_ids(src: Tensor, dst: Tensor, shift: Tensor) -> Tensor:
    """Equal ids for equal (src, dst, integer image) bonds (``torch.unique``'s inverse).

    The row is packed into one int64 (mixed radix over the observed ranges) so the unique is a
    1-D sort, several times faster than ``torch.unique(dim=0)`` on the (n, 5) rows; the same
    groups either way. Falls back to the row-wise unique if the packed key could overflow.
    """
    cols = [src.long(), dst.long(), *shift.long().unbind(dim=1)]
    if src.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=src.device)
    key = torch.zeros_like(cols[0])
    capacity = 1
    for c in cols:
        low = int(c.min())
        span = int(c.max()) - low + 1
        capacity *= span
        if capacity >= 2**62:
            rows = torch.stack(cols, dim=1)
            row_ids: Tensor = torch.unique(rows, dim=0, return_inverse=True)[1]
            return row_ids
        key = key * span + (c - low)
    ids: Tensor = torch.unique(key, return_inverse=True)[1]
    return ids


__all__ = ["bond_cosines", "line_graph", "line_graph_size", "symmetrize_edges"]
