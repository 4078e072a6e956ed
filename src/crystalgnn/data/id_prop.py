"""The folders of the original CGCNN code (``id_prop.csv`` + ``<id>.cif`` [+ ``atom_init.json``])
and of ALIGNN (``id_prop.csv`` whose first column names structure files).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crystalgnn.data.dataset import CrystalDataset, DataError, Rejection
from crystalgnn.data.structure_io import STRUCTURE_SUFFIXES, read_structure_file
from crystalgnn.data.tables import ID_COLUMNS, _assemble, _pick


def read_id_prop_rows(path: Path) -> tuple[list[list[str]], list[str] | None]:
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty id_prop.csv")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: empty id_prop.csv")
    header = None
    first = rows[0]
    if (
        len(first) > 1
        and all(not _is_float(c) for c in first[1:])
        and first[0].strip().lower() in ID_COLUMNS + ("file", "filename", "structure")
    ):
        header, rows = [c.strip() for c in first], rows[1:]
    return rows, header


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return s.strip().lower() in {"nan", "inf", "-inf", ""}


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
    rows, header = read_id_prop_rows(folder / "id_prop.csv")
    ncols = max(len(r) for r in rows) - 1
    if target_names is None:
        target_names = header[1:] if header else (["target"] if ncols == 1 else [f"target_{k}" for k in range(ncols)])
    ids, payloads, labels, metas = [], [], [], []
    rejections: list[Rejection] = []
    label_file = str(folder / "id_prop.csv")
    for _, r in _pick(rows, subset, subset_seed):
        key = r[0].strip()
        if not key:
            rejections.append(Rejection("", label_file, f"row without an id: {r}"))
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
            rejections.append(
                Rejection(entry_id, label_file, f"label file names a missing structure file ({candidates[0].name})")
            )
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
    atom_init = folder / "atom_init.json"
    if atom_init.is_file():
        ds.atom_init = str(atom_init)
    return ds
