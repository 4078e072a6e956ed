"""Building the graphs of a whole dataset: in parallel, cached, with rejections recorded.

:func:`build_graphs` hashes every structure, loads the graphs already in the cache, builds the
missing ones in worker processes (they receive raw arrays, not pymatgen objects), stores them,
and returns one PyG ``Data`` per structure, or the reason a structure was rejected (isolated
atom, overlapping atoms, an element without atom features).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure
from torch_geometric.data import Data

from crystalgnn.data.dataset import CrystalDataset, Rejection
from crystalgnn.data.parsing import default_jobs
from crystalgnn.gc_pause import pauses_gc
from crystalgnn.graphs.cache import GraphCache, pack_graph, structure_key, unpack_graph
from crystalgnn.graphs.crystal_graph import (
    GraphConfig,
    arrays_to_data,
    build_graph_arrays_many,
    structure_arrays_many,
)
from crystalgnn.progress import progress

PARALLEL_MIN = 400


@dataclass
class GraphBuildReport:
    """What :func:`build_graphs` did: counts, timings and the rejected entries."""

    n_total: int = 0
    n_from_cache: int = 0
    n_built: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _build_chunk(job: tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], GraphConfig]) -> object:
    """Worker: the graphs of one chunk, each field concatenated over the chunk (one pickled
    array per field instead of one per graph, which the parent would unpickle one by one)."""
    items, config = job
    results = build_graph_arrays_many(items, config)
    good = [v for ok, v in results if ok]
    errors = [None if ok else v for ok, v in results]
    if not good:
        return errors, None
    n_nodes = np.array([len(g["z"]) for g in good])
    n_edges = np.array([g["edge_index"].shape[1] for g in good])
    fields = {name: np.concatenate([g[name] for g in good], axis=1 if name == "edge_index" else 0) for name in good[0]}
    return errors, (n_nodes, n_edges, fields)


def _split_chunk(packed: object) -> list[tuple[bool, object]]:
    """Inverse of the packing in :func:`_build_chunk`: ``(ok, arrays or reason)`` per structure."""
    errors, parts = packed  # type: ignore[misc]
    if parts is None:
        return [(False, e) for e in errors]
    n_nodes, n_edges, fields = parts
    node_at = np.concatenate(([0], np.cumsum(n_nodes))).tolist()
    edge_at = np.concatenate(([0], np.cumsum(n_edges))).tolist()
    lattices = fields["lattice"]
    out: list[tuple[bool, object]] = []
    k = 0
    for e in errors:
        if e is not None:
            out.append((False, e))
            continue
        a, b, c, d = node_at[k], node_at[k + 1], edge_at[k], edge_at[k + 1]
        out.append(
            (
                True,
                {
                    "z": fields["z"][a:b],
                    "pos": fields["pos"][a:b],
                    "lattice": lattices[k : k + 1],
                    "edge_index": fields["edge_index"][:, c:d],
                    "edge_shift": fields["edge_shift"][c:d],
                    "edge_vec": fields["edge_vec"][c:d],
                    "edge_dist": fields["edge_dist"][c:d],
                },
            )
        )
        k += 1
    return out


def _unsupported(z: np.ndarray, supported: Collection[int] | None) -> str | None:
    if supported is None:
        return None
    bad = sorted({int(x) for x in np.unique(z)}.difference(supported))
    if not bad:
        return None
    from pymatgen.core.periodic_table import Element

    names = ", ".join(Element.from_Z(b).symbol if 0 < b < 119 else str(b) for b in bad)
    return f"no atom features for element(s) {names}"


@pauses_gc
def build_graph_list(
    structures: Sequence[Structure],
    config: GraphConfig | None = None,
    *,
    cache: GraphCache | None = None,
    supported_elements: Collection[int] | None = None,
    n_jobs: int | None = None,
    show_progress: bool = True,
) -> tuple[list[Data | None], GraphBuildReport]:
    """Graphs for ``structures`` (``None`` where rejected; reasons in the report)."""
    config = config or GraphConfig()
    ckey = config.cache_key()
    report = GraphBuildReport(n_total=len(structures))
    raw = structure_arrays_many(structures)
    cached: list[dict[str, np.ndarray] | None] = [None] * len(raw)
    todo: list[int] = []
    keys: list[bytes | None] = [None] * len(raw)
    new_items: list[tuple[bytes, bytes]] = []
    supported = None if supported_elements is None else frozenset(int(x) for x in supported_elements)
    for i, (lattice, cart, z) in enumerate(raw):
        why = _unsupported(z, supported)
        if why:
            report.rejected.append((i, why))
    rejected_now = {i for i, _ in report.rejected}
    pending = [i for i in range(len(structures)) if i not in rejected_now]
    if cache is not None and pending:
        for i in pending:
            keys[i] = structure_key(*raw[i], ckey)
        for i, buf in zip(pending, cache.get_many([keys[i] for i in pending]), strict=True):
            if buf is None:
                todo.append(i)
            else:
                cached[i] = unpack_graph(buf)
                report.n_from_cache += 1
    else:
        todo = pending
    n_jobs = default_jobs() if n_jobs is None else max(1, n_jobs)
    items = [raw[i] for i in todo]
    parallel = n_jobs > 1 and len(todo) >= PARALLEL_MIN
    size = max(64, min(512, len(items) // (4 * n_jobs) + 1)) if parallel else 512
    jobs = [(items[k : k + size], config) for k in range(0, len(items), size)]
    graphs: list[Data | None] = [None if r is None else arrays_to_data(r) for r in cached]

    def collect(part: list[tuple[bool, object]], at: int) -> None:
        """Results of todo[at : at + len(part)], taken in as they arrive (the workers go on)."""
        for i, (ok, value) in zip(todo[at : at + len(part)], part, strict=True):
            if ok:
                graphs[i] = arrays_to_data(value)  # type: ignore[arg-type]
                report.n_built += 1
                if cache is not None:
                    new_items.append((keys[i], pack_graph(value)))  # type: ignore[arg-type]
            else:
                report.rejected.append((i, str(value)))

    done = 0
    with progress(total=len(items), desc="building graphs", disable=not show_progress or len(items) < 200) as bar:
        if parallel:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(n_jobs) as pool:
                for packed in pool.imap(_build_chunk, jobs):
                    part = _split_chunk(packed)
                    collect(part, done)
                    done += len(part)
                    bar.update(len(part))
        else:
            for items_k, cfg in jobs:
                collect(build_graph_arrays_many(items_k, cfg), done)  # type: ignore[arg-type]
                done += len(items_k)
                bar.update(len(items_k))
    if cache is not None and new_items:
        cache.put_many(new_items)
    report.rejected.sort()
    return graphs, report


def build_dataset_graphs(
    dataset: CrystalDataset,
    config: GraphConfig | None = None,
    **kwargs: object,
) -> tuple[list[Data], GraphBuildReport]:
    """Graphs for a dataset; rejected structures are removed from it (recorded as rejections)."""
    graphs, report = build_graph_list(dataset.structures, config, **kwargs)  # type: ignore[arg-type]
    if report.rejected:
        idx = [i for i, _ in report.rejected]
        reasons = [r for _, r in report.rejected]
        dataset.drop(idx, reasons)
    return [g for g in graphs if g is not None], report


__all__ = ["GraphBuildReport", "Rejection", "build_dataset_graphs", "build_graph_list"]
