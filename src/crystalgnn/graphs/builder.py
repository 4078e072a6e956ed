"""Building the graphs of a whole dataset: in parallel, cached, with rejections recorded.

:func:`build_graph_list` hashes every structure, loads the graphs already in the cache, builds
the missing ones in worker processes (they receive raw arrays, not pymatgen objects), stores
them, and returns one PyG ``Data`` per structure, or the reason a structure was rejected
(isolated atom, overlapping atoms, an element without atom features). Graphs travel as columns
(:mod:`crystalgnn.graphs.columns`) from the workers and the cache to the final ``Data`` views.
:func:`build_dataset_graphs` does it for a dataset, optionally leaving the graphs on disk
(:class:`~crystalgnn.graphs.cache.CachedGraphs`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from pymatgen.core import Structure
from torch_geometric.data import Data

from crystalgnn.data.dataset import CrystalDataset, Rejection
from crystalgnn.data.parsing import default_jobs
from crystalgnn.data.readers import concat_datasets
from crystalgnn.gc_pause import pauses_gc
from crystalgnn.graphs.cache import CachedGraphs, GraphCache, structure_key
from crystalgnn.graphs.columns import GraphColumns, pack_records, unpack_records
from crystalgnn.graphs.crystal_graph import GraphConfig, build_graph_arrays_many, structure_arrays_many
from crystalgnn.progress import progress

PARALLEL_MIN = 400


@dataclass
class GraphBuildReport:
    """What :func:`build_graph_list` did: counts, the rejected entries and the cache keys."""

    n_total: int = 0
    n_from_cache: int = 0
    n_built: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    #: cache key of each structure given (``None`` without a cache, or when rejected before hashing)
    keys: list[bytes | None] = field(default_factory=list)


_ChunkResult = tuple[list[str | None], GraphColumns | None]


def _build_chunk(job: tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], GraphConfig]) -> _ChunkResult:
    """Graphs of one chunk: the reason per structure that failed (``None`` where built) and the
    built graphs as columns (one array per field; in worker processes this pickles a few large
    arrays instead of seven small ones per graph).
    """
    items, config = job
    results = build_graph_arrays_many(items, config)
    errors = [None if ok else str(v) for ok, v in results]
    good = [v for ok, v in results if ok]
    return errors, GraphColumns.from_arrays(good) if good else None  # type: ignore[arg-type]


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
    graphs: list[Data | None] = [None] * len(raw)
    found: list[int] = []  # positions whose graph is in the cache, and their records
    records: list[bytes] = []
    todo: list[int] = []
    keys: list[bytes | None] = [None] * len(raw)
    new_items: list[tuple[bytes, bytes]] = []
    supported = None if supported_elements is None else frozenset(int(x) for x in supported_elements)
    for i, (_lattice, _cart, z) in enumerate(raw):
        why = _unsupported(z, supported)
        if why:
            report.rejected.append((i, why))
    rejected_now = {i for i, _ in report.rejected}
    pending = [i for i in range(len(structures)) if i not in rejected_now]
    if cache is not None and pending:
        pending_keys = [structure_key(*raw[i], ckey) for i in pending]
        for i, key in zip(pending, pending_keys, strict=True):
            keys[i] = key
        for i, buf in zip(pending, cache.get_many(pending_keys), strict=True):
            if buf is None:
                todo.append(i)
            else:
                found.append(i)
                records.append(buf)
        report.n_from_cache = len(found)
    else:
        todo = pending
    if found:
        for i, g in zip(found, unpack_records(records).to_data(), strict=True):
            graphs[i] = g
    n_jobs = default_jobs() if n_jobs is None else max(1, n_jobs)
    items = [raw[i] for i in todo]
    parallel = n_jobs > 1 and len(todo) >= PARALLEL_MIN
    size = max(64, min(512, len(items) // (4 * n_jobs) + 1)) if parallel else 512
    jobs = [(items[k : k + size], config) for k in range(0, len(items), size)]

    def collect(packed: _ChunkResult, at: int) -> int:
        """Results of todo[at : ...], taken in as they arrive (the workers go on); returns their count."""
        errors, columns = packed
        built = [i for i, why in zip(todo[at : at + len(errors)], errors, strict=True) if why is None]
        report.rejected.extend(
            (i, why) for i, why in zip(todo[at : at + len(errors)], errors, strict=False) if why is not None
        )
        if columns is not None:
            for i, g in zip(built, columns.to_data(), strict=True):
                graphs[i] = g
            report.n_built += len(built)
            if cache is not None:
                # every structure built was hashed above (there is a cache): no None key
                new_items.extend(zip(cast("list[bytes]", [keys[i] for i in built]), pack_records(columns), strict=True))
        return len(errors)

    done = 0
    with progress(total=len(items), desc="building graphs", disable=not show_progress or len(items) < 200) as bar:
        if parallel:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(n_jobs) as pool:
                for packed in pool.imap(_build_chunk, jobs):
                    k = collect(packed, done)
                    done += k
                    bar.update(k)
        else:
            for job in jobs:
                k = collect(_build_chunk(job), done)
                done += k
                bar.update(k)
    if cache is not None and new_items:
        cache.put_many(new_items)
    report.rejected.sort()
    report.keys = keys
    return graphs, report


def build_dataset_graphs(
    dataset: CrystalDataset,
    config: GraphConfig | None = None,
    *,
    on_disk: bool = False,
    chunk_size: int = 20_000,
    **kwargs: object,
) -> tuple[list[Data] | CachedGraphs, GraphBuildReport]:
    """Graphs for a dataset; rejected structures are removed from it (recorded as rejections).

    With ``on_disk`` (needs ``cache=``) the graphs are built ``chunk_size`` structures at a time
    into the cache and dropped from memory; the result is a :class:`CachedGraphs` that reads
    them back per batch, so the graphs of a dataset never have to fit in RAM together.
    """
    config = config or GraphConfig()
    if not on_disk:
        graphs, report = build_graph_list(dataset.structures, config, **kwargs)  # type: ignore[arg-type]
    else:
        cache = kwargs.get("cache")
        if not isinstance(cache, GraphCache):
            raise ValueError("graphs on disk need the graph cache (do not disable it)")
        report = GraphBuildReport(n_total=len(dataset))
        for start in range(0, len(dataset), chunk_size):
            _, part = build_graph_list(dataset.structures[start : start + chunk_size], config, **kwargs)  # type: ignore[arg-type]
            report.n_from_cache += part.n_from_cache
            report.n_built += part.n_built
            report.rejected += [(start + i, why) for i, why in part.rejected]
            report.keys += part.keys
    if report.rejected:
        idx = [i for i, _ in report.rejected]
        reasons = [r for _, r in report.rejected]
        dataset.drop(idx, reasons)
    if on_disk:  # the keys the builder hashed, of the entries kept
        gone = {i for i, _ in report.rejected}
        kept = [k for i, k in enumerate(report.keys) if i not in gone]
        return CachedGraphs(cache, kept), report  # type: ignore[arg-type]
    return [g for g in graphs if g is not None], report


def build_chunked_graphs(
    chunks: Iterable[CrystalDataset], config: GraphConfig | None = None, **kwargs: Any
) -> tuple[CrystalDataset, CachedGraphs, GraphBuildReport]:
    """Graphs of a dataset that arrives in chunks (:func:`~crystalgnn.data.readers.iter_source_chunks`),
    built into the cache (``cache=`` is required) one chunk at a time.

    Each chunk's structures are dropped once its graphs are in the cache, so only one chunk of
    structures is ever in memory: the returned dataset keeps ids, labels, metadata and
    rejections, with ``None`` in place of every structure, and the graphs stay on disk.
    """
    parts: list[CrystalDataset] = []
    keys: list[bytes] = []
    report = GraphBuildReport()
    graphs = None
    for ds in chunks:
        graphs, part = build_dataset_graphs(ds, config, on_disk=True, **kwargs)
        keys += graphs.keys  # type: ignore[union-attr]
        # positions among all the structures handed to the builder, chunk after chunk
        report.rejected += [(report.n_total + i, why) for i, why in part.rejected]
        report.n_total += part.n_total
        report.n_from_cache += part.n_from_cache
        report.n_built += part.n_built
        ds.structures = [None] * len(ds)  # type: ignore[list-item]
        parts.append(ds)
    if graphs is None:
        raise ValueError("no rows to read")
    merged = concat_datasets(parts) if len(parts) > 1 else parts[0]
    merged.name = parts[0].name
    return merged, CachedGraphs(graphs.cache, keys), report  # type: ignore[union-attr]


__all__ = ["GraphBuildReport", "Rejection", "build_chunked_graphs", "build_dataset_graphs", "build_graph_list"]
