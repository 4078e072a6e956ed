"""On-disk graph cache: one LMDB database, keyed by structure content + graph parameters.

A key is the BLAKE2 hash of the lattice, atomic numbers and cartesian coordinates (float64
bytes) together with :meth:`GraphConfig.cache_key` (which includes the graph code version), so a
changed structure, parameter or builder never returns a stale graph. Values are the graph arrays
packed in a small binary layout (about 27 bytes per edge); LMDB memory-maps the file, so graphs
are read on demand and a cache larger than RAM works.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from crystalgnn.graphs.crystal_graph import GraphConfig

_HEADER = struct.Struct("<II")  # n_nodes, n_edges
_LAYOUT = (  # name, dtype in the cache, dtype in memory, shape given (n, e)
    ("z", np.dtype(np.uint8), np.int64, lambda n, e: (n,)),
    ("pos", np.dtype(np.float32), np.float32, lambda n, e: (n, 3)),
    ("lattice", np.dtype(np.float32), np.float32, lambda n, e: (1, 3, 3)),
    ("edge_index", np.dtype(np.int32), np.int64, lambda n, e: (2, e)),
    ("edge_shift", np.dtype(np.int16), np.int64, lambda n, e: (e, 3)),
    ("edge_vec", np.dtype(np.float32), np.float32, lambda n, e: (e, 3)),
    ("edge_dist", np.dtype(np.float32), np.float32, lambda n, e: (e,)),
)


def default_cache_dir() -> Path:
    """``$CRYSTALGNN_CACHE_DIR`` or ``~/.cache/crystalgnn``."""
    return Path(os.environ.get("CRYSTALGNN_CACHE_DIR", Path.home() / ".cache" / "crystalgnn"))


def structure_key(lattice: np.ndarray, cart: np.ndarray, z: np.ndarray, config: GraphConfig | str) -> bytes:
    """Content hash of one structure under one graph configuration (32 bytes).

    ``config`` may be the precomputed :meth:`GraphConfig.cache_key` string (faster in loops).
    """
    h = hashlib.blake2b(digest_size=32)
    h.update(np.ascontiguousarray(lattice, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(z, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(cart, dtype=np.float64).tobytes())
    h.update((config if isinstance(config, str) else config.cache_key()).encode())
    return h.digest()


def pack_graph(arrays: dict[str, np.ndarray]) -> bytes:
    """Serialise graph arrays (see :mod:`crystalgnn.graphs.crystal_graph`) to bytes."""
    n, e = len(arrays["z"]), arrays["edge_index"].shape[1]
    parts = [_HEADER.pack(n, e)]
    for name, store, _, _ in _LAYOUT:
        parts.append(np.ascontiguousarray(arrays[name], dtype=store).tobytes())
    return b"".join(parts)


def unpack_graph(buf: bytes | memoryview) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_graph`."""
    n, e = _HEADER.unpack_from(buf, 0)
    offset = _HEADER.size
    out = {}
    for name, store, mem, shape in _LAYOUT:
        shp = shape(n, e)
        count = 1
        for d in shp:
            count *= d
        arr = np.frombuffer(buf, dtype=store, count=count, offset=offset)
        offset += count * store.itemsize
        out[name] = arr.astype(mem).reshape(shp)
    return out


class GraphCache:
    """A persistent key -> graph store (LMDB).

    Args:
        path: directory of the LMDB environment (created when missing).
        map_size: the largest size the database may grow to (virtual; sparse on disk).
    """

    def __init__(self, path: str | Path | None = None, map_size: int = 1 << 36) -> None:
        import lmdb

        self.path = Path(path) if path is not None else default_cache_dir() / "graphs.lmdb"
        self.path.mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(str(self.path), map_size=map_size, subdir=True, readahead=False, lock=True)

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        with self._env.begin(buffers=False) as txn:
            return [txn.get(k) for k in keys]

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        with self._env.begin(write=True) as txn:
            for k, v in items:
                txn.put(k, v)

    def __len__(self) -> int:
        return int(self._env.stat()["entries"])

    def nbytes(self) -> int:
        """Bytes the database file takes on disk."""
        return sum(f.stat().st_blocks * 512 for f in self.path.iterdir() if f.is_file())

    def close(self) -> None:
        self._env.close()

    def __repr__(self) -> str:
        return f"GraphCache({str(self.path)!r}, entries={len(self)})"
