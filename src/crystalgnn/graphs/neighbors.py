"""Periodic neighbour lists: every (centre, neighbour, image) pair within a cutoff.

Interchangeable back ends of :func:`periodic_neighbors` return the same full list (both
directions, periodic images as separate pairs, self-images included, the zero-distance self pair
excluded):

* ``"vesin"``: a cell-list code in C++, the fastest one structure at a time
  (``benchmarks/graph_build.py``);
* ``"numpy"``: dense enumeration of every (i, j, image) triple with array operations (no
  compiled code; ``"auto"`` uses it for small cells);
* ``"ase"``: ``ase.neighborlist.neighbor_list`` (also C-accelerated);
* ``"pymatgen"``: ``Structure.get_neighbor_list`` (Cython).

:func:`batched_dense_neighbors` runs the dense search on a whole batch of small cells at once;
graph building uses it by default (``GraphConfig(backend="auto")``), several times faster than
vesin on cells of a few atoms, where per-call overhead outweighs the arithmetic.

All return centre-to-neighbour vectors ``r_j + S @ L - r_i`` with the integer image shift ``S``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

NeighborBackend = Literal["auto", "numpy", "vesin", "ase", "pymatgen"]

#: ``"auto"`` uses the dense numpy back end while N * N * images stays below this.
DENSE_LIMIT = 400_000


@dataclass
class NeighborPairs:
    """A flat periodic neighbour list (one row per directed pair)."""

    center: np.ndarray  # (P,) int64, index i
    neighbor: np.ndarray  # (P,) int64, index j
    shift: np.ndarray  # (P, 3) int64, lattice image of j
    vector: np.ndarray  # (P, 3) float64, r_j + shift @ lattice - r_i
    distance: np.ndarray  # (P,) float64


def periodic_neighbors(
    cart_coords: np.ndarray,
    lattice: np.ndarray,
    cutoff: float,
    backend: NeighborBackend = "vesin",
) -> NeighborPairs:
    """All pairs closer than ``cutoff`` (Å) in a fully periodic cell.

    Args:
        cart_coords: (N, 3) cartesian positions in Å.
        lattice: (3, 3) lattice vectors as rows, in Å.
        cutoff: radius in Å.
        backend: which library computes the list.
    """
    cart = np.ascontiguousarray(cart_coords, dtype=np.float64)
    cell = np.ascontiguousarray(lattice, dtype=np.float64)
    if backend in ("auto", "numpy"):
        reach = image_reach(cell, cutoff)
        n_images = int(np.prod(2 * reach + 1))
        if backend == "numpy" or len(cart) ** 2 * n_images <= DENSE_LIMIT:
            return _dense_neighbors(cart, cell, cutoff, reach)
        backend = "vesin"
    if backend == "vesin":
        from vesin import NeighborList

        calc = NeighborList(cutoff=float(cutoff), full_list=True)
        i, j, s, d = calc.compute(points=cart, box=cell, periodic=True, quantities="ijSd")
        s = s.astype(np.int64)
        vec = cart[j] + s @ cell - cart[i]
    elif backend == "ase":
        from ase.neighborlist import primitive_neighbor_list

        i, j, s, d = primitive_neighbor_list(  # type: ignore[no-untyped-call]  # ase leaves it unannotated
            "ijSd", [True, True, True], cell, cart, float(cutoff), self_interaction=False
        )
        s = s.astype(np.int64)
        vec = cart[j] + s @ cell - cart[i]
    elif backend == "pymatgen":
        from pymatgen.core import Lattice, Structure

        st = Structure(Lattice(cell), ["H"] * len(cart), cart, coords_are_cartesian=True)
        i, j, s, d = st.get_neighbor_list(float(cutoff))
        s = np.asarray(s, dtype=np.int64).reshape(-1, 3)
        vec = cart[j] + s @ cell - cart[i]
    else:
        raise ValueError(f"unknown neighbour back end {backend!r}; use vesin, ase or pymatgen")
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    d = np.asarray(d, dtype=np.float64)
    keep = d > 1e-8
    if not keep.all():
        i, j, s, vec, d = i[keep], j[keep], s[keep], vec[keep], d[keep]
    return NeighborPairs(i, j, s, vec, d)


def image_reach(lattice: np.ndarray, cutoff: float | np.ndarray) -> np.ndarray:
    """How many cell images along each axis can hold a point within ``cutoff`` of the cell.

    The distance between lattice planes (a_i) is V / |a_j x a_k|; images up to
    ceil(cutoff / spacing) away on each side are needed (positions are wrapped into the cell first).
    ``lattice`` may be one (3, 3) cell or a stack (B, 3, 3) with one cutoff each: reach (B, 3).
    """
    lattice = np.asarray(lattice, dtype=np.float64)
    volume = np.abs(np.linalg.det(lattice))[..., None]
    cross = np.cross(lattice[..., [1, 2, 0], :], lattice[..., [2, 0, 1], :])
    spacing = volume / np.linalg.norm(cross, axis=-1)
    reach: np.ndarray = np.ceil(np.asarray(cutoff, dtype=np.float64)[..., None] / spacing).astype(np.int64)
    return reach


def _dense_neighbors(cart: np.ndarray, cell: np.ndarray, cutoff: float, reach: np.ndarray) -> NeighborPairs:
    """Every (i, j, image) within the cutoff: :func:`batched_dense_neighbors` on a batch of one.

    Rows come out grouped by centre and, within a centre, ordered by neighbour index then image
    shift (lexicographic).
    """
    p = batched_dense_neighbors(cart[None], cell[None], np.array([cutoff], dtype=np.float64), reach)
    return NeighborPairs(p.center, p.neighbor, p.shift, p.vector, p.distance)


@dataclass
class BatchedNeighborPairs(NeighborPairs):
    """A :class:`NeighborPairs` list over several structures; ``structure`` says whose each pair is."""

    structure: np.ndarray  # (P,) int64, index of the structure in the batch


def batched_dense_neighbors(
    cart_coords: np.ndarray, lattices: np.ndarray, cutoffs: np.ndarray, reach: np.ndarray
) -> BatchedNeighborPairs:
    """The dense search of :func:`periodic_neighbors` on a batch of cells in one set of array operations.

    Small cells (a few atoms, a few hundred images) cost more in per-call overhead than in
    arithmetic; stacking B of them makes each step one numpy call for the whole batch.

    Args:
        cart_coords: (B, N, 3) cartesian positions; rows of NaN pad structures with fewer atoms.
        lattices: (B, 3, 3) lattice vectors as rows.
        cutoffs: (B,) radius per structure, Å.
        reach: (3,) images to search on each side along each axis, enough for every structure
            (e.g. the maximum of :func:`image_reach` over the batch).

    Rows come out grouped by structure, then centre, then neighbour index, then image shift.
    """
    cells = np.asarray(lattices, dtype=np.float64)
    b_count, n = cart_coords.shape[:2]
    # einsum (not BLAS) for every number that reaches the output: the same bits for a structure
    # whatever batch it is in
    frac = np.einsum("bnk,bkl->bnl", cart_coords, np.linalg.inv(cells))
    wrap = np.floor(frac)
    inner = np.einsum("bnk,bkl->bnl", frac - wrap, cells)  # positions wrapped into the cell
    axes = [np.arange(-r, r + 1) for r in reach]
    shifts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    offsets = np.einsum("sk,bkl->bsl", shifts.astype(np.float64), cells)  # (B, S, 3)
    # |delta + offset|^2 = |delta|^2 + 2 delta . offset + |offset|^2, the middle term one batched
    # matrix product, so the (B, N, N, S, 3) vectors are never formed; vectors and distances of
    # the pairs found are then computed directly.
    delta = (inner[:, None, :, :] - inner[:, :, None, :]).reshape(b_count, n * n, 3)  # r_j - r_i
    dist2 = np.matmul(delta, offsets.transpose(0, 2, 1))
    dist2 *= 2.0
    dist2 += np.einsum("bpk,bpk->bp", delta, delta)[:, :, None]
    dist2 += np.einsum("bsk,bsk->bs", offsets, offsets)[:, None, :]
    cut2 = (np.asarray(cutoffs, dtype=np.float64) ** 2)[:, None, None] + 1e-9  # margin: rounding
    b, p, s = np.nonzero(dist2 < cut2)  # NaN padding compares False
    vec = delta[b, p] + offsets[b, s]
    dist = np.sqrt(np.einsum("pk,pk->p", vec, vec))
    keep = (dist > 1e-8) & (dist < np.asarray(cutoffs, dtype=np.float64)[b])
    b, p, s, vec, dist = b[keep], p[keep], s[keep], vec[keep], dist[keep]
    i, j = np.divmod(p, n)
    true_shift = shifts[s] - (wrap[b, j] - wrap[b, i]).astype(np.int64)
    return BatchedNeighborPairs(i, j, true_shift, vec, dist, b)
