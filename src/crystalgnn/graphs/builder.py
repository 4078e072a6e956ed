"""Building the graphs of a whole dataset: in parallel, cached, with rejections recorded.

:func:`build_graph_list` hashes every structure, loads the graphs already in the cache, builds
the missing ones in worker processes (they receive raw arrays, not pymatgen objects), stores
them, and returns one PyG ``Data`` per structure, or the reason a structure was rejected
(isolated atom, overlapping atoms, an element without atom features). Graphs travel as columns
(:mod:`crystalgnn.graphs.columns`) from the workers and the cache to the final ``Data`` views.

A worker that dies (compiled neighbour-search code can raise SIGFPE or exit on a cell that the
checks of :func:`~crystalgnn.graphs.crystal_graph.structure_problems` let through) breaks the
pool: the chunks it lost are rebuilt in fresh processes, halved until the structures that
kill them are alone, and those are rejected as :data:`CRASH_REASON`; every other graph is kept.
:func:`build_dataset_graphs` does it for a dataset, optionally leaving the graphs on disk
(:class:`~crystalgnn.graphs.cache.CachedGraphs`).
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

import numpy as np
from pymatgen.core import Structure
from torch_geometric.data import Data

from crystalgnn.data.dataset import CrystalDataset, Rejection
from crystalgnn.data.parsing import default_jobs
from crystalgnn.data.readers import concat_datasets
from crystalgnn.gc_pause import pauses_gc
from crystalgnn.graphs.batched_graphs import build_graph_arrays_many
from crystalgnn.graphs.cache import CachedGraphs, GraphCache, structure_key
from crystalgnn.graphs.columns import GraphColumns, pack_records, unpack_records
from crystalgnn.graphs.crystal_graph import GraphConfig, structure_arrays_many
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


def _worker_signals() -> None:
    """Signal handling of a forked graph worker: the default action for SIGTERM and SIGINT
    ignored. The parent owns interrupts (it kills its workers when stopped); without this a
    worker inherits the parent's Python handlers (``crystalgnn train`` turns SIGTERM into an
    exception) and prints their tracebacks when it is stopped.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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


#: the reason given to a structure whose graph building kills the worker process
CRASH_REASON = "crashed the neighbour search"

_Chunk = tuple[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]  # (first position, items)


def _run_pool(
    jobs: list[_Chunk], config: GraphConfig, n_jobs: int, take: Callable[[int, _ChunkResult], None]
) -> list[_Chunk]:
    """Build ``jobs`` in ``n_jobs`` worker processes, handing each result to ``take`` in order.

    Returns the chunks lost to a worker that died (a signal such as SIGFPE from compiled code,
    or an exit): the pool is then broken and every chunk not finished is lost with it.
    """
    lost: list[_Chunk] = []
    pool = ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("fork"), initializer=_worker_signals)
    try:
        futures: deque[tuple[_Chunk, Future[_ChunkResult] | None]] = deque()
        for job in jobs:
            try:
                futures.append((job, pool.submit(_build_chunk, (job[1], config))))
            except BrokenProcessPool:  # a worker died already
                futures.append((job, None))
        while futures:
            job, future = futures.popleft()  # popped: its result is not kept past ``take``
            try:
                if future is None:
                    raise BrokenProcessPool
                packed = future.result()
            except BrokenProcessPool:
                lost.append(job)
                continue
            take(job[0], packed)
    except BaseException:
        # an error or an interrupt (Ctrl-C, SIGTERM as KeyboardInterrupt): stop the workers now
        # rather than wait for every queued chunk, as leaving the executor's block would
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.kill()
        raise
    pool.shutdown()
    return lost


def _isolate_crashes(
    lost: list[_Chunk], config: GraphConfig, n_jobs: int, take: Callable[[int, _ChunkResult], None]
) -> None:
    """Rebuild chunks lost to a dead worker, each in a fresh process of its own, ``n_jobs`` at a
    time; a chunk whose process dies again is split in halves until the structures that kill it
    are alone, and those are rejected with :data:`CRASH_REASON`. Every other structure is built
    as usual (the same graphs: building one does not depend on its chunk-mates).
    """
    todo = deque(lost)
    while todo:
        batch = [todo.popleft() for _ in range(min(n_jobs, len(todo)))]
        for (at, chunk), (packed, exitcode) in zip(batch, _run_each_alone(batch, config), strict=True):
            if packed is not None:
                take(at, packed)
            elif len(chunk) == 1:
                take(at, ([f"{CRASH_REASON} (the process building its graph {_death(exitcode)})"], None))
            else:
                half = len(chunk) // 2
                todo.extend(((at, chunk[:half]), (at + half, chunk[half:])))


def _run_each_alone(jobs: list[_Chunk], config: GraphConfig) -> list[tuple[_ChunkResult | None, int | None]]:
    """:func:`_build_chunk` of each job in a fresh process (all at once); ``(None, exitcode)`` for
    a job whose process died. A Python exception in a job is raised here, as the pool does.
    """
    ctx = mp.get_context("fork")
    running = []
    for _, chunk in jobs:
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_build_chunk_into, args=(send, (chunk, config)), daemon=True)
        proc.start()
        send.close()  # the child holds the only writer: a dead child means end of file here
        running.append((proc, receive))
    out: list[tuple[_ChunkResult | None, int | None]] = []
    failure: BaseException | None = None
    try:
        for proc, receive in running:
            try:
                ok, payload = receive.recv()
            except EOFError:
                ok, payload = None, None
            finally:
                receive.close()
            proc.join()
            if ok is False and failure is None:
                failure = payload
            out.append((payload if ok else None, proc.exitcode))
    except BaseException:  # an interrupt: stop the other processes too
        for proc, _ in running:
            proc.kill()
        raise
    if failure is not None:
        raise failure
    return out


def _build_chunk_into(
    send: Connection, job: tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], GraphConfig]
) -> None:
    """Child process of :func:`_run_each_alone`: sends ``(True, result)`` or ``(False, exception)``."""
    _worker_signals()
    try:
        payload: tuple[bool, object] = (True, _build_chunk(job))
    except Exception as exc:
        payload = (False, exc)
    send.send(payload)
    send.close()


def _death(exitcode: int | None) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


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
    jobs = [(k, items[k : k + size]) for k in range(0, len(items), size)]

    def collect(at: int, packed: _ChunkResult) -> int:
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

    with progress(total=len(items), desc="building graphs", disable=not show_progress or len(items) < 200) as bar:

        def take(at: int, packed: _ChunkResult) -> None:
            bar.update(collect(at, packed))

        if parallel:
            lost = _run_pool(jobs, config, n_jobs, take)
            if lost:
                _isolate_crashes(lost, config, n_jobs, take)
        else:
            for at, chunk in jobs:
                take(at, _build_chunk((chunk, config)))
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
