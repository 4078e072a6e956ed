"""The folders of the original CGCNN code (``id_prop.csv`` + ``<id>.cif`` [+ ``atom_init.json``])
and of ALIGNN (``id_prop.csv`` whose first column names structure files).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crystalgnn.data.dataset import CrystalDataset, DataError, Rejection
from crystalgnn.data.structure_io import STRUCTURE_SUFFIXES, broken_link_reason, read_structure_file
from crystalgnn.data.tables import _assemble, _pick
from crystalgnn.data.textfiles import allow_large_csv_fields


@dataclass
class IdPropFile:
    """The rows of an ``id_prop.csv``: ``rows`` are ``(line number, values)`` of the data rows,
    ``header`` the first line when it names the columns, ``width`` the number of values a row
    should have, ``errors`` ``(line number, reason)`` of lines the ``csv`` module cannot read.
    """

    rows: list[tuple[int, list[str]]]
    header: list[str] | None
    width: int
    errors: list[tuple[int, str]] = field(default_factory=list)


def read_id_prop_file(path: Path) -> IdPropFile:
    """Read ``id_prop.csv``; a first line whose value columns are all non-empty text (not
    numbers) is the header (``material,band_gap``). The expected width is the header's, else
    the most common number of values (trailing empty cells not counted).

    Raises:
        DataError: for an empty file, or one without any data row.
    """
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty id_prop.csv")
    allow_large_csv_fields()
    rows: list[tuple[int, list[str]]] = []
    errors: list[tuple[int, str]] = []
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        while True:
            try:
                r = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                errors.append((reader.line_num, f"unreadable CSV record ({exc})"))
                continue
            if r and any(c.strip() for c in r):
                rows.append((reader.line_num, r))
    if not rows and not errors:
        raise DataError(f"{path}: empty id_prop.csv")
    header = None
    if rows:
        first = _trimmed(rows[0][1])
        if len(first) > 1 and all(c.strip() and not _is_value(c) for c in first[1:]):
            header, rows = [c.strip() for c in first], rows[1:]
    if not rows and not errors:
        raise DataError(f"{path}: id_prop.csv has a header ({','.join(header or [])}) but no data rows")
    width = len(header) if header else Counter(len(_trimmed(r)) for _, r in rows).most_common(1)[0][0]
    return IdPropFile(rows, header, width, errors)


def read_id_prop_rows(path: Path) -> tuple[list[list[str]], list[str] | None]:
    """The data rows (values) of ``id_prop.csv`` and its header (``None`` without one)."""
    table = read_id_prop_file(path)
    return [r for _, r in table.rows], table.header


def _trimmed(row: list[str]) -> list[str]:
    """The row without trailing empty cells (``id,1.0,`` from a spreadsheet has two values)."""
    n = len(row)
    while n > 1 and not row[n - 1].strip():
        n -= 1
    return row[:n]


def _is_value(s: str) -> bool:
    """Whether a cell can be a label: a number, ``nan``/``inf``, true/false, or empty."""
    t = s.strip().lower()
    if t in {"", "nan", "inf", "-inf", "+inf", "true", "false"}:
        return True
    try:
        float(t)
        return True
    except ValueError:
        return False


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def read_id_prop_folder(
    folder: str | Path,
    *,
    target_names: Sequence[str] | None = None,
    subset: int | None = None,
    subset_seed: int = 0,
    **kw: Any,
) -> CrystalDataset:
    """The CGCNN (``<id>.cif``) or ALIGNN (first column is a file name) ``id_prop.csv`` folder.

    Targets are named ``target`` (one column) or ``target_0``, ``target_1``, ... unless the file
    has a header or ``target_names`` is given. 0/1 columns stay numeric (classification labels).
    With ``subset``, a seeded random sample of that many ``id_prop.csv`` rows is read (the other
    rows' files are never opened).
    """
    folder = Path(folder)
    table = read_id_prop_file(folder / "id_prop.csv")
    header, width = table.header, table.width
    ncols = width - 1
    if target_names is None:
        target_names = header[1:] if header else (["target"] if ncols == 1 else [f"target_{k}" for k in range(ncols)])
    target_names = list(target_names)
    ids, payloads, labels, metas = [], [], [], []
    label_file = str(folder / "id_prop.csv")
    rejections = [Rejection(f"line {n}", label_file, reason) for n, reason in table.errors]
    notes = []
    if header is not None:
        notes.append(
            f"{label_file}: first line {','.join(header)!r} read as a header (labels: {', '.join(target_names)})"
        )
    for _, (lineno, r) in _pick(table.rows, subset, subset_seed):
        key = r[0].strip()
        if not key:
            rejections.append(Rejection(f"line {lineno}", label_file, f"row without an id (line {lineno}: {r})"))
            continue
        n = len(_trimmed(r))
        if n > width or len(r) < width:  # more values than the others, or a short row (empty cells count)
            entry = Path(key).stem if Path(key).suffix.lower() in STRUCTURE_SUFFIXES else key
            reason = f"{_plural(n if n > width else len(r), 'value')}, expected {width} (line {lineno})"
            rejections.append(Rejection(entry, label_file, reason))
            continue
        r = r[:width]
        text_value = next(((n, v) for n, v in zip(target_names, r[1:], strict=False) if not _is_value(v)), None)
        if text_value is not None:
            entry = Path(key).stem if Path(key).suffix.lower() in STRUCTURE_SUFFIXES else key
            reason = f"label {text_value[0]!r} is not a number: {text_value[1].strip()[:60]!r} (line {lineno})"
            rejections.append(Rejection(entry, label_file, reason))
            continue
        # ALIGNN rows name the structure file (``POSCAR-JVASP-1.vasp``); CGCNN rows name ``<id>.cif``.
        # Decided per row, so a missing file never changes how the other ids are formed.
        if Path(key).suffix.lower() in STRUCTURE_SUFFIXES:
            candidates = [folder / key, folder / f"{key}.cif"]
            entry_id = Path(key).stem
        else:
            candidates = [folder / f"{key}.cif", folder / key]
            entry_id = key
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            broken = next((c for c in candidates if c.is_symlink()), None)
            if broken is not None:
                rejections.append(Rejection(entry_id, str(broken), broken_link_reason(broken)))
            else:
                reason = f"label file names a missing structure file ({candidates[0].name})"
                rejections.append(Rejection(entry_id, label_file, reason))
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            rejections.append(Rejection(entry_id, str(path), f"unreadable file ({exc})"))
            continue
        if not text.strip():
            rejections.append(Rejection(entry_id, str(path), "empty file"))
            continue
        if path.suffix.lower() != ".cif" and "_cell_length_a" not in text:
            try:
                [(_, text)] = read_structure_file(path)
            except Exception as exc:
                rejections.append(Rejection(entry_id, str(path), f"unparsable structure ({type(exc).__name__}: {exc})"))
                continue
        ids.append(entry_id)
        payloads.append(text)
        labels.append({n: (r[k + 1] if k + 1 < len(r) else None) for k, n in enumerate(target_names)})
        metas.append({"source": str(path)})
    ds = _assemble(ids, payloads, labels, str(folder), name=folder.name, metas=metas, rejections=rejections, **kw)
    ds.notes.extend(notes)
    atom_init = folder / "atom_init.json"
    if atom_init.is_file():
        ds.atom_init = str(atom_init)
    return ds
