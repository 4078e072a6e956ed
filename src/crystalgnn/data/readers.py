"""Readers for every way users hold crystal structures; all return a :class:`CrystalDataset`.

Supported sources (see :func:`load_source`, which picks the reader):

* structure files (CIF, POSCAR/CONTCAR/``*.vasp``, extxyz and anything pymatgen or ASE read)
  and folders of them;
* the original CGCNN folder: ``id_prop.csv`` (id, target[, more targets]) + ``<id>.cif``
  (+ an optional ``atom_init.json``);
* the ALIGNN folder: ``id_prop.csv`` whose first column names structure files
  (``POSCAR-JVASP-1.vasp,0.12``);
* tables: CSV or JSON-lines (optionally gzipped) with a structure column (CIF text or a
  ``Structure.as_dict()``) and label columns; list-valued columns as long as the structure are
  per-site labels;
* Matbench/matminer JSON (``{"index", "columns", "data"}``), gzipped or not;
* in-memory ``Structure``/``Atoms`` objects;
* short names of the datasets in ``../shared/data`` (see :mod:`crystalgnn.data.catalog`).

Nothing is dropped silently: each entry that cannot be used is recorded as a
:class:`~crystalgnn.data.dataset.Rejection` (id, source, reason).
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.data.dataset import CrystalDataset, DataError, Rejection, finite_or_nan
from crystalgnn.data.parsing import parse_structures
from crystalgnn.data.structure_io import (
    STRUCTURE_SUFFIXES,
    StructureParseError,
    file_id,
    is_structure_file,
    read_structure_file,
    structure_problem,
)
from crystalgnn.gc_pause import pauses_gc

TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".csv.gz", ".jsonl.gz", ".ndjson.gz", ".json.gz", ".json")
STRUCTURE_COLUMNS = ("structure", "cif", "atoms", "poscar", "cif_discharged", "cif_charged")
ID_COLUMNS = ("id", "material_id", "mpid", "mp_id", "jid", "name", "mbid")


# --------------------------------------------------------------------------- helpers
def _open_text(path: Path, newline: str | None = None) -> io.TextIOBase:
    # utf-8-sig: files saved by spreadsheet programs start with a byte-order mark
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline=newline)  # type: ignore[return-value]
    return path.open("r", encoding="utf-8-sig", newline=newline)


def _suffix(path: Path) -> str:
    s = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    return s


def _assemble(
    ids: list[str],
    payloads: list[Any],
    labels: list[dict[str, Any]],
    source: str,
    *,
    name: str,
    metas: list[dict[str, Any]] | None = None,
    units: dict[str, str] | None = None,
    rejections: list[Rejection] | None = None,
    n_jobs: int | None = None,
    show_progress: bool = True,
) -> CrystalDataset:
    """Parse payloads, drop duplicates and bad structures (recorded), split labels by kind."""
    rejections = list(rejections or [])
    metas = metas or [{} for _ in ids]
    parsed = parse_structures(payloads, n_jobs=n_jobs, show_progress=show_progress)
    seen: set[str] = set()
    keep_ids, keep_structs, keep_labels, keep_meta = [], [], [], []
    for i, result in enumerate(parsed):
        entry_id = ids[i]
        src = str(metas[i].get("source", source))
        if entry_id in seen:
            rejections.append(Rejection(entry_id, src, "duplicate id"))
            continue
        seen.add(entry_id)
        if isinstance(result, str):
            rejections.append(Rejection(entry_id, src, result))
            continue
        keep_ids.append(entry_id)
        keep_structs.append(result)
        keep_labels.append(labels[i])
        keep_meta.append({"source": src, **metas[i]})
    targets: dict[str, list[float]] = {}
    site_targets: dict[str, list[np.ndarray | None]] = {}
    names: list[str] = []
    for lab in keep_labels:
        for k in lab:
            if k not in names:
                names.append(k)
    for k in names:
        values = [lab.get(k) for lab in keep_labels]
        nsites = [len(s) for s in keep_structs]
        if any(isinstance(v, (list, tuple)) for v in values):
            arrs: list[np.ndarray | None] = []
            for v, n in zip(values, nsites, strict=True):
                if isinstance(v, (list, tuple)) and len(v) == n:
                    arrs.append(np.array([finite_or_nan(x) for x in v], dtype=float))
                else:
                    arrs.append(None)
            site_targets[k] = arrs
        else:
            targets[k] = [finite_or_nan(v) for v in values]
    ds = CrystalDataset(
        ids=keep_ids,
        structures=keep_structs,
        targets={k: np.array(v, dtype=float) for k, v in targets.items()},
        units={k: v for k, v in (units or {}).items() if k in targets or k in site_targets},
        site_targets=site_targets,  # type: ignore[arg-type]
        metadata=keep_meta,
        rejections=rejections,
        name=name,
    )
    # A per-site value that is missing or not one value per site stays ``None``; the entry is
    # rejected (with the reason) only when that per-site target is requested.
    return ds


def _list_cell(v: Any) -> Any:
    """A CSV cell holding a JSON list of numbers (``"[0.1, -0.2]"``) becomes that list."""
    if isinstance(v, str):
        t = v.strip()
        if t.startswith("[") and t.endswith("]"):
            try:
                out = json.loads(t)
            except json.JSONDecodeError:
                return v
            if isinstance(out, list) and all(x is None or isinstance(x, (int, float)) for x in out):
                return out
    return v


def _is_label_value(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, float)):
        return True
    if isinstance(v, str):
        s = v.strip().lower()
        if s in {"", "nan", "none", "null", "true", "false", "inf", "-inf"}:
            return True
        try:
            float(s)
            return True
        except ValueError:
            return False
    if isinstance(v, (list, tuple)):
        return all(x is None or isinstance(x, (int, float, bool)) for x in v)
    return False


# --------------------------------------------------------------------------- readers
def read_structures(
    paths: Sequence[str | Path],
    *,
    name: str = "structures",
    ids: Sequence[str] | None = None,
    **kw: Any,
) -> CrystalDataset:
    """Structure files (any format pymatgen/ASE read); ids are file stems unless given.

    A multi-frame file gives one entry per frame, ``<id>#0``, ``<id>#1``, ...
    """
    if ids is not None and len(ids) != len(paths):
        raise ValueError(f"{len(ids)} ids for {len(paths)} files")
    out_ids: list[str] = []
    structs: list[Any] = []
    metas: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for k, p in enumerate(paths):
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
            rejections.append(Rejection(base, str(p), f"unreadable file ({type(exc).__name__}: {str(exc)[:100]})"))
    ids = out_ids
    return _assemble(ids, structs, [{} for _ in ids], name, name=name, metas=metas, rejections=rejections, **kw)


def read_structure_folder(folder: str | Path, **kw: Any) -> CrystalDataset:
    """Every structure file in ``folder`` (recursively), sorted by path."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_structure_file(p))
    if not files:
        raise DataError(f"{folder}: folder holds no structure files (cif, POSCAR, vasp, extxyz, ...)")
    # ids are file stems; where a stem repeats (run1/POSCAR, run2/POSCAR) the folder path
    # relative to ``folder`` is kept so that different files never collide as "duplicates".
    stems = Counter(file_id(p) for p in files)
    ids = [
        file_id(p) if stems[file_id(p)] == 1 else (p.parent.relative_to(folder) / file_id(p)).as_posix()
        for p in files
    ]
    return read_structures(files, name=folder.name, ids=ids, **kw)


