"""A local cache of fetched pages, keyed by the query, so that a repeated fetch does not touch
the network and an interrupted one resumes where it stopped.

Layout: ``<root>/<client>-<sha256 of the query>[:20]/`` with ``query.json`` (what was asked,
never an API key), one ``<part>-<k>.json.gz`` per fetched page and ``<part>.done`` once a part
is complete. ``root`` is ``$CRYSTALGNN_CACHE_DIR/fetch`` (``~/.cache/crystalgnn/fetch``) unless
given. Pages are written atomically (a temporary file renamed), so a killed fetch never leaves
half a page behind.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any


def default_cache_root() -> Path:
    """``$CRYSTALGNN_CACHE_DIR/fetch`` or ``~/.cache/crystalgnn/fetch``."""
    return Path(os.environ.get("CRYSTALGNN_CACHE_DIR", Path.home() / ".cache" / "crystalgnn")) / "fetch"


def query_key(query: dict[str, Any]) -> str:
    """A stable hash of a JSON-able query (key order does not matter)."""
    text = json.dumps(query, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class QueryCache:
    """The cached pages of one query.

    Args:
        root: the cache folder (:func:`default_cache_root` when ``None``).
        client: a short name of the client (``mp``, ``optimade-oqmd``), the folder's prefix.
        query: everything that makes the answer what it is (endpoint, criteria, fields).
        enabled: ``False`` keeps nothing and finds nothing (``--no-cache``).
    """

    def __init__(self, root: Path | None, client: str, query: dict[str, Any], *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.query = query
        self.folder = (root or default_cache_root()) / f"{client}-{query_key(query)}"

    def _page(self, part: str, k: int) -> Path:
        return self.folder / f"{part}-{k:05d}.json.gz"

    def load(self, part: str, k: int) -> Any | None:
        """Page ``k`` of ``part``, or ``None`` when it is not cached."""
        path = self._page(part, k)
        if not self.enabled or not path.is_file():
            return None
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return json.load(f)

    def pages(self, part: str) -> list[Any]:
        """The cached pages of ``part`` in order (up to the first missing one)."""
        out = []
        k = 0
        while (page := self.load(part, k)) is not None:
            out.append(page)
            k += 1
        return out

    def save(self, part: str, k: int, data: Any) -> None:
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        qfile = self.folder / "query.json"
        if not qfile.is_file():
            qfile.write_text(json.dumps(self.query, indent=1, sort_keys=True, default=str))
        path = self._page(part, k)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as f:
            json.dump(data, f, default=str)
        tmp.replace(path)

    def done(self, part: str) -> bool:
        return self.enabled and (self.folder / f"{part}.done").is_file()

    def mark_done(self, part: str) -> None:
        if self.enabled:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / f"{part}.done").touch()

    def clear(self) -> None:
        """Forget this query (``--refresh``)."""
        shutil.rmtree(self.folder, ignore_errors=True)
