"""Selection of each atom's k nearest neighbours from a list of periodic pairs, with
deterministic tie-breaking (the rule of :mod:`crystalgnn.graphs.crystal_graph`).

CGCNN (Xie & Grossman, PRL 120, 145301, 2018) joins every atom to its ``max_neighbors`` nearest
neighbours. When several neighbours sit at the same distance (every high-symmetry crystal) the
choice at the cut must not depend on the neighbour-search backend or on float noise: distances
within :data:`TIE_TOLERANCE` count as equal and are ordered by neighbour index, then image
shift. Both the one-structure and the batched graph assembly use these functions, so they give
identical edges in identical order (tested).
"""

from __future__ import annotations

import numpy as np

TIE_TOLERANCE = 1e-6  # Å: neighbour distances closer than this count as tied


def start_radius(n_atoms: np.ndarray | int, volume: np.ndarray | float, max_neighbors: int) -> np.ndarray | float:
    """First search radius: a sphere holding about 2k atoms at the cell's density, plus 0.5 Å."""
    density = np.asarray(n_atoms) / volume
    return (3.0 * 2.0 * max_neighbors / (4.0 * np.pi * density)) ** (1.0 / 3.0) + 0.5


def sort_and_cap(
    center: np.ndarray,
    nbr: np.ndarray,
    shift: np.ndarray,
    vec: np.ndarray,
    dist: np.ndarray,
    n_centers: int,
    max_neighbors: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Order pairs by centre and distance and keep the ``max_neighbors`` nearest of each centre.

    Distances equal within TIE_TOLERANCE are ordered by neighbour index, then image shift
    (ties are grouped by consecutive differences, so float noise in the last bits never reorders
    them). Also returns the pair count of each centre and whether the tie group of its k-th
    neighbour closes before its last listed pair (then no pair beyond the search radius could
    have joined the tie).
    """
    counts = np.bincount(center, minlength=n_centers)
    if len(dist) == 0:
        return center, nbr, shift, vec, dist, counts, np.ones(n_centers, dtype=bool)
    # one argsort of a combined key (centre-major, then distance); order among distances equal
    # to ~1e-11 Å is arbitrary, which the tie groups below absorb
    order = np.argsort(center * (float(dist.max()) + 1.0) + dist)
    center, nbr, shift, dist = center[order], nbr[order], shift[order], dist[order]
    new_group = np.ones(len(dist), dtype=bool)
    new_group[1:] = (center[1:] != center[:-1]) | (np.diff(dist) > TIE_TOLERANCE)
    group = np.cumsum(new_group)
    low = shift.min(axis=0)
    span = shift.max(axis=0) - low + 1
    n_nbr = int(nbr.max()) + 1
    if float(group[-1] + 1) * n_nbr * float(np.prod(span)) < 2.0**62:  # one int64 key
        key = ((group * n_nbr + nbr) * span[0] + (shift[:, 0] - low[0])) * span[1] + (shift[:, 1] - low[1])
        second = np.argsort(key * span[2] + (shift[:, 2] - low[2]))
    else:  # pragma: no cover - astronomically large shifts
        second = np.lexsort((shift[:, 2], shift[:, 1], shift[:, 0], nbr, group))
    order = order[second]
    center, nbr, shift, dist, group = center[second], nbr[second], shift[second], dist[second], group[second]
    vec = vec[order]
    closed = np.ones(n_centers, dtype=bool)
    if max_neighbors is None:
        return center, nbr, shift, vec, dist, counts, closed
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    kth = starts[has] + np.minimum(counts[has], max_neighbors) - 1
    last = starts[has] + counts[has] - 1
    closed[has] = group[kth] != group[last]
    keep = (np.arange(len(center)) - starts[center]) < max_neighbors
    return center[keep], nbr[keep], shift[keep], vec[keep], dist[keep], counts, closed
