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

Every search first refuses cells it cannot handle safely (:func:`cell_problems`, raising
:class:`UnsafeCellError` with the reason): non-finite numbers, degenerate cells (shortest height
below :data:`MIN_CELL_FLATNESS` of the longest edge: a scale-free test, so a tiny and a huge cell
of one shape are judged alike) and searches over more than :data:`MAX_IMAGES` periodic images.
Such cells crash (SIGFPE) or hang the compiled back ends: a perovskite with c = 10^6 Å, or a cell
with alpha = beta = gamma = 120 degrees whose volume is rounding noise. vesin also divides by zero
when its cell grid, capped at 10^5 cells, collapses along one axis (very elongated cells that pass
the tests above); those cells are searched with ase instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

NeighborBackend = Literal["auto", "numpy", "vesin", "ase", "pymatgen"]

#: ``"auto"`` uses the dense numpy back end while N * N * images stays below this.
DENSE_LIMIT = 400_000

#: a cell whose shortest height (distance between opposite faces) is below this fraction of its
#: longest edge is degenerate. Measured: >= 0.024 over the perovskites, the first 5,000 rows of
#: mp-36k and seven other shared datasets; 4e-6 for a perovskite with c = 10^6 Å and 4e-8 for
#: a = b = c = 4 Å, alpha = beta = gamma = 120 degrees (a volume of rounding noise).
MIN_CELL_FLATNESS = 1e-4
#: a search over more periodic images than this is refused (real crystals at 8 Å: <= 1,331;
#: the limit leaves room for radii up to ~30 Å around the flattest real cells, heights ~1.3 Å)
MAX_IMAGES = 1_000_000
#: vesin's cap on its cell grid (``MAX_NUMBER_OF_CELLS`` in its cpu_cell_list.cpp)
_VESIN_MAX_CELLS = 1e5


class UnsafeCellError(ValueError):
    """A cell the neighbour search refuses (the message is the reason, ``"kind: details"``)."""


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

    Raises:
        UnsafeCellError: for a cell :func:`cell_problems` refuses, or non-finite positions.
    """
    cart = np.ascontiguousarray(cart_coords, dtype=np.float64)
    cell = np.ascontiguousarray(lattice, dtype=np.float64)
    problem = cell_problem(cell, cutoff)
    if problem is None and not np.isfinite(cart).all():
        problem = "non-finite atomic positions"
    if problem is not None:
        raise UnsafeCellError(problem)
    if backend in ("auto", "numpy"):
        reach = image_reach(cell, cutoff)
        n_images = int(np.prod(2 * reach + 1))
        if backend == "numpy" or len(cart) ** 2 * n_images <= DENSE_LIMIT:
            return _dense_neighbors(cart, cell, cutoff, reach)
        backend = "vesin"
    if backend == "vesin" and _vesin_grid_collapses(cell, cutoff):
        backend = "ase"
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


def cell_heights(lattice: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of one cell (3,) or a stack of cells (B, 3); 0 when flat."""
    lat = np.asarray(lattice, dtype=np.float64)
    a, b, c = lat[..., 0, :], lat[..., 1, :], lat[..., 2, :]
    areas = np.stack([_cross_norm(b, c), _cross_norm(c, a), _cross_norm(a, b)], axis=-1)
    volume = np.abs(
        a[..., 0] * (b[..., 1] * c[..., 2] - b[..., 2] * c[..., 1])
        + a[..., 1] * (b[..., 2] * c[..., 0] - b[..., 0] * c[..., 2])
        + a[..., 2] * (b[..., 0] * c[..., 1] - b[..., 1] * c[..., 0])
    )[..., None]
    heights: np.ndarray = volume / np.where(areas > 0, areas, np.inf)  # 0 for a flat cell
    return heights


def _cross_norm(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """|u x v| along the last axis (written out: ``np.cross`` costs more on small stacks)."""
    x = u[..., 1] * v[..., 2] - u[..., 2] * v[..., 1]
    y = u[..., 2] * v[..., 0] - u[..., 0] * v[..., 2]
    z = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    norm: np.ndarray = np.sqrt(x * x + y * y + z * z)
    return norm


class CellShape(NamedTuple):
    """What the cell tests look at, for one cell, in Python floats."""

    finite: bool
    heights: tuple[float, float, float]  # distances between opposite faces, Å (0 when flat)
    longest: float  # longest edge, Å
    volume: float  # Å^3


def cell_shape(lattice: np.ndarray) -> CellShape:
    """:class:`CellShape` of one (3, 3) cell: plain float arithmetic, ~100 times cheaper than
    the numpy calls that would do the same on nine numbers (one call per structure built).
    """
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = np.asarray(lattice, dtype=np.float64).tolist()
    if not all(math.isfinite(x) for x in (ax, ay, az, bx, by, bz, cx, cy, cz)):
        return CellShape(False, (0.0, 0.0, 0.0), math.inf, 0.0)
    bc = (by * cz - bz * cy, bz * cx - bx * cz, bx * cy - by * cx)
    ca = (cy * az - cz * ay, cz * ax - cx * az, cx * ay - cy * ax)
    ab = (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)
    volume = abs(ax * bc[0] + ay * bc[1] + az * bc[2])
    areas = [math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) for v in (bc, ca, ab)]
    h = [volume / area if area > 0 else 0.0 for area in areas]
    longest = math.sqrt(max(ax * ax + ay * ay + az * az, bx * bx + by * by + bz * bz, cx * cx + cy * cy + cz * cz))
    return CellShape(True, (h[0], h[1], h[2]), longest, volume)


