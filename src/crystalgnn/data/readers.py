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

``subset=N`` / ``subset_seed=`` draw a seeded random sample of N raw entries (table rows,
``id_prop.csv`` rows, files) before any structure is parsed (see :func:`load_source`).

Imports go one way: this module uses :mod:`crystalgnn.data.catalog` and
:mod:`crystalgnn.data.tables`; neither imports it.

Nothing is dropped silently: each entry that cannot be used is recorded as a
:class:`~crystalgnn.data.dataset.Rejection` (id, source, reason).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.data import catalog
from crystalgnn.data.dataset import CrystalDataset, DataError, Rejection
from crystalgnn.data.id_prop import read_id_prop_folder, read_id_prop_rows
from crystalgnn.data.structure_io import (
    StructureParseError,
    file_id,
    is_structure_file,
    read_structure_file,
    structure_problem,
)
from crystalgnn.data.tables import (
    STRUCTURE_COLUMNS,
    TABLE_SUFFIXES,
    _assemble,
    _open_text,
    _pick,
    _suffix,
    count_table_rows,
    iter_table_rows,
    read_table,
    sample_positions,
)
from crystalgnn.data.targets import ensure_targets
from crystalgnn.gc_pause import pauses_gc


# --------------------------------------------------------------------------- readers
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


def _folder_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The structure files of a folder (recursively, sorted by path) and their entry ids."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_structure_file(p))
    if not files:
        raise DataError(f"{folder}: folder holds no structure files (cif, POSCAR, vasp, extxyz, ...)")
    # ids are file stems; where a stem repeats (run1/POSCAR, run2/POSCAR) the folder path
    # relative to ``folder`` is kept so that different files never collide as "duplicates".
    stems = Counter(file_id(p) for p in files)
    ids = [
        file_id(p) if stems[file_id(p)] == 1 else (p.parent.relative_to(folder) / file_id(p)).as_posix() for p in files
    ]
    return files, ids


def read_structure_folder(
    folder: str | Path, *, subset: int | None = None, subset_seed: int = 0, **kw: Any
) -> CrystalDataset:
    """Every structure file in ``folder`` (recursively), sorted by path; with ``subset``, a
    seeded random sample of that many files (ids as in the whole folder).
    """
    folder = Path(folder)
    files, ids = _folder_files(folder)
    picked = _pick(list(zip(files, ids, strict=True)), subset, subset_seed)
    return read_structures([f for _, (f, _) in picked], name=folder.name, ids=[i for _, (_, i) in picked], **kw)


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


# --------------------------------------------------------------------------- dispatch
def catalog_key_of(source: Any) -> str | None:
    """The catalog key of ``source``: a short name (or alias), or a path to a file whose name is
    a catalog file's name (``.../castelli_perovskites_cdvae.jsonl.gz`` -> ``perovskites``), so
    that a file keeps the labels and units of its short name.
    """
    if isinstance(source, str) and catalog.is_catalog_name(source):
        return catalog.ALIASES.get(source, source)
    if isinstance(source, (str, Path)):
        return catalog.catalog_key_for_file(source)
    return None


def count_raw_entries(source: Any, *, structure_column: str | None = None) -> int:
    """How many raw entries (rows, files, objects) :func:`load_source` would read from
    ``source``, counted without parsing a structure: what ``subset`` samples from.
    """
    if isinstance(source, CrystalDataset):
        return len(source)
    if isinstance(source, (list, tuple)):
        if source and not isinstance(source[0], (str, Path)):
            return len(source)
        return sum(count_raw_entries(s, structure_column=structure_column) for s in source)
    if not isinstance(source, (str, Path)):
        return 1
    key = catalog_key_of(source)
    if key is not None:
        path = Path(source) if Path(source).is_file() else catalog.catalog_path(key)
        return count_table_rows(path)
    path = _existing(source)
    if path.is_dir():
        if (path / "id_prop.csv").is_file():
            return len(read_id_prop_rows(path / "id_prop.csv")[0])
        return len(_folder_files(path)[0])
    if _suffix(path) in (".json", ".json.gz"):
        doc = _load_json(path)
        if isinstance(doc, dict) and {"columns", "data"} <= set(doc):
            return len(doc["data"])
        if isinstance(doc, list):
            return len(doc)
        if isinstance(doc, dict):
            return 1
        return count_table_rows(path)
    if _suffix(path) in TABLE_SUFFIXES:
        return count_table_rows(path)
    return 1


def _existing(source: str | Path) -> Path:
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"{source}: no such file or folder, and not a dataset name ({', '.join(catalog.catalog_names())})"
        )
    return path


