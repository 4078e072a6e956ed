"""The crystal graph of Xie & Grossman (PRL 120, 145301, 2018), as a PyG ``Data`` object.

Atoms are nodes; every atom is joined to its ``max_neighbors`` nearest neighbours within
``radius`` (periodic images are separate edges, so the graph is a multigraph and an atom can be
its own neighbour through an image). Unlike the reference code there is no zero padding: an atom
with fewer neighbours has fewer edges. ``pad_to_max_neighbors=True`` reproduces the reference
behaviour (fake edges to atom 0 at distance ``radius + 1``) for its pretrained weights.

Ties at the last kept neighbour are broken deterministically: distances within 1e-6 Å count as
equal, and equal ones are ordered by neighbour index, then image shift. The Gaussian distance expansion of CGCNN is applied by
the model (``crystalgnn.models.layers.GaussianExpansion``), so one cached graph serves every model.

Graph fields (PyG convention, messages flow ``edge_index[0] = j -> edge_index[1] = i``):

=================  =========  ==================================================
``z``              (N,)       atomic numbers
``pos``            (N, 3)     cartesian positions, Å
``lattice``        (1, 3, 3)  lattice vectors as rows, Å
``edge_index``     (2, E)     (neighbour j, centre i)
``edge_shift``     (E, 3)     integer lattice image of j
``edge_vec``       (E, 3)     r_j + shift @ lattice - r_i, Å
``edge_dist``      (E,)       |edge_vec|, Å (``radius + 1`` for padding edges)
=================  =========  ==================================================
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data import Data

from crystalgnn.graphs.neighbors import NeighborBackend, NeighborPairs, periodic_neighbors

GRAPH_CODE_VERSION = 2  # bump when the content of built graphs changes (invalidates caches)
TIE_TOLERANCE = 1e-6  # Å: neighbour distances closer than this count as tied


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
        backend: neighbour-list library: ``vesin`` (default, the fastest by measurement, see
            ``benchmarks/RESULTS.md``), ``numpy``, ``auto``, ``ase`` or ``pymatgen``.
    """

    radius: float = 8.0
    max_neighbors: int | None = 12
    pad_to_max_neighbors: bool = False
    min_distance: float = 0.5
    backend: NeighborBackend = "vesin"

    def __post_init__(self) -> None:
        if self.radius <= 0:
            raise ValueError("radius must be positive")
        if self.max_neighbors is not None and self.max_neighbors < 1:
            raise ValueError("max_neighbors must be >= 1 or None")
        if self.pad_to_max_neighbors and self.max_neighbors is None:
            raise ValueError("pad_to_max_neighbors needs max_neighbors")

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
        d["code_version"] = GRAPH_CODE_VERSION
        return json.dumps(d, sort_keys=True)