def cell_problem(lattice: np.ndarray, cutoff: float) -> str | None:
    """:func:`cell_problems` of one cell (3, 3) and cutoff, on plain floats."""
    shape = cell_shape(lattice)
    shortest = min(shape.heights)
    if not shape.finite or shortest <= 0.0:
        return _cell_problem_text(shape.finite, shortest, shape.longest, math.inf, cutoff)
    flatness = shortest / shape.longest
    images = math.prod(2.0 * math.ceil(cutoff / h) + 1.0 for h in shape.heights)
    if flatness >= MIN_CELL_FLATNESS and images <= MAX_IMAGES:
        return None
    return _cell_problem_text(True, shortest, shape.longest, images, cutoff)


def cell_problems(lattices: np.ndarray, cutoffs: np.ndarray | float) -> list[str | None]:
    """Why the neighbour search refuses each of a stack of cells (B, 3, 3), or ``None``.

    Refused, in this order: lattices with a non-finite number; degenerate cells, whose shortest
    height is below :data:`MIN_CELL_FLATNESS` of their longest edge (the ratio does not change
    with the cell's scale); searches within ``cutoffs`` (one per cell, Å) that would cover more
    than :data:`MAX_IMAGES` periodic images. A few array operations for the whole stack.
    """
    cells = np.asarray(lattices, dtype=np.float64).reshape(-1, 3, 3)
    cut = np.broadcast_to(np.asarray(cutoffs, dtype=np.float64), (len(cells),))
    if len(cells) == 1:
        return [cell_problem(cells[0], float(cut[0]))]
    finite = np.asarray(np.isfinite(cells).all(axis=(1, 2)))
    if not finite.all():
        cells = np.where(finite[:, None, None], cells, 1.0)
    heights = cell_heights(cells)
    shortest = heights.min(axis=1)
    longest = np.sqrt(np.einsum("bij,bij->bi", cells, cells).max(axis=1))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        flatness = shortest / longest  # NaN for a zero cell: refused below
        images = np.prod(2.0 * np.ceil(cut[:, None] / heights) + 1.0, axis=1)
    bad = ~finite | ~(flatness >= MIN_CELL_FLATNESS) | ~(images <= MAX_IMAGES)
    out: list[str | None] = [None] * len(cells)
    for b in np.flatnonzero(bad).tolist():
        out[b] = _cell_problem_text(bool(finite[b]), float(shortest[b]), float(longest[b]), float(images[b]), cut[b])
    return out


def _cell_problem_text(finite: bool, shortest: float, longest: float, images: float, cutoff: float) -> str:
    """The reason a cell is refused (``"kind: details"``), from what :func:`cell_problems` measured."""
    if not finite:
        return "non-finite lattice: the cell has NaN or infinite lattice vectors"
    flatness = shortest / longest if shortest > 0 else 0.0
    if not flatness >= MIN_CELL_FLATNESS:
        return (
            f"degenerate cell: its shortest height ({shortest:.3g} Å) is {flatness:.2g} of its longest "
            f"edge ({longest:.3g} Å), below {MIN_CELL_FLATNESS:.0e}"
        )
    return (
        f"neighbour search too large: {images:.3g} periodic images within {cutoff:g} Å "
        f"(limit {MAX_IMAGES:.0e}; shortest cell height {shortest:.3g} Å)"
    )


def _vesin_grid_collapses(cell: np.ndarray, cutoff: float) -> bool:
    """Whether vesin's cell grid would get zero cells along an axis (it then divides by zero).

    vesin splits the cell into trunc(height / cutoff) cells per axis (at least 1); above
    10^5 cells in all it rescales the three counts, which truncates to 0 along an axis much
    shorter than the others (e.g. heights 2.6, 2540 and 2540 Å at 8 Å; cells that also fail
    :data:`MIN_CELL_FLATNESS`, like heights 3.9, 3.9 and 10^6 Å, are refused before).
    """
    n = [max(math.trunc(h / cutoff), 1) for h in cell_shape(cell).heights]
    if n[0] * n[1] * n[2] <= _VESIN_MAX_CELLS:
        return False
    ratio_xy, ratio_yz = n[0] / n[1], n[1] / n[2]
    n2 = math.trunc(math.pow(_VESIN_MAX_CELLS / (ratio_xy * ratio_yz * ratio_yz), 1.0 / 3.0))
    n1 = math.trunc(ratio_yz * n2)
    n0 = math.trunc(ratio_xy * n1)
    return min(n0, n1, n2) < 2  # < 1 crashes; the margin absorbs rounding of the cube root


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

    Raises:
        UnsafeCellError: when :func:`cell_problems` refuses a cell, or ``reach`` spans more
            than :data:`MAX_IMAGES` images.
    """
    cells = np.asarray(lattices, dtype=np.float64)
    problem = next((p for p in cell_problems(cells, cutoffs) if p is not None), None)
    if problem is None and float(np.prod(2.0 * np.asarray(reach, dtype=np.float64) + 1.0)) > MAX_IMAGES:
        problem = f"neighbour search too large: reach {list(reach)} spans more than {MAX_IMAGES:.0e} images"
    if problem is not None:
        raise UnsafeCellError(problem)
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
