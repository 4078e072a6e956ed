"""Rows of fetched data and the JSON-lines file they are written to.

One row per entry, readable by :func:`crystalgnn.data.readers.load_source` as a table::

    {"id": "oqmd:1234",                      # unique over databases
     "structure": {...},                     # pymatgen Structure.as_dict()
     "formation_energy_per_atom": -1.2, ...  # labels, converted, null where missing
     "units": {"formation_energy_per_atom": "eV/atom", ...},
     "formula": "NaCl",
     "provenance": {"database": ..., "id": ..., "url": ..., "database_version": ...,
                    "retrieved": ..., "query": {...}, "fields": {label: provider field}}}

Electrode rows hold the discharged end member as ``structure`` and the charged one as
``structure_charged`` (``--end-member charged`` / ``end_member="charged"`` reads that one).
The ``units`` column is how a table file carries its units: the reader
(:func:`crystalgnn.data.tables.read_table`) takes ``ds.units`` from it.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from crystalgnn.data.clients.session import FetchError, Skipped
from crystalgnn.data.clients.vocabulary import FieldMap, convert_record

OUTPUT_SUFFIXES = (".jsonl.gz", ".jsonl")


def check_output(path: str | Path) -> Path:
    """``path`` if it names a JSON-lines file (``.jsonl.gz`` or ``.jsonl``); ValueError otherwise."""
    path = Path(path)
    if not any(path.name.endswith(s) for s in OUTPUT_SUFFIXES):
        raise ValueError(f"{path}: the output must be a .jsonl.gz (or .jsonl) file")
    return path


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def structure_dict(payload: Any) -> dict[str, Any]:
    """``payload`` (a Structure, or its dict) checked by building the Structure; its ``as_dict()``.

    Raises:
        ValueError: with the reason when it is no usable structure.
    """
    from pymatgen.core import Structure

    if payload is None:
        raise ValueError("no structure")
    try:
        s = payload if isinstance(payload, Structure) else Structure.from_dict(payload)
    except Exception as exc:
        raise ValueError(f"unreadable structure ({type(exc).__name__}: {exc})") from None
    if len(s) == 0:
        raise ValueError("structure without sites")
    return s.as_dict()


def make_row(
    entry_id: str,
    structure: Any,
    record: dict[str, Any],
    fields: tuple[FieldMap, ...],
    provenance: dict[str, Any],
    *,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One output row; ValueError (the reason) when the structure is unusable."""
    labels = convert_record(record, fields)
    row: dict[str, Any] = {"id": entry_id, "structure": structure_dict(structure)}
    row.update(labels)
    row.update(extra or {})
    row["units"] = {name: next(f.unit for f in fields if f.name == name) for name in labels}
    row["provenance"] = {**provenance, "fields": {f.name: f.source for f in fields}}
    return row


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` as JSON lines (gzipped for ``.gz``), atomically; returns the count."""
    path = check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    n = 0
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(tmp, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, default=str) + "\n")
            n += 1
    tmp.replace(path)
    return n


def skip(database: str, entry_id: Any, reason: str) -> Skipped:
    return Skipped(database, str(entry_id), reason)


__all__ = ["FetchError", "check_output", "make_row", "structure_dict", "write_rows"]
