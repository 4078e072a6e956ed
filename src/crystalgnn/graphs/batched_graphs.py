"""Crystal graphs of many structures at once (:func:`build_graph_arrays_many`).

Small cells with a neighbour cap are searched together by
:func:`~crystalgnn.graphs.neighbors.batched_dense_neighbors` (one dense distance computation per
batch of structures sharing an image range) and their k nearest neighbours selected for the
whole batch by :func:`~crystalgnn.graphs.neighbor_selection.sort_and_cap`. The result is the
graph :func:`~crystalgnn.graphs.crystal_graph.build_graph_arrays` builds one structure at a time:
the same edges in the same order (tested); a structure the batch cannot settle goes through it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crystalgnn.graphs.crystal_graph import (
    GraphBuildError,
    GraphConfig,
    build_graph_arrays,
    graph_fields,
    stacked_lattices,
    structure_problems,
)
from crystalgnn.graphs.neighbor_selection import sort_and_cap, start_radius
from crystalgnn.graphs.neighbors import batched_dense_neighbors, image_reach

#: the batched dense search takes structures with at most this many (i, j, image) candidates
DENSE_BATCH_CANDIDATES = 50_000
#: and stacks structures until a batch holds this many candidates (memory: ~10 bytes each)
DENSE_BATCH_BUDGET = 1_000_000


def build_graph_arrays_many(
    items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], config: GraphConfig
) -> list[tuple[bool, dict[str, np.ndarray] | str]]:
    """:func:`build_graph_arrays` for many structures: ``(True, arrays)`` or ``(False, reason)`` each.

    With ``backend="auto"`` (the default) small cells with a neighbour cap are searched in
    batches by :func:`~crystalgnn.graphs.neighbors.batched_dense_neighbors` and their neighbours
    selected for the whole batch at once (the same edges, in the same order, as one at a time;
    tested); larger cells, and any structure the batch cannot settle (too few neighbours within
    the first search radius, overlapping atoms), go through :func:`build_graph_arrays` with vesin.
    Structures that :func:`structure_problems` refuses are rejected before any search.
    """
    out: list[tuple[bool, dict[str, np.ndarray] | str] | None] = [None] * len(items)
    lattices = stacked_lattices(items) if items else None
    problems = structure_problems(items, config, lattices)
    for i, why in enumerate(problems):
        if why is not None:
            out[i] = (False, why)
    fine = [i for i, why in enumerate(problems) if why is None]
    dense = config.neighbors == "nearest" and config.max_neighbors is not None and not config.pad_to_max_neighbors
    if config.backend == "auto" and dense and fine:
        fine_items = [items[i] for i in fine]
        assert lattices is not None
        for group in dense_groups(fine_items, config, lattices[fine]):
            built = _build_dense_group([fine_items[i] for i in group], config)
            for idx, arrays in zip(group, built, strict=True):
                if arrays is not None:
                    out[fine[idx]] = (True, arrays)
    for i, result in enumerate(out):
        if result is None:
            try:
                out[i] = (True, build_graph_arrays(*items[i], config))
            except GraphBuildError as exc:
                out[i] = (False, str(exc))
    return out  # type: ignore[return-value]


def _search_ranges(
    items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], max_neighbors: int, lattices: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Atoms, stacked lattices, volumes, first search radii and image reach of many structures."""
    n = np.fromiter((len(it[2]) for it in items), dtype=np.int64, count=len(items))
    lat = stacked_lattices(items) if lattices is None else lattices
    volume = np.abs(np.linalg.det(lat))
    r0 = np.asarray(start_radius(n, np.maximum(volume, 1e-12), max_neighbors))  # an array: n is one
    with np.errstate(divide="ignore", invalid="ignore"):  # degenerate cells: never batched
        reach = image_reach(lat, r0)
    reach[volume <= 1e-6] = 0
    return n, lat, volume, r0, reach


def dense_groups(
    items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], config: GraphConfig, lattices: np.ndarray | None = None
) -> list[list[int]]:
    """Batches of small structures sharing one image range (indices into ``items``; ``lattices``:
    theirs stacked, when the caller has them).
    """
    assert config.max_neighbors is not None
    n, _, volume, r0, reach = _search_ranges(items, config.max_neighbors, lattices)
    candidates = n * n * np.prod(2 * reach + 1, axis=1)
    eligible = np.flatnonzero((r0 < config.radius) & (candidates <= DENSE_BATCH_CANDIDATES) & (volume > 1e-6))
    order = eligible[np.lexsort((n[eligible], reach[eligible, 2], reach[eligible, 1], reach[eligible, 0]))]
    reach_key = [tuple(r) for r in reach[order].tolist()]
    groups: list[list[int]] = []
    current: list[int] = []
    current_reach: tuple[int, ...] = ()  # set with the first member of each group
    for i, rk, c in zip(order.tolist(), reach_key, candidates[order].tolist(), strict=True):
        # candidates grow with n, which is sorted: the last member's count bounds the batch
        if current and (rk != current_reach or (len(current) + 1) * c > DENSE_BATCH_BUDGET):
            groups.append(current)
            current = []
        if not current:
            current_reach = rk
        current.append(i)
    if current:
        groups.append(current)
    return groups  # singletons too: a structure's graph must not depend on its batch-mates


def _build_dense_group(
    items: list[tuple[np.ndarray, np.ndarray, np.ndarray]], config: GraphConfig
) -> list[dict[str, np.ndarray] | None]:
    """Graph arrays of one batch of structures; ``None`` for those the batch cannot settle."""
    k = config.max_neighbors
    assert k is not None
    n, lat, _, r0, reach = _search_ranges(items, k)
    b_count, n_max = len(items), int(n.max())
    cart = np.full((b_count, n_max, 3), np.nan)
    for b, it in enumerate(items):
        cart[b, : n[b]] = it[1]
    pairs = batched_dense_neighbors(cart, lat, r0, reach.max(axis=0))
    gcenter = pairs.structure * n_max + pairs.center
    center, nbr, shift, vec, dist, counts, closed = sort_and_cap(
        gcenter, pairs.neighbor, pairs.shift, pairs.vector, pairs.distance, b_count * n_max, k
    )
    real = np.arange(n_max)[None, :] < n[:, None]
    settled = ((counts.reshape(b_count, n_max) >= k) & closed.reshape(b_count, n_max) | ~real).all(axis=1)
    settled[np.unique(pairs.structure[pairs.distance < config.min_distance])] = False
    owner = center // n_max
    bounds = np.concatenate(([0], np.cumsum(np.bincount(owner, minlength=b_count))))
    edge_index = np.stack((nbr, center - owner * n_max))
    edge_vec, edge_dist = vec.astype(np.float32), dist.astype(np.float32)
    out: list[dict[str, np.ndarray] | None] = []
    for b, (lattice, pos, z) in enumerate(items):
        if not settled[b]:
            out.append(None)
            continue
        lo, hi = bounds[b], bounds[b + 1]
        out.append(graph_fields(lattice, pos, z, edge_index[:, lo:hi], shift[lo:hi], edge_vec[lo:hi], edge_dist[lo:hi]))
    return out