def structure_arrays(structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lattice (3,3), cartesian coords (N,3), atomic numbers (N,)) of an ordered structure.

    Cartesian coordinates are ``np.dot(frac, lattice)`` in one product (not site by site), the
    same numbers the parser processes compute, so cache keys agree to the last bit.
    """
    lattice = structure.lattice.matrix
    z = np.fromiter((site.specie.Z for site in structure), dtype=np.int64, count=len(structure))
    return lattice, np.dot(structure.frac_coords, lattice), z


def build_graph_arrays(
    lattice: np.ndarray, cart: np.ndarray, z: np.ndarray, config: GraphConfig
) -> dict[str, np.ndarray]:
    """Neighbour selection on raw arrays; returns the graph fields as numpy arrays.

    Raises:
        GraphBuildError: for an atom with no neighbour within the radius, or two atoms closer
            than ``config.min_distance``.
    """
    n = len(z)
    pairs = _pairs_with_enough_neighbors(lattice, cart, config)
    center, nbr, shift, vec, dist = pairs.center, pairs.neighbor, pairs.shift, pairs.vector, pairs.distance
    if len(dist) and dist.min() < config.min_distance:
        k = int(np.argmin(dist))
        raise GraphBuildError(
            f"overlapping atoms: sites {center[k]} and {nbr[k]} are {dist[k]:.3f} Å apart "
            f"(< {config.min_distance} Å)"
        )
    counts = np.bincount(center, minlength=n)
    if (counts == 0).any():
        k = int(np.flatnonzero(counts == 0)[0])
        raise GraphBuildError(
            f"isolated atom: site {k} (Z={int(z[k])}) has no neighbour within {config.radius} Å"
        )
    # Deterministic order: centre, distance, then neighbour index and image shift among
    # distances equal within TIE_TOLERANCE (grouped by consecutive differences, so float noise
    # in the last bits never reorders a tie).
    order = np.lexsort((dist, center))
    center, nbr, shift, vec, dist = center[order], nbr[order], shift[order], vec[order], dist[order]
    new_group = np.ones(len(dist), dtype=bool)
    new_group[1:] = (center[1:] != center[:-1]) | (np.diff(dist) > TIE_TOLERANCE)
    group = np.cumsum(new_group)
    order = np.lexsort((shift[:, 2], shift[:, 1], shift[:, 0], nbr, group))
    center, nbr, shift, vec, dist = center[order], nbr[order], shift[order], vec[order], dist[order]
    if config.max_neighbors is not None:
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.arange(len(center)) - starts[center]
        keep = rank < config.max_neighbors
        center, nbr, shift, vec, dist = center[keep], nbr[keep], shift[keep], vec[keep], dist[keep]
        if config.pad_to_max_neighbors:
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
    return {
        "z": z.astype(np.int64),
        "pos": np.asarray(cart, dtype=np.float32),
        "lattice": np.asarray(lattice, dtype=np.float32).reshape(1, 3, 3),
        "edge_index": np.stack((nbr, center)).astype(np.int64),
        "edge_shift": shift.astype(np.int64),
        "edge_vec": vec.astype(np.float32),
        "edge_dist": dist.astype(np.float32),
    }


def _pairs_with_enough_neighbors(lattice: np.ndarray, cart: np.ndarray, config: GraphConfig) -> NeighborPairs:
    """Neighbour pairs from the smallest search radius that gives the same graph.

    With a neighbour cap k, the k nearest neighbours of every atom lie within any radius
    r0 <= radius inside which every atom already has >= k neighbours (and all pairs tied with
    the k-th are closer than r0 too). Starting from a radius sized to hold about 2k atoms at the
    cell's density and growing it only when needed avoids listing the hundreds of pairs per atom
    that an 8 Å sphere holds, which would then be discarded.
    """
    radius = config.radius
    if config.max_neighbors is not None:
        density = len(cart) / abs(np.linalg.det(lattice))
        r0 = (3.0 * 2.0 * config.max_neighbors / (4.0 * np.pi * density)) ** (1.0 / 3.0) + 0.5
        while r0 < radius:
            pairs = periodic_neighbors(cart, lattice, r0, config.backend)
            if len(pairs.center) and np.bincount(pairs.center, minlength=len(cart)).min() >= config.max_neighbors:
                return pairs
            r0 *= 1.4
    return periodic_neighbors(cart, lattice, radius, config.backend)


def arrays_to_data(arrays: dict[str, np.ndarray], **extra: Any) -> Data:
    """Wrap graph arrays (from :func:`build_graph_arrays` or the cache) in a PyG ``Data``.

    The tensors are placed in the ``Data`` storage directly (``Data(**kwargs)`` validates each
    attribute and costs more than everything else when thousands of graphs come from the cache).
    """
    data = copy.copy(_EMPTY)  # a fresh storage; half the cost of Data()
    mapping = {name: torch.from_numpy(np.ascontiguousarray(arrays[name], dtype=dt)) for name, dt in _FIELDS}
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


_EMPTY = Data()  # template for arrays_to_data; never modified

_FIELDS = (
    ("z", np.int64),
    ("pos", np.float32),
    ("lattice", np.float32),
    ("edge_index", np.int64),
    ("edge_shift", np.int64),
    ("edge_vec", np.float32),
    ("edge_dist", np.float32),
)


def build_graph(structure: Structure, config: GraphConfig | None = None) -> Data:
    """The crystal graph of one ordered structure (raises :class:`GraphBuildError`)."""
    config = config or GraphConfig()
    return arrays_to_data(build_graph_arrays(*structure_arrays(structure), config))
