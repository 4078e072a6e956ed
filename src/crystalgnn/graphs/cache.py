"""On-disk graph cache: one LMDB database, keyed by structure content + graph parameters.

A key is the BLAKE2 hash of the lattice, atomic numbers and cartesian coordinates (float64
bytes) together with :meth:`GraphConfig.cache_key` (which includes the graph code version), so a
changed structure, parameter, builder or record layout never returns a stale graph. Values are
records of 4-byte words (36 bytes per edge, 16 per atom; :mod:`crystalgnn.graphs.columns`), so
the records of many graphs are unpacked together with one gather per field; LMDB memory-maps the
file, so graphs are read on demand and a cache larger than RAM works.

Integrity: every record ends with its CRC-32, verified on every read. A damaged record is
served as missing: the builder builds it again and overwrites it, and the cache counts it
(:attr:`GraphCache.n_damaged`) with a one-line warning. :class:`CachedGraphs` holds no
structures, so it raises :class:`GraphCacheError` instead, and the next run rebuilds the
record. A database that cannot be read (truncated, not LMDB, corrupt pages) is moved aside to
``graphs.lmdb.corrupt-<UTC time>`` and replaced by an empty one, with a one-line warning
(:attr:`GraphCache.moved_aside`). The memory map starts small and grows as the
database does (:mod:`crystalgnn.graphs.lmdb_store`).

Opening a cache also makes its parent folder the home of the element data behind the atom
features (:func:`crystalgnn.graphs.element_properties.set_cache_dir`), so ``--cache-dir``
holds every file a command caches.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from crystalgnn.graphs import element_properties
from crystalgnn.graphs.columns import GraphColumns, damaged_records, pack_records, unpack_records
from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.graphs.lmdb_store import GraphCacheError, SharedEnv, log

#: version of the record layout (crystalgnn.graphs.columns); part of every key (3: with a CRC-32)
RECORD_FORMAT = 3
_VERIFY = True  # checksums verified on read (switched off only to measure their cost)
_FORMAT_TAG = f"|record{RECORD_FORMAT}".encode()


def default_cache_dir() -> Path:
    """``$CRYSTALGNN_CACHE_DIR`` or ``~/.cache/crystalgnn``."""
    return Path(os.environ.get("CRYSTALGNN_CACHE_DIR", Path.home() / ".cache" / "crystalgnn"))


def structure_key(lattice: np.ndarray, cart: np.ndarray, z: np.ndarray, config: GraphConfig | str) -> bytes:
    """Content hash of one structure under one graph configuration (32 bytes).

    BLAKE2b of the float64 lattice, int64 atomic numbers, float64 cartesian coordinates and the
    configuration string; ``config`` may be the precomputed :meth:`GraphConfig.cache_key`
    (faster in loops).
    """
    text = (config if isinstance(config, str) else config.cache_key()).encode() + _FORMAT_TAG
    return hashlib.blake2b(
        np.asarray(lattice, dtype=np.float64).tobytes()
        + np.asarray(z, dtype=np.int64).tobytes()
        + np.asarray(cart, dtype=np.float64).tobytes()
        + text,
        digest_size=32,
    ).digest()


def pack_graph(arrays: dict[str, np.ndarray]) -> bytes:
    """Serialise one graph's arrays (see :mod:`crystalgnn.graphs.crystal_graph`) to a cache record."""
    return pack_records(GraphColumns.from_arrays([arrays]))[0]