def _read_id_prop(path: Path) -> tuple[list[list[str]], list[str] | None]:
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty id_prop.csv")
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: empty id_prop.csv")
    header = None
    first = rows[0]
    if len(first) > 1 and all(not _is_float(c) for c in first[1:]) and first[0].strip().lower() in ID_COLUMNS + ("file", "filename", "structure"):
        header, rows = [c.strip() for c in first], rows[1:]
    return rows, header


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return s.strip().lower() in {"nan", "inf", "-inf", ""}


def read_id_prop_folder(folder: str | Path, *, target_names: Sequence[str] | None = None, **kw: Any) -> CrystalDataset:
    """The CGCNN (``<id>.cif``) or ALIGNN (first column is a file name) ``id_prop.csv`` folder.

    Targets are named ``target`` (one column) or ``target_0``, ``target_1``, ... unless the file
    has a header or ``target_names`` is given. 0/1 columns stay numeric (classification labels).
    """
    folder = Path(folder)
    rows, header = _read_id_prop(folder / "id_prop.csv")
    ncols = max(len(r) for r in rows) - 1
    if target_names is None:
        target_names = header[1:] if header else (["target"] if ncols == 1 else [f"target_{k}" for k in range(ncols)])
    ids, payloads, labels, metas = [], [], [], []
    rejections: list[Rejection] = []
    label_file = str(folder / "id_prop.csv")
    for r in rows:
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
                [(_, text)] = read_structure_file(path)  # type: ignore[assignment]
            except Exception as exc:
                rejections.append(
                    Rejection(entry_id, str(path), f"unparsable structure ({type(exc).__name__}: {str(exc)[:120]})")
                )
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


def iter_table_rows(path: str | Path) -> Iterable[dict[str, Any]]:
    """Rows of a CSV or JSON-lines file (optionally gzipped) as dicts."""
    path = Path(path)
    suffix = _suffix(path)
    with _open_text(path, newline="" if suffix.startswith(".csv") else None) as f:
        if suffix.startswith(".csv"):
            yield from csv.DictReader(f)
        else:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        yield {"__error__": f"line {lineno}: invalid JSON ({exc.msg})"}


