"""Readers of structure files, folders of them, Matbench/matminer JSON and in-memory objects.

Used by :func:`crystalgnn.data.readers.load_source`, which picks the reader (and re-exports
these); builds on :mod:`crystalgnn.data.tables` and never imports :mod:`crystalgnn.data.readers`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from crystalgnn.data.dataset import CrystalDataset, DataError, Rejection
from crystalgnn.data.structure_checks import StructureParseError
from crystalgnn.data.structure_io import (
    broken_link_reason,
    file_id,
    is_structure_file,
    read_structure_file,
)
from crystalgnn.data.tables import STRUCTURE_COLUMNS, _assemble, _open_text, _pick, read_table


def read_structures(
    paths: Sequence[str | Path],
    *,
    name: str = "structures",
    ids: Sequence[str] | None = None,
    subset: int | None = None,
    subset_seed: int = 0,
    **kw: Any,
) -> CrystalDataset:
    """Structure files (any format pymatgen/ASE read); ids are file stems unless given.

    A multi-frame file gives one entry per frame, ``<id>#0``, ``<id>#1``, ...
    ``subset``/``subset_seed`` read a seeded random sample of that many files (all frames of
    each file drawn).
    """
    if ids is not None and len(ids) != len(paths):
        raise ValueError(f"{len(ids)} ids for {len(paths)} files")
    out_ids: list[str] = []
    structs: list[Any] = []
    metas: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for k, p in _pick(list(paths), subset, subset_seed):
        p = Path(p)
        base = ids[k] if ids is not None else file_id(p)
        try:
            for entry_id, s in read_structure_file(p):
                out_ids.append(base + entry_id[len(file_id(p)) :])
                structs.append(s)
                metas.append({"source": str(p)})
        except StructureParseError as exc:
            rejections.append(Rejection(base, str(p), str(exc)))
        except Exception as exc:
            rejections.append(Rejection(base, str(p), f"unreadable file ({type(exc).__name__}: {exc})"))
    return _assemble(out_ids, structs, [{} for _ in out_ids], name, name=name, metas=metas, rejections=rejections, **kw)


def _folder_files(folder: Path) -> tuple[list[Path], list[str], list[Path]]:
    """The structure files of a folder (recursively, sorted by path), their entry ids, and the
    symbolic links in it that lead nowhere (dangling, or a loop).
    """
    files, broken = [], []
    for p in sorted(folder.rglob("*")):
        if p.is_symlink() and not p.exists():
            broken.append(p)
        elif p.is_file() and is_structure_file(p):
            files.append(p)
    if not files:
        links = (
            f"; {len(broken)} broken symbolic links ({broken[0].name}: {broken_link_reason(broken[0])})"
            if broken
            else ""
        )
        raise DataError(f"{folder}: folder holds no structure files (cif, POSCAR, vasp, extxyz, ...){links}")
    # ids are file stems; where a stem repeats (run1/POSCAR, run2/POSCAR) the folder path
    # relative to ``folder`` is kept, and where that repeats too (a.cif and a.vasp side by side)
    # the file name, so that different files never collide as "duplicates".
    stems = Counter(file_id(p) for p in files)
    ids = [
        file_id(p) if stems[file_id(p)] == 1 else (p.parent.relative_to(folder) / file_id(p)).as_posix() for p in files
    ]
    again = Counter(ids)
    ids = [i if again[i] == 1 else p.relative_to(folder).as_posix() for i, p in zip(ids, files, strict=True)]
    return files, ids, broken


def read_structure_folder(
    folder: str | Path, *, subset: int | None = None, subset_seed: int = 0, **kw: Any
) -> CrystalDataset:
    """Every structure file in ``folder`` (recursively), sorted by path; with ``subset``, a
    seeded random sample of that many files (ids as in the whole folder). Symbolic links that
    lead nowhere are rejections ("dangling symbolic link", "symbolic link loop").
    """
    folder = Path(folder)
    files, ids, broken = _folder_files(folder)
    picked = _pick(list(zip(files, ids, strict=True)), subset, subset_seed)
    ds = read_structures([f for _, (f, _) in picked], name=folder.name, ids=[i for _, (_, i) in picked], **kw)
    for link in broken:
        ds.rejections.append(Rejection(file_id(link), str(link), broken_link_reason(link)))
    return ds


def read_matbench_json(path: str | Path, *, doc: dict[str, Any] | None = None, **kw: Any) -> CrystalDataset:
    """Matbench/matminer pandas-split JSON: ``{"index": [...], "columns": [...], "data": [[...]]}``.

    ``doc`` is the already-loaded JSON document, when the caller has it.
    """
    path = Path(path)
    if doc is None:
        with _open_text(path) as f:
            doc = json.load(f)
    if not (isinstance(doc, dict) and {"columns", "data"} <= set(doc)):
        raise DataError(f"{path}: not a Matbench/matminer JSON (needs 'columns' and 'data')")
    cols = list(doc["columns"])
    index = doc.get("index") or list(range(len(doc["data"])))
    scol = next((c for c in cols if c in STRUCTURE_COLUMNS), None)
    if scol is None:
        raise DataError(f"{path}: no structure column among {cols} (composition-only tasks cannot make graphs)")

    def rows() -> Iterable[dict[str, Any]]:
        for k, values in enumerate(doc["data"]):
            idx = index[k] if k < len(index) else k
            if not isinstance(values, list) or len(values) != len(cols):
                n = len(values) if isinstance(values, list) else type(values).__name__
                yield {"__error__": f"row {k} (index {idx}): {n} values, expected {len(cols)}"}
                continue
            row = dict(zip(cols, values, strict=True))
            row.setdefault("id", str(idx))
            yield row

    return read_table(path, structure_column=scol, rows=rows(), name=path.name.split(".")[0], **kw)


def read_objects(
    objects: Sequence[Any],
    ids: Sequence[str] | None = None,
    *,
    name: str = "objects",
    subset: int | None = None,
    subset_seed: int = 0,
) -> CrystalDataset:
    """In-memory ``Structure`` / ``Atoms`` objects (ids default to ``s0``, ``s1``, ...);
    ``subset``/``subset_seed`` keep a seeded random sample of that many of them.
    """
    ids = list(ids) if ids is not None else [f"s{k}" for k in range(len(objects))]
    if len(ids) != len(objects):
        raise ValueError(f"{len(ids)} ids for {len(objects)} objects")
    picked = _pick(list(zip(ids, objects, strict=True)), subset, subset_seed)
    ids = [i for _, (i, _) in picked]
    return _assemble(ids, [o for _, (_, o) in picked], [{} for _ in ids], name, name=name, show_progress=False)