def unpack_graph(buf: bytes | memoryview) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_graph` (many records at once: :func:`~crystalgnn.graphs.columns.unpack_records`).

    Raises:
        ValueError: when the record's checksum fails.
    """
    if damaged_records([buf]):
        raise ValueError("damaged graph cache record (checksum mismatch)")
    return unpack_records([buf]).graph(0)


_OPEN: dict[str, SharedEnv] = {}  # folder -> its open LMDB environment in this process


class GraphCache:
    """A persistent key -> graph store (LMDB), verified on read.

    Args:
        path: directory of the LMDB environment (created when missing).
        map_size: the map to start with (default: the file's size + 64 MiB); it doubles as needed.

    Attributes:
        n_damaged: records that failed their checksum in this cache's reads (served as missing).
    """

    def __init__(self, path: str | Path | None = None, map_size: int | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_dir() / "graphs.lmdb"
        self.path.mkdir(parents=True, exist_ok=True)
        # LMDB allows one open environment per database and process: caches of the same folder
        # share it (a run's graphs on disk may still hold it when the next run opens the cache)
        where = str(self.path.resolve())
        shared = _OPEN.get(where)
        if shared is None:
            shared = _OPEN[where] = SharedEnv(Path(where), map_size)
        self._shared = shared
        self.n_damaged = 0
        element_properties.set_cache_dir(self.path.parent)

    @property
    def moved_aside(self) -> list[Path]:
        """Where unreadable databases of this folder were moved in this process (empty: none)."""
        return list(self._shared.moved_aside)

    def _records(self, keys: Sequence[bytes]) -> tuple[list[bytes | None], list[int]]:
        """The records of ``keys`` (``None`` where missing) and the positions of damaged ones
        (``None`` too; all keys are missing when the database had to be replaced).
        """
        records = self._shared.read(lambda txn: [txn.get(k) for k in keys])
        if records is None:
            return [None] * len(keys), []
        bad = damaged_records(records) if _VERIFY else []
        for i in bad:
            records[i] = None
        self.n_damaged += len(bad)
        return records, bad

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """The records of ``keys``, ``None`` where missing or damaged (a failed checksum: counted
        in :attr:`n_damaged`, with a one-line warning; the builder builds such graphs again).
        """
        records, bad = self._records(keys)
        if bad:
            log.warning(
                "warning: graph cache %s: %d damaged record(s) failed their checksum; building them again",
                self.path,
                len(bad),
            )
        return records

    def missing(self, keys: Sequence[bytes]) -> list[int]:
        """Positions of the keys that are not in the cache or whose record is damaged (values are
        checked in place, not copied out).
        """

        def scan(txn: Any) -> tuple[list[int], int]:
            values = [txn.get(k) for k in keys]
            bad = damaged_records(values) if _VERIFY else []
            return sorted([k for k, v in enumerate(values) if v is None] + bad), len(bad)

        found = self._shared.read(scan, buffers=True)
        if found is None:
            return list(range(len(keys)))
        self.n_damaged += found[1]
        return found[0]

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Store records (one transaction; the map grows first when they may not fit)."""
        self._shared.write(list(items))

    @property
    def _env(self) -> Any:
        return self._shared.env

    def __len__(self) -> int:
        return int(self._env.stat()["entries"])

    def nbytes(self) -> int:
        """Bytes the database file takes on disk."""
        return sum(f.stat().st_blocks * 512 for f in self.path.iterdir() if f.is_file())

    def close(self) -> None:
        """Close the database (for every cache of this folder in this process)."""
        _OPEN.pop(str(self.path.resolve()), None)
        self._env.close()

    def __repr__(self) -> str:
        return f"GraphCache({str(self.path)!r}, entries={len(self)})"


class CachedGraphs(Sequence[Data]):
    """Graphs that stay in a :class:`GraphCache` until asked for.

    Only the keys (32 bytes a graph) and the targets are held in memory, so a dataset whose
    graphs do not fit in RAM can still be batched and trained on: indexing reads one record, and
    a ``DataLoader`` fetches each batch with one LMDB transaction and one
    :func:`~crystalgnn.graphs.columns.unpack_records` call through ``__getitems__``.

    A graph whose record is damaged or gone raises :class:`GraphCacheError` (one line naming
    the cache): only keys are held here, not the structures to build it from again, and the next
    run's builder rebuilds it.

    Args:
        cache: the cache holding every key.
        keys: one cache key per graph (:func:`structure_key`).
        y: optional (len, T) targets, attached to each graph as ``y`` (1, T) float32.
        positions: optional dataset position of each graph, attached as ``idx`` (default 0..len-1).
    """

    def __init__(
        self, cache: GraphCache, keys: Sequence[bytes], y: np.ndarray | None = None, positions: np.ndarray | None = None
    ) -> None:
        self.cache, self.keys = cache, list(keys)
        self.y = None if y is None else np.asarray(y, dtype=np.float32).reshape(len(self.keys), -1)
        self.positions = np.arange(len(self.keys)) if positions is None else np.asarray(positions)

    @classmethod
    def from_arrays(
        cls,
        raw: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
        config: GraphConfig,
        cache: GraphCache,
        y: np.ndarray | None = None,
    ) -> CachedGraphs:
        """The cached graphs of structures given as (lattice, cartesian coordinates, Z) arrays.

        Raises:
            KeyError: when a graph is not in the cache (build it first).
        """
        ckey = config.cache_key()
        keys = [structure_key(*r, ckey) for r in raw]
        missing = cache.missing(keys)
        if missing:
            raise KeyError(f"{len(missing)} graph(s) not in the cache {cache.path} (first: position {missing[0]})")
        return cls(cache, keys, y)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> Data:  # type: ignore[override]
        if not isinstance(i, (int, np.integer)):
            raise TypeError("CachedGraphs takes an integer index; use subset() for several")
        return self.__getitems__([int(i)])[0]

    def _read(self, idx: Sequence[int]) -> tuple[list[int], GraphColumns]:
        """Positions (negative ones counted from the end) and the columns of their graphs."""
        idx = [int(i) + len(self) if int(i) < 0 else int(i) for i in idx]
        records, bad = self.cache._records([self.keys[i] for i in idx])
        if bad:
            raise GraphCacheError(
                f"graph cache {self.cache.path}: {len(bad)} damaged record(s) (checksum mismatch); "
                "run the command again to rebuild them"
            )
        if any(r is None for r in records):
            raise GraphCacheError(
                f"graph cache {self.cache.path}: graph(s) removed while in use; run the command again to rebuild them"
            )
        return idx, unpack_records(records)  # type: ignore[arg-type]

    def __getitems__(self, idx: Sequence[int]) -> list[Data]:
        idx, columns = self._read(idx)
        graphs = columns.to_data()
        for i, g in zip(idx, graphs, strict=True):
            if self.y is not None:
                g.y = torch.from_numpy(self.y[i : i + 1])
            g.idx = torch.tensor([int(self.positions[i])])
        return graphs

    def batch(self, idx: Sequence[int]) -> Batch:
        """The graphs at ``idx`` as one PyG ``Batch``, built from the records' columns (equal
        to collating ``__getitems__(idx)``, without a ``Data`` per graph).
        """
        idx, columns = self._read(idx)
        extra = {}
        if self.y is not None:
            extra["y"] = torch.from_numpy(self.y[idx])
        extra["idx"] = torch.as_tensor(self.positions[idx], dtype=torch.long)
        return columns.to_batch(extra)

    def subset(self, idx: Sequence[int] | np.ndarray) -> CachedGraphs:
        """The graphs at ``idx`` (still on disk)."""
        idx = np.asarray(idx, dtype=np.int64)
        return CachedGraphs(
            self.cache, [self.keys[i] for i in idx], None if self.y is None else self.y[idx], self.positions[idx]
        )

    def __repr__(self) -> str:
        return f"CachedGraphs({len(self)} graphs in {str(self.cache.path)!r})"