def read_table(
    path: str | Path,
    *,
    structure_column: str | None = None,
    id_column: str | None = None,
    label_columns: Sequence[str] | None = None,
    units: dict[str, str] | None = None,
    name: str | None = None,
    rows: Iterable[dict[str, Any]] | None = None,
    **kw: Any,
) -> CrystalDataset:
    """A table with a structure column (CIF text or Structure dict) and label columns.

    Numeric/boolean columns become graph-level targets; list-valued columns with one value per
    site become per-site targets; other columns go to ``metadata``.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    rows_iter = iter_table_rows(path) if rows is None else rows
    ids, payloads, labels, metas = [], [], [], []
    rejections: list[Rejection] = []
    scol = structure_column
    for k, row in enumerate(rows_iter):
        if "__error__" in row:
            rejections.append(Rejection(f"row{k}", str(path), row["__error__"]))
            continue
        if scol is None:
            scol = next((c for c in STRUCTURE_COLUMNS if c in row), None)
            if scol is None:
                raise DataError(
                    f"{path}: no structure column (looked for {', '.join(STRUCTURE_COLUMNS)}); "
                    f"columns are {sorted(row)[:12]}; pass structure_column="
                )
        icol = id_column or next((c for c in ID_COLUMNS if c in row), None)
        entry_id = str(row[icol]) if icol and row.get(icol) not in (None, "") else f"row{k}"
        payload = row.get(scol)
        if payload in (None, ""):
            rejections.append(Rejection(entry_id, str(path), f"missing structure (column {scol!r} is empty)"))
            continue
        lab: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for c, v in row.items():
            if c == scol or c == icol or c in STRUCTURE_COLUMNS:
                continue
            v = _list_cell(v)
            if label_columns is not None:
                (lab if c in label_columns else meta)[c] = v
            elif _is_label_value(v):
                lab[c] = v
            else:
                meta[c] = v
        ids.append(entry_id)
        payloads.append(payload)
        labels.append(lab)
        metas.append(meta)
    if not ids and not rejections:
        raise DataError(f"{path}: table has no rows")
    if label_columns is None:
        # columns that are numeric in some rows but text in others are metadata, not labels
        text_cols = {c for m in metas for c in m}
        for lab, meta in zip(labels, metas, strict=True):
            for c in text_cols & set(lab):
                meta[c] = lab.pop(c)
    return _assemble(ids, payloads, labels, str(path), name=name or path.name.split(".")[0], metas=metas, units=units, rejections=rejections, **kw)


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
        for idx, values in zip(index, doc["data"], strict=True):
            row = dict(zip(cols, values, strict=True))
            row.setdefault("id", str(idx))
            yield row

    return read_table(path, structure_column=scol, rows=rows(), name=path.name.split(".")[0], **kw)


def read_objects(objects: Sequence[Any], ids: Sequence[str] | None = None, *, name: str = "objects") -> CrystalDataset:
    """In-memory ``Structure`` / ``Atoms`` objects (ids default to ``s0``, ``s1``, ...)."""
    ids = list(ids) if ids is not None else [f"s{k}" for k in range(len(objects))]
    return _assemble(ids, list(objects), [{} for _ in ids], name, name=name, show_progress=False)


# --------------------------------------------------------------------------- dispatch
@pauses_gc
def load_source(
    source: Any,
    *,
    targets: Sequence[str] | None = None,
    structure_column: str | None = None,
    end_member: str = "discharged",
    n_jobs: int | None = None,
    show_progress: bool = True,
) -> CrystalDataset:
    """Load any supported source into a :class:`CrystalDataset`.

    Args:
        source: a path (file or folder), a short dataset name, a ``CrystalDataset``, or
            ``Structure``/``Atoms`` objects (one or a list).
        targets: labels that must be present; entries with a missing/NaN/inf value are
            rejected (with the reason). Derived names (``log10_X``, ``X_per_atom``, ``abs_X``)
            are computed on request.
        structure_column: the table column holding structures (detected when omitted).
        end_member: for battery-electrode tables, ``"discharged"`` (default) or ``"charged"``.
        n_jobs: parser processes (default: all available CPUs).
        show_progress: draw progress bars.
    """
    from crystalgnn.data.catalog import is_catalog_name, load_catalog
    from crystalgnn.data.targets import ensure_targets

    kw = {"n_jobs": n_jobs, "show_progress": show_progress}
    if isinstance(source, CrystalDataset):
        ds = source
    elif isinstance(source, (list, tuple)) and source and not isinstance(source[0], (str, Path)):
        ds = read_objects(list(source))
    elif isinstance(source, (list, tuple)):
        datasets = [load_source(s, structure_column=structure_column, end_member=end_member, **kw) for s in source]
        ds = concat_datasets(datasets) if len(datasets) > 1 else datasets[0]
    elif not isinstance(source, (str, Path)):
        ds = read_objects([source])
    elif isinstance(source, str) and is_catalog_name(source):
        ds = load_catalog(source, end_member=end_member, **kw)
    else:
        path = Path(source)
        if not path.exists():
            from crystalgnn.data.catalog import catalog_names

            raise DataError(f"{source}: no such file or folder, and not a dataset name ({', '.join(catalog_names())})")
        if path.is_dir():
            if not any(path.iterdir()):
                raise DataError(f"{path}: empty folder")
            ds = read_id_prop_folder(path, **kw) if (path / "id_prop.csv").is_file() else read_structure_folder(path, **kw)
        elif path.stat().st_size == 0:
            raise DataError(f"{path}: empty file")
        elif _suffix(path) in TABLE_SUFFIXES:
            if _suffix(path) in (".json", ".json.gz"):
                doc = _load_json(path)
                if isinstance(doc, dict) and {"columns", "data"} <= set(doc):
                    ds = read_matbench_json(path, doc=doc, **kw)
                elif isinstance(doc, dict) and {"lattice", "sites"} <= set(doc):
                    ds = read_objects([doc], ids=[path.name.split(".")[0]], name=path.name.split(".")[0])
                    for m in ds.metadata:
                        m["source"] = str(path)
                elif isinstance(doc, list):
                    ds = read_table(path, structure_column=structure_column, rows=iter(doc), **kw)
                else:  # JSON lines (or a one-record file)
                    ds = read_table(path, structure_column=structure_column, **kw)
            else:
                ds = read_table(path, structure_column=structure_column, **kw)
        else:
            ds = read_structures([path], name=path.stem, **kw)
    if targets:
        ensure_targets(ds, targets)
        ds.require_targets(targets)
    return ds


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
    from crystalgnn.data.catalog import catalog_path, is_catalog_name, load_catalog

    kw = {"n_jobs": n_jobs, "show_progress": show_progress}
    if isinstance(source, str) and is_catalog_name(source):
        path = catalog_path(source)

        def read(rows: list[dict[str, Any]]) -> CrystalDataset:
            return load_catalog(source, end_member=end_member, rows=rows, **kw)

    elif isinstance(source, (str, Path)) and Path(source).is_file() and _suffix(Path(source)).startswith((".csv", ".jsonl", ".ndjson")):
        path = Path(source)
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file")

        def read(rows: list[dict[str, Any]]) -> CrystalDataset:
            return read_table(path, structure_column=structure_column, rows=iter(rows), **kw)

    else:
        return None
    return _chunks(path, read, targets, chunk_size)


def _chunks(
    path: Path, read: Any, targets: Sequence[str] | None, chunk_size: int
) -> Iterator[CrystalDataset]:
    from crystalgnn.data.targets import ensure_targets

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


def _load_json(path: Path) -> Any:
    """The whole file as one JSON document, or ``None`` when it is JSON lines."""
    with _open_text(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError:
            return None


def concat_datasets(datasets: Sequence[CrystalDataset]) -> CrystalDataset:
    """Join datasets; targets absent from one part are NaN there."""
    names = []
    for d in datasets:
        names += [k for k in d.targets if k not in names]
    site_names = sorted({k for d in datasets for k in d.site_targets})
    out = CrystalDataset(
        ids=[i for d in datasets for i in d.ids],
        structures=[s for d in datasets for s in d.structures],
        targets={k: np.concatenate([d.targets.get(k, np.full(len(d), math.nan)) for d in datasets]) for k in names},
        units={k: v for d in datasets for k, v in d.units.items()},
        site_targets={k: [a for d in datasets for a in d.site_targets.get(k, [None] * len(d))] for k in site_names},  # type: ignore[misc]
        metadata=[m for d in datasets for m in d.metadata],
        rejections=[r for d in datasets for r in d.rejections],
        atom_init=next((d.atom_init for d in datasets if d.atom_init), None),
        name="+".join(d.name for d in datasets),
    )
    seen: set[str] = set()
    dup = []
    for i, k in enumerate(out.ids):
        if k in seen:
            dup.append(i)
        seen.add(k)
    if dup:
        out.drop(dup, "duplicate id")
    return out


__all__ = [
    "concat_datasets",
    "iter_source_chunks",
    "iter_table_rows",
    "load_source",
    "read_id_prop_folder",
    "read_matbench_json",
    "read_objects",
    "read_structure_folder",
    "read_structures",
    "read_table",
    "structure_problem",
]
