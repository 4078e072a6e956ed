"""The crystal graph of Xie & Grossman (PRL 120, 145301, 2018), as a PyG ``Data`` object.

Atoms are nodes; every atom is joined to its ``max_neighbors`` nearest neighbours within
``radius`` (periodic images are separate edges, so the graph is a multigraph and an atom can be
its own neighbour through an image). Unlike the reference code there is no zero padding: an atom
with fewer neighbours has fewer edges. ``pad_to_max_neighbors=True`` reproduces the reference
behaviour (fake edges to atom 0 at distance ``radius + 1``) for its pretrained weights.

Ties at the last kept neighbour are broken deterministically: distances within 1e-6 Å count as
equal, and equal ones are ordered by neighbour index, then image shift. The Gaussian distance expansion of CGCNN is applied by
the model (:class:`crystalgnn.models.basis.GaussianBasis`), so one cached graph serves every model.

Graph fields (PyG convention, messages flow ``edge_index[0] = j -> edge_index[1] = i``):

=================  =========  ==================================================
``z``              (N,)       atomic numbers
``pos``            (N, 3)     cartesian positions, Å
``lattice``        (1, 3, 3)  lattice vectors as rows, Å
``edge_index``     (2, E)     (neighbour j, centre i)
``edge_shift``     (E, 3)     integer lattice image of j
``edge_vec``       (E, 3)     r_j + shift @ lattice - r_i, Å
``edge_dist``      (E,)       |edge_vec|, Å (``radius + 1`` for padding edges)
``edge_weight``    (E,)       Voronoi graphs only: the face's solid angle / 4 pi
=================  =========  ==================================================

``GraphConfig(neighbors="voronoi")`` joins atoms whose Voronoi cells share a face instead
(:mod:`crystalgnn.graphs.voronoi`; iCGCNN, OGCNN), ``max_neighbors`` then keeping the faces of
largest solid angle.

The k-nearest selection and its tie rule are :mod:`crystalgnn.graphs.neighbor_selection`; many
structures at once: :func:`crystalgnn.graphs.batched_graphs.build_graph_arrays_many` (the same
edges in the same order, tested).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data import Data

from crystalgnn.graphs.columns import new_data
from crystalgnn.graphs.neighbor_selection import sort_and_cap, start_radius
from crystalgnn.graphs.neighbors import (
    NeighborBackend,
    NeighborPairs,
    UnsafeCellError,
    cell_problem,
    cell_problems,
    cell_shape,
    periodic_neighbors,
)
from crystalgnn.graphs.voronoi import VoronoiError, cap_by_solid_angle, voronoi_neighbors

GRAPH_CODE_VERSION = 3  # bump when the content of built graphs changes (invalidates caches)
#: atoms at least d apart fill at most pi / sqrt(18) = 0.7405 of space (Kepler's bound, which
#: holds for periodic packings), so a cell with less than (pi / 6) / 0.7405 = 0.7071 d^3 of volume
#: per atom holds overlapping atoms; rounded down
PACKING_VOLUME = 0.70


class GraphBuildError(ValueError):
    """A structure cannot be turned into a graph (isolated atom, overlapping atoms, ...)."""


@dataclass(frozen=True)
class GraphConfig:
    """How crystal graphs are built.

    Args:
        radius: neighbour cutoff in Å (CGCNN: 8).
        max_neighbors: keep at most this many nearest neighbours per atom (CGCNN: 12);
            ``None`` keeps every neighbour within ``radius`` (MEGNet, SchNet).
        pad_to_max_neighbors: add the reference code's padding edges (to atom 0 at
            ``radius + 1``) so every atom has exactly ``max_neighbors`` edges.
        min_distance: atoms closer than this (Å) are rejected as overlapping.
        backend: neighbour-list library: ``auto`` (default: small cells searched in batches
            by array operations when many graphs are built at once, vesin otherwise; the
            fastest by measurement, see ``benchmarks/RESULTS.md``), ``vesin``, ``numpy``,
            ``ase`` or ``pymatgen``. Every back end gives the same graph.
        neighbors: ``"nearest"`` (CGCNN's nearest neighbours within ``radius``) or
            ``"voronoi"`` (atoms sharing a Voronoi face, with the solid angle as
            ``edge_weight``; ``radius`` bounds the periodic-image search).
    """

    radius: float = 8.0
    max_neighbors: int | None = 12
    pad_to_max_neighbors: bool = False
    min_distance: float = 0.5
    backend: NeighborBackend = "auto"
    neighbors: Literal["nearest", "voronoi"] = "nearest"

    def __post_init__(self) -> None:
        if self.radius <= 0:
            raise ValueError("radius must be positive")
        if self.max_neighbors is not None and self.max_neighbors < 1:
            raise ValueError("max_neighbors must be >= 1 or None")
        if self.pad_to_max_neighbors and self.max_neighbors is None:
            raise ValueError("pad_to_max_neighbors needs max_neighbors")
        if self.neighbors not in ("nearest", "voronoi"):
            raise ValueError(f"neighbors must be 'nearest' or 'voronoi', not {self.neighbors!r}")
        if self.pad_to_max_neighbors and self.neighbors == "voronoi":
            raise ValueError("pad_to_max_neighbors applies to nearest-neighbour graphs only")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GraphConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def cache_key(self) -> str:
        """Identifies graph content: parameters plus the graph code version."""
        d = self.to_dict()
        d.pop("backend")  # every back end yields the same graph
        if d["neighbors"] == "nearest":  # the keys of graphs built before the option existed
            d.pop("neighbors")
        d["code_version"] = GRAPH_CODE_VERSION
        return json.dumps(d, sort_keys=True)


def structure_arrays(structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lattice (3,3), cartesian coords (N,3), atomic numbers (N,)) of an ordered structure.

    Cartesian coordinates are ``np.dot(frac, lattice)`` in one product (not site by site), the
    same numbers the parser processes compute, so cache keys agree to the last bit.
    """
    return structure_arrays_many([structure])[0]


def structure_arrays_many(structures: Sequence[Structure]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`structure_arrays` of many structures.

    Sites of parsed structures share one ``Composition`` object per element
    (:mod:`crystalgnn.data.parsing`), so the atomic number is looked up once per composition
    object seen in this call instead of through ``site.specie`` (an occupancy check per site).
    """
    z_of: dict[int, tuple[int, object]] = {}  # id -> (Z, the object, held so the id stays its own)
    out = []
    for structure in structures:
        z = []
        for site in structure:
            comp = site.species
            known = z_of.get(id(comp))
            if known is None:
                known = z_of[id(comp)] = (site.specie.Z, comp)  # site.specie raises if disordered
            z.append(known[0])
        lattice = structure.lattice.matrix
        out.append((lattice, np.dot(structure.frac_coords, lattice), np.array(z, dtype=np.int64)))
    return out


def structure_problems(
    items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    config: GraphConfig,
    lattices: np.ndarray | None = None,
) -> list[str | None]:
    """Why each (lattice, cartesian coords, atomic numbers) must be refused before any
    neighbour search, or ``None``: the cell tests of
    :func:`~crystalgnn.graphs.neighbors.cell_problems` at ``config.radius`` and less volume
    per atom than atoms ``config.min_distance`` apart need (:data:`PACKING_VOLUME`); for one
    structure also non-finite positions (the batched search finds no pair for a NaN position,
    so such a structure is left to the one-structure path, which names it). ``lattices``: the
    items' lattices stacked (B, 3, 3) as float64, when the caller has them.
    """
    if len(items) == 1:  # one structure: plain floats, not numpy calls on nine numbers
        lattice, cart, z = items[0]
        why = cell_problem(lattice, config.radius)
        if why is None and not np.isfinite(cart).all():
            why = "non-finite atomic positions"
        if why is None and len(z):
            why = _crowded(cell_shape(lattice).volume / len(z), config)
        return [why]
    if not items:
        return []
    lat = stacked_lattices(items) if lattices is None else lattices
    out = cell_problems(lat, config.radius)
    n = np.fromiter((len(it[2]) for it in items), dtype=np.int64, count=len(items))
    per_atom = np.abs(np.linalg.det(np.where(np.isfinite(lat), lat, 0.0))) / np.maximum(n, 1)
    for b in np.flatnonzero((n > 0) & (per_atom < PACKING_VOLUME * config.min_distance**3)).tolist():
        if out[b] is None:
            out[b] = _crowded(float(per_atom[b]), config)
    return out


def _crowded(volume_per_atom: float, config: GraphConfig) -> str | None:
    if volume_per_atom >= PACKING_VOLUME * config.min_distance**3:
        return None
    return (
        f"overlapping atoms: {volume_per_atom:.3g} Å^3 per atom is too little for atoms {config.min_distance} Å apart"
    )


def build_graph_arrays(
    lattice: np.ndarray, cart: np.ndarray, z: np.ndarray, config: GraphConfig
) -> dict[str, np.ndarray]:
    """Neighbour selection on raw arrays; returns the graph fields as numpy arrays.

    Raises:
        GraphBuildError: for an atom with no neighbour within the radius, two atoms closer
            than ``config.min_distance``, or a cell the neighbour search refuses
            (:func:`structure_problems`: degenerate, non-finite, an absurd number of images).
    """
    n = len(z)
    problem = structure_problems([(lattice, cart, z)], config)[0]
    if problem is not None:
        raise GraphBuildError(problem)
    if config.neighbors == "voronoi":
        return _voronoi_graph_arrays(lattice, cart, z, config)
    try:
        center, nbr, shift, vec, dist, counts = _nearest_pairs(lattice, cart, config)
    except UnsafeCellError as exc:  # pragma: no cover - structure_problems refuses these first
        raise GraphBuildError(str(exc)) from exc
    if (counts == 0).any():
        k = int(np.flatnonzero(counts == 0)[0])
        raise GraphBuildError(f"isolated atom: site {k} (Z={int(z[k])}) has no neighbour within {config.radius} Å")
    if config.pad_to_max_neighbors and config.max_neighbors is not None:
        missing = config.max_neighbors - np.minimum(counts, config.max_neighbors)
        if missing.any():
            pad_center = np.repeat(np.arange(n), missing)
            m = len(pad_center)
            center = np.concatenate((center, pad_center))
            nbr = np.concatenate((nbr, np.zeros(m, dtype=np.int64)))
            shift = np.concatenate((shift, np.zeros((m, 3), dtype=np.int64)))
            vec = np.concatenate((vec, np.zeros((m, 3))))
            dist = np.concatenate((dist, np.full(m, config.radius + 1.0)))
            order = np.argsort(center, kind="stable")
            center, nbr, shift, vec, dist = center[order], nbr[order], shift[order], vec[order], dist[order]
    return graph_fields(lattice, cart, z, np.stack((nbr, center)), shift, vec, dist)


def _voronoi_graph_arrays(
    lattice: np.ndarray, cart: np.ndarray, z: np.ndarray, config: GraphConfig
) -> dict[str, np.ndarray]:
    """The Voronoi graph's fields (:mod:`crystalgnn.graphs.voronoi`), ``edge_weight`` included."""
    backend: NeighborBackend = "vesin" if config.backend == "auto" else config.backend
    try:
        found = voronoi_neighbors(cart, lattice, 2.0 * config.radius, backend)
    except (VoronoiError, UnsafeCellError) as exc:
        raise GraphBuildError(str(exc)) from exc
    if len(found.distance) and found.distance.min() < config.min_distance:
        k = int(np.argmin(found.distance))
        raise GraphBuildError(
            f"overlapping atoms: sites {found.center[k]} and {found.neighbor[k]} are {found.distance[k]:.3f} Å apart "
            f"(< {config.min_distance} Å)"
        )
    found = cap_by_solid_angle(found, len(z), config.max_neighbors)
    edge_index = np.stack((found.neighbor, found.center))
    fields = graph_fields(lattice, cart, z, edge_index, found.shift, found.vector, found.distance)
    fields["edge_weight"] = found.solid_angle.astype(np.float32)
    return fields


def graph_fields(
    lattice: np.ndarray,
    cart: np.ndarray,
    z: np.ndarray,
    edge_index: np.ndarray,
    shift: np.ndarray,
    vec: np.ndarray,
    dist: np.ndarray,
) -> dict[str, np.ndarray]:
    """The graph fields in their stored dtypes (arrays already in them are not copied)."""
    return {
        "z": z.astype(np.int64),
        "pos": np.asarray(cart, dtype=np.float32),
        "lattice": np.asarray(lattice, dtype=np.float32).reshape(1, 3, 3),
        "edge_index": edge_index.astype(np.int64, copy=False),
        "edge_shift": shift.astype(np.int64, copy=False),
        "edge_vec": vec.astype(np.float32, copy=False),
        "edge_dist": dist.astype(np.float32, copy=False),
    }


def stacked_lattices(items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    return np.stack([it[0] for it in items]).astype(np.float64)


def _nearest_pairs(
    lattice: np.ndarray, cart: np.ndarray, config: GraphConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The kept (centre, neighbour, shift, vector, distance) rows and each centre's pair count.

    With a neighbour cap k, the k nearest neighbours of every atom lie within any radius
    r0 <= radius inside which every atom already has >= k neighbours and the tie group of its
    k-th closes. Starting from a radius sized to hold about 2k atoms at the cell's density and
    growing it only when needed avoids listing the hundreds of pairs per atom that an 8 Å
    sphere holds, which would then be discarded.
    """
    n = len(cart)
    backend: NeighborBackend = "vesin" if config.backend == "auto" else config.backend
    k = config.max_neighbors
    if k is not None:
        r0 = float(start_radius(n, abs(np.linalg.det(lattice)), k))
        while r0 < config.radius:
            pairs = periodic_neighbors(cart, lattice, r0, backend)
            _check_overlap(pairs, config)
            if len(pairs.center) and np.bincount(pairs.center, minlength=n).min() >= k:
                *kept, counts, closed = sort_and_cap(
                    pairs.center, pairs.neighbor, pairs.shift, pairs.vector, pairs.distance, n, k
                )
                if closed.all():
                    return (*kept, counts)  # type: ignore[return-value]
            r0 *= 1.4
    pairs = periodic_neighbors(cart, lattice, config.radius, backend)
    _check_overlap(pairs, config)
    *kept, counts, _ = sort_and_cap(pairs.center, pairs.neighbor, pairs.shift, pairs.vector, pairs.distance, n, k)
    return (*kept, counts)  # type: ignore[return-value]


def _check_overlap(pairs: NeighborPairs, config: GraphConfig) -> None:
    dist = pairs.distance
    if len(dist) and dist.min() < config.min_distance:
        k = int(np.argmin(dist))
        raise GraphBuildError(
            f"overlapping atoms: sites {pairs.center[k]} and {pairs.neighbor[k]} are {dist[k]:.3f} Å apart "
            f"(< {config.min_distance} Å)"
        )


def arrays_to_data(arrays: dict[str, np.ndarray], **extra: Any) -> Data:
    """Wrap graph arrays (from :func:`build_graph_arrays` or the cache) in a PyG ``Data``.

    The tensors are placed in the ``Data`` storage directly (``Data(**kwargs)`` validates each
    attribute and costs more than everything else when thousands of graphs come from the cache).
    """
    data = new_data()  # a fresh storage, without Data()'s per-attribute work
    mapping = {
        name: torch.from_numpy(np.ascontiguousarray(arrays[name], dtype=dt)) for name, dt in _FIELDS if name in arrays
    }
    store = getattr(data, "_store", None)
    if store is not None and hasattr(store, "_mapping"):
        store._mapping.update(mapping)
        store._mapping["num_nodes"] = len(arrays["z"])
    else:  # pragma: no cover - other PyG versions
        for k, v in mapping.items():
            setattr(data, k, v)
        data.num_nodes = len(arrays["z"])
    for k, v in extra.items():
        setattr(data, k, v)
    return data


_FIELDS = (
    ("z", np.int64),
    ("pos", np.float32),
    ("lattice", np.float32),
    ("edge_index", np.int64),
    ("edge_shift", np.int64),
    ("edge_vec", np.float32),
    ("edge_dist", np.float32),
    ("edge_weight", np.float32),  # Voronoi graphs only
)


def build_graph(structure: Structure, config: GraphConfig | None = None) -> Data:
    """The crystal graph of one ordered structure (raises :class:`GraphBuildError`)."""
    config = config or GraphConfig()
    return arrays_to_data(build_graph_arrays(*structure_arrays(structure), config))
