"""The LMDB environment behind the graph cache: checked before it is mapped, moved aside when it
cannot be read, and mapped no larger than it needs.

LMDB memory-maps its data file. Reading a page past the end of a truncated file kills the process
with SIGBUS, and a damaged file makes every access raise an ``lmdb`` error. So
:func:`lmdb_file_problem` first reads the file's two meta pages with plain file I/O (magic,
version, page size, and the file size the newer meta page declares). :class:`SharedEnv` moves an
unreadable database aside (``graphs.lmdb.corrupt-<UTC time>``) and starts an empty one, with a
one-line warning. It does the same when a later access raises an LMDB corruption error.

The map starts at the file's size plus 64 MiB and doubles when a write needs more, so no
address space is reserved up front. Reserving tens of GiB fails under ``ulimit -v``.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("crystalgnn.graphs.cache")

#: smallest map, and the room for new records a map is opened with
MIN_MAP_SIZE = 64 << 20
_MAGIC, _DATA_VERSION, _P_META = 0xBEEFC0DE, 1, 0x08
_META_BYTES = 152  # page header (16) + MDB_meta up to mm_txnid, 64-bit LMDB 0.9
T = TypeVar("T")


class GraphCacheError(ValueError):
    """The graph cache cannot serve a graph it should hold (damaged or unreadable); the message is one line."""


def _meta(f: Any, offset: int) -> tuple[int, int, int, int, int, int] | None:
    """(flags, magic, version, page size, last page, txn id) of the meta page at ``offset``."""
    f.seek(offset)
    b = f.read(_META_BYTES)
    if len(b) < _META_BYTES:
        return None
    (flags,) = struct.unpack_from("<H", b, 10)
    magic, version = struct.unpack_from("<II", b, 16)
    (psize,) = struct.unpack_from("<I", b, 40)  # mm_dbs[FREE_DBI].md_pad holds the page size
    last_pg, txnid = struct.unpack_from("<QQ", b, 136)
    return flags, magic, version, psize, last_pg, txnid


def lmdb_file_problem(folder: Path) -> str | None:
    """Why LMDB must not map the database in ``folder``, or ``None`` when it looks sound (or is absent).

    Reads the two meta pages of ``data.mdb`` with plain file I/O (little-endian 64-bit LMDB 0.9
    layout) and checks their magic number, version and page size, and that the file is as long
    as the newer meta page says (LMDB commits data pages before the meta page, so a shorter file
    was truncated, and mapping it would end in SIGBUS).
    """
    path = folder / "data.mdb"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None  # LMDB initialises an empty file
    try:
        with path.open("rb") as f:
            first = _meta(f, 0)
            psize = first[3] if first is not None else 0
            if first is None or not (512 <= psize <= 65536 and psize & (psize - 1) == 0):
                return f"data.mdb ({size} bytes) has no valid LMDB header"
            second = _meta(f, psize)
    except OSError as exc:
        return f"data.mdb cannot be read ({exc.strerror or exc})"
    if second is None:
        return f"data.mdb is {size} bytes, shorter than its two header pages"
    for flags, magic, version, *_ in (first, second):
        if magic != _MAGIC or version != _DATA_VERSION or not flags & _P_META:
            return "data.mdb has no valid LMDB header"
    if second[3] != psize:
        return "data.mdb has no valid LMDB header"
    last_pg = max(first, second, key=lambda m: m[5])[4]
    need = (last_pg + 1) * psize
    if size < need:
        return f"data.mdb is {size} bytes but its header declares {need} (truncated)"
    return None


def is_corruption(exc: BaseException) -> bool:
    """Whether an ``lmdb`` error says the database itself is damaged (not memory, locks, or disk)."""
    import lmdb

    damaged = (
        lmdb.CorruptedError,
        lmdb.PageNotFoundError,
        lmdb.InvalidError,
        lmdb.VersionMismatchError,
        lmdb.PanicError,
        lmdb.IncompatibleError,
        lmdb.BadTxnError,
    )
    return isinstance(exc, damaged)


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


class SharedEnv:
    """The open LMDB environment of one cache folder in this process (the caches of a folder share it).

    Attributes:
        path: the database folder.
        env: the ``lmdb.Environment`` (replaced when the database is found damaged).
        moved_aside: where unreadable databases of this folder were moved, in this process.
    """

    def __init__(self, path: Path, map_size: int | None = None) -> None:
        self.path = path
        self.moved_aside: list[Path] = []
        self.env = self._open(map_size)

    def _open(self, map_size: int | None) -> Any:
        import lmdb

        why = lmdb_file_problem(self.path)
        if why is None:
            try:
                return self._lmdb_open(map_size)
            except lmdb.Error as exc:
                if not is_corruption(exc):
                    raise
                why = f"{type(exc).__name__}: {exc}"
        self._move_aside(why)
        return self._lmdb_open(map_size)

    def _lmdb_open(self, map_size: int | None) -> Any:
        import lmdb

        self.path.mkdir(parents=True, exist_ok=True)
        data = self.path / "data.mdb"
        size = data.stat().st_size if data.is_file() else 0
        if map_size is None:
            map_size = _round_up(size + MIN_MAP_SIZE, MIN_MAP_SIZE)
        try:
            return lmdb.open(str(self.path), map_size=map_size, subdir=True, readahead=False, lock=True)
        except lmdb.MemoryError as exc:
            raise GraphCacheError(
                f"graph cache {self.path}: cannot map {map_size >> 20} MiB ({exc}); raise the address-space "
                "limit (ulimit -v) or use another --cache-dir"
            ) from exc

    def _move_aside(self, why: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        if target.exists():
            target = target.with_name(f"{target.name}-{os.getpid()}")
        try:
            self.path.rename(target)
        except FileNotFoundError:  # another process moved it first
            pass
        except OSError as exc:
            raise GraphCacheError(
                f"graph cache {self.path} is unreadable ({why}) and cannot be moved aside ({exc}); delete it"
            ) from exc
        self.moved_aside.append(target)
        log.warning(
            "warning: graph cache %s is unreadable (%s); moved to %s, starting a new one", self.path, why, target
        )

    def recover(self, exc: BaseException) -> None:
        """Close the damaged database, move it aside and open an empty one in its place."""
        try:
            self.env.close()
        except Exception:
            pass
        self._move_aside(f"{type(exc).__name__}: {exc}")
        self.env = self._lmdb_open(None)

    def read(self, fn: Callable[[Any], T], *, buffers: bool = False) -> T | None:
        """``fn(txn)`` in a read transaction; ``None`` when the database turned out to be damaged
        (it has been replaced by an empty one: every key is now missing).
        """
        import lmdb

        for attempt in range(2):
            try:
                with self.env.begin(buffers=buffers) as txn:
                    return fn(txn)
            except lmdb.MapResizedError:  # another process grew the database beyond our map
                if attempt:
                    raise
                self.env.set_mapsize(0)  # adopt its size
            except lmdb.Error as exc:
                if not is_corruption(exc):
                    raise
                self.recover(exc)
                return None
        raise AssertionError("unreachable")  # pragma: no cover

    def write(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Store ``items`` in one transaction, growing the map first when they may not fit."""
        import lmdb

        self._reserve(sum(len(k) + len(v) for k, v in items))
        recovered = False
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for k, v in items:
                        txn.put(k, v)
                return
            except lmdb.MapFullError:
                self._grow(2 * int(self.env.info()["map_size"]))
            except lmdb.MapResizedError:
                self.env.set_mapsize(0)
            except lmdb.Error as exc:
                if recovered or not is_corruption(exc):
                    raise
                self.recover(exc)
                recovered = True

    def _reserve(self, nbytes: int) -> None:
        """Grow the map (doubling) to hold ``nbytes`` more with room for LMDB's pages (values over
        half a page take whole overflow pages, and a write copies the pages it changes).
        """
        info = self.env.info()
        used = (int(info["last_pgno"]) + 1) * int(self.env.stat()["psize"])
        size = current = int(info["map_size"])
        while size < used + 2 * nbytes + (1 << 20):
            size *= 2
        if size != current:
            self._grow(size)

    def _grow(self, size: int) -> None:
        import lmdb

        try:
            self.env.set_mapsize(size)
        except lmdb.Error as exc:
            raise GraphCacheError(
                f"graph cache {self.path}: cannot grow the map to {size >> 20} MiB ({exc}); raise the "
                "address-space limit (ulimit -v) or use another --cache-dir"
            ) from exc


__all__ = ["MIN_MAP_SIZE", "GraphCacheError", "SharedEnv", "is_corruption", "lmdb_file_problem"]