@pauses_gc
def load_source(
    source: Any,
    *,
    targets: Sequence[str] | None = None,
    structure_column: str | None = None,
    end_member: str = "discharged",
    n_jobs: int | None = None,
    show_progress: bool = True,
    subset: int | None = None,
    subset_seed: int = 0,
) -> CrystalDataset:
    """Load any supported source into a :class:`CrystalDataset`.

    Args:
        source: a path (file or folder), a short dataset name, a ``CrystalDataset``, or
            ``Structure``/``Atoms`` objects (one or a list). A file whose name is that of a
            catalog dataset (``castelli_perovskites_cdvae.jsonl.gz``) is read as that dataset,
            with its labels and units, wherever it lies.
        targets: labels that must be present; entries with a missing/NaN/inf value are
            rejected (with the reason). Derived names (``log10_X``, ``X_per_atom``, ``abs_X``)
            are computed on request. ``None`` (or empty) requires nothing; see
            :func:`~crystalgnn.data.targets.default_targets` for the label to use then.
        structure_column: the table column holding structures (detected when omitted).
        end_member: for battery-electrode tables, ``"discharged"`` (default) or ``"charged"``.
        n_jobs: parser processes (default: all available CPUs).
        show_progress: draw progress bars.
        subset: read only a seeded random sample of this many raw entries (table rows,
            ``id_prop.csv`` rows, structure files, objects), drawn *before* any structure is
            parsed; ``None`` (default) or a number not below the source's size reads everything.
            Entries of the sample that are rejected (bad structure, missing label, ...) are
            reported and not replaced, so the dataset may hold fewer than ``subset`` entries.
            Over several sources, the sample is drawn from all their entries together.
        subset_seed: seed of that sample. The positions are those of
            ``training.run.select_subset`` (``default_rng(seed).choice(n, subset)``, sorted) but
            over the raw entries, not the parsed ones: the same seed gives the same entries as
            sampling after parsing only when nothing before the sampled positions is rejected.
    """
    kw: dict[str, Any] = {"n_jobs": n_jobs, "show_progress": show_progress}
    pick: dict[str, Any] = {"subset": subset, "subset_seed": subset_seed}
    if subset is not None:
        sample_positions(0, subset)  # validate early (a positive number)
    if isinstance(source, CrystalDataset):
        pos = sample_positions(len(source), subset, subset_seed)
        ds = source if pos is None else source.subset(pos)
    elif isinstance(source, (list, tuple)) and source and not isinstance(source[0], (str, Path)):
        ds = read_objects(list(source), **pick)
    elif isinstance(source, (list, tuple)):
        parts = _split_subset(source, subset, subset_seed, structure_column)
        datasets = [
            load_source(s, structure_column=structure_column, end_member=end_member, subset=n, subset_seed=seed, **kw)
            for s, n, seed in parts
        ]
        ds = concat_datasets(datasets) if len(datasets) > 1 else datasets[0]
    elif not isinstance(source, (str, Path)):
        ds = read_objects([source])
    elif (key := catalog_key_of(source)) is not None:
        if isinstance(source, str) and catalog.is_catalog_name(source):
            # the name as given (aliases included) goes to load_catalog
            ds = catalog.load_catalog(source, end_member=end_member, **pick, **kw)
        else:
            ds = catalog.load_catalog(key, path=Path(source), end_member=end_member, **pick, **kw)
    else:
        path = _existing(source)
        if path.is_dir():
            if not any(path.iterdir()):
                raise DataError(f"{path}: empty folder")
            reader = read_id_prop_folder if (path / "id_prop.csv").is_file() else read_structure_folder
            ds = reader(path, **pick, **kw)
        elif path.stat().st_size == 0:
            raise DataError(f"{path}: empty file")
        elif _suffix(path) in TABLE_SUFFIXES:
            if _suffix(path) in (".json", ".json.gz"):
                doc = _load_json(path)
                if isinstance(doc, dict) and {"columns", "data"} <= set(doc):
                    ds = read_matbench_json(path, doc=doc, **pick, **kw)
                elif isinstance(doc, dict) and {"lattice", "sites"} <= set(doc):
                    ds = read_objects([doc], ids=[path.name.split(".")[0]], name=path.name.split(".")[0])
                    for m in ds.metadata:
                        m["source"] = str(path)
                elif isinstance(doc, list):
                    ds = read_table(path, structure_column=structure_column, rows=iter(doc), **pick, **kw)
                else:  # JSON lines (or a one-record file)
                    ds = read_table(path, structure_column=structure_column, end_member=end_member, **pick, **kw)
            else:
                ds = read_table(path, structure_column=structure_column, end_member=end_member, **pick, **kw)
        else:
            ds = read_structures([path], name=path.stem, **kw)
    several = isinstance(source, (list, tuple)) and bool(source) and isinstance(source[0], (str, Path))
    if subset is not None and ds is not source and not several:  # (each of several sources is named)
        ds.name = f"{ds.name}[subset {subset}, seed {subset_seed}]"
    if targets:
        ensure_targets(ds, targets)
        ds.require_targets(targets)
    return ds


def _split_subset(
    sources: Sequence[Any], subset: int | None, seed: int, structure_column: str | None
) -> list[tuple[Any, int | None, int]]:
    """(source, its subset, its seed) for each source, such that the sample over all sources is
    a seeded uniform sample of ``subset`` of their raw entries together; sources that get no
    entry are left out.
    """
    if subset is None:
        return [(s, None, seed) for s in sources]
    counts = [count_raw_entries(s, structure_column=structure_column) for s in sources]
    pos = sample_positions(sum(counts), subset, seed)
    if pos is None:
        return [(s, None, seed) for s in sources]
    edges = np.cumsum([0, *counts])
    taken = np.histogram(pos, bins=edges)[0] if len(sources) > 1 else np.array([len(pos)])
    return [(s, int(n), seed + k) for k, (s, n) in enumerate(zip(sources, taken, strict=True)) if n > 0]


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
    "count_raw_entries",
    "count_table_rows",
    "iter_table_rows",
    "load_source",
    "read_id_prop_folder",
    "read_matbench_json",
    "read_objects",
    "read_structure_folder",
    "read_structures",
    "read_table",
    "sample_positions",
    "structure_problem",
]
