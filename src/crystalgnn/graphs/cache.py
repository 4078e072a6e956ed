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
#: value layout after the header: one float32 block (pos, lattice, edge_vec, edge_dist), then
#: edge_index as int32, edge_shift as int16 and z as uint8 (all int64 in memory)
_FLOAT_FIELDS = ("pos", "lattice", "edge_vec", "edge_dist")
_INT_FIELDS = (("edge_index", np.int32), ("edge_shift", np.int16), ("z", np.uint8))


def default_cache_dir() -> Path:
    """``$CRYSTALGNN_CACHE_DIR`` or ``~/.cache/crystalgnn``."""
    return Path(os.environ.get("CRYSTALGNN_CACHE_DIR", Path.home() / ".cache" / "crystalgnn"))


def structure_key(lattice: np.ndarray, cart: np.ndarray, z: np.ndarray, config: GraphConfig | str) -> bytes:
    """Content hash of one structure under one graph configuration (32 bytes).

    BLAKE2b of the float64 lattice, int64 atomic numbers, float64 cartesian coordinates and the
    configuration string; ``config`` may be the precomputed :meth:`GraphConfig.cache_key`
    (faster in loops).
    """
    text = (config if isinstance(config, str) else config.cache_key()).encode()
    return hashlib.blake2b(
        np.asarray(lattice, dtype=np.float64).tobytes()
        + np.asarray(z, dtype=np.int64).tobytes()
        + np.asarray(cart, dtype=np.float64).tobytes()
        + text,
        digest_size=32,
    ).digest()


def pack_graph(arrays: dict[str, np.ndarray]) -> bytes:
    """Serialise graph arrays (see :mod:`crystalgnn.graphs.crystal_graph`) to bytes."""
    n, e = len(arrays["z"]), arrays["edge_index"].shape[1]
    parts = [_HEADER.pack(n, e)]
    parts += [np.ascontiguousarray(arrays[name], dtype=np.float32).tobytes() for name in _FLOAT_FIELDS]
    parts += [np.ascontiguousarray(arrays[name], dtype=dtype).tobytes() for name, dtype in _INT_FIELDS]
    return b"".join(parts)


def unpack_graph(buf: bytes | memoryview) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_graph`; the float fields are views of one writable copy of their block."""
    n, e = _HEADER.unpack_from(buf, 0)
    a, b, c, d = 3 * n, 3 * n + 9, 3 * n + 9 + 3 * e, 3 * n + 9 + 4 * e  # float block boundaries
    h = _HEADER.size
    floats = np.frombuffer(bytearray(buf[h : h + 4 * d]), dtype=np.float32)
    at = h + 4 * d
    edge_index = np.frombuffer(buf, dtype=np.int32, count=2 * e, offset=at)
    edge_shift = np.frombuffer(buf, dtype=np.int16, count=3 * e, offset=at + 8 * e)
    z = np.frombuffer(buf, dtype=np.uint8, count=n, offset=at + 14 * e)
    return {
        "pos": floats[:a].reshape(n, 3),
        "lattice": floats[a:b].reshape(1, 3, 3),
        "edge_vec": floats[b:c].reshape(e, 3),
        "edge_dist": floats[c:d],
        "edge_index": edge_index.astype(np.int64).reshape(2, e),
        "edge_shift": edge_shift.astype(np.int64).reshape(e, 3),
        "z": z.astype(np.int64),
    }


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
