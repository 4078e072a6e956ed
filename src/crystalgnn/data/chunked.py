"""A table source read in chunks of rows (datasets larger than RAM): each chunk is what
:func:`~crystalgnn.data.readers.load_source` gives for its rows; ids repeated across chunks are
rejected as duplicates, as in one pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import crystalgnn.data.catalog as catalog
from crystalgnn.data.dataset import CrystalDataset, DataError
from crystalgnn.data.readers import catalog_key_of
from crystalgnn.data.tables import _suffix, iter_table_rows, read_table
from crystalgnn.data.targets import ensure_targets


def iter_source_chunks(
    source: Any,
    *,
    targets: Sequence[str] | None = None,
    chunk_size: int = 20_000,
    structure_column: str | None = None,
    end_member: str = "discharged",
    n_jobs: int | None = None,
    show_progress: bool = True,
) -> Iterator[CrystalDataset] | None:
    """A table source (CSV or JSON-lines file, or a dataset short name) as datasets of at most
    ``chunk_size`` rows each, read one after the other; ``None`` for other kinds of source.

    Each chunk is what :func:`load_source` would give for its rows (labels, derived targets,
    rejections); an id already seen in an earlier chunk is rejected as a duplicate, as in one
    pass. Only one chunk's structures are in memory at a time.
    """
    kw: dict[str, Any] = {"n_jobs": n_jobs, "show_progress": show_progress}
    key = catalog_key_of(source) if isinstance(source, (str, Path)) else None
    if key is not None:
        by_name = isinstance(source, str) and catalog.is_catalog_name(source)
        path = catalog.catalog_path(source) if by_name else Path(source)
        name = source if by_name else key

        def read(rows: list[dict[str, Any]]) -> CrystalDataset:
            return catalog.load_catalog(name, path=path, end_member=end_member, rows=rows, **kw)

    elif (
        isinstance(source, (str, Path))
        and Path(source).is_file()
        and _suffix(Path(source)).startswith((".csv", ".jsonl", ".ndjson"))
    ):
        path = Path(source)
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file")

        def read(rows: list[dict[str, Any]]) -> CrystalDataset:
            return read_table(path, structure_column=structure_column, rows=iter(rows), end_member=end_member, **kw)

    else:
        return None
    return _chunks(path, read, targets, chunk_size)


def _chunks(path: Path, read: Any, targets: Sequence[str] | None, chunk_size: int) -> Iterator[CrystalDataset]:
    seen: set[str] = set()
    rows = iter_table_rows(path)
    while chunk := list(itertools.islice(rows, max(1, chunk_size))):
        ds = read(chunk)
        again = [i for i, k in enumerate(ds.ids) if k in seen]
        if again:
            ds.drop(again, "duplicate id")
        seen.update(ds.ids)
        if targets:
            ensure_targets(ds, targets)
            ds.require_targets(targets)
        yield ds
