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

Imports go one way: this module uses :mod:`crystalgnn.data.catalog`, :mod:`crystalgnn.data.files`
and :mod:`crystalgnn.data.tables`; none of them imports it.

Nothing is dropped silently: each entry that cannot be used is recorded as a
:class:`~crystalgnn.data.dataset.Rejection` (id, source, reason).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import crystalgnn.data.catalog as catalog
from crystalgnn.data.dataset import CrystalDataset, DataError, Rejection
from crystalgnn.data.files import (
    _folder_files,
    read_matbench_json,
    read_objects,
    read_structure_folder,
    read_structures,
)
from crystalgnn.data.id_prop import read_id_prop_folder, read_id_prop_rows
from crystalgnn.data.structure_checks import structure_problem
from crystalgnn.data.structure_io import broken_link_reason
from crystalgnn.data.tables import (
    TABLE_SUFFIXES,
    _open_text,
    _suffix,
    count_table_rows,
    iter_table_rows,
    read_table,
    sample_positions,
)
from crystalgnn.data.targets import ensure_targets
from crystalgnn.data.textfiles import FILE_ERRORS, binary_problem
from crystalgnn.gc_pause import pauses_gc


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
    if not path.exists() and path.is_symlink():
        raise DataError(f"{source}: {broken_link_reason(path)}")
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
        ds = _load_several(source, structure_column, end_member, subset, subset_seed, kw)
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
        try:
            ds = _load_path(path, structure_column, pick, kw, end_member)
        except OSError as exc:  # permissions, a failing disk, ...
            raise DataError(f"{path}: unreadable ({type(exc).__name__}: {exc.strerror or exc})") from exc
    several = isinstance(source, (list, tuple)) and bool(source) and isinstance(source[0], (str, Path))
    if subset is not None and ds is not source and not several:  # (each of several sources is named)
        ds.name = f"{ds.name}[subset {subset}, seed {subset_seed}]"
    if targets:
        ensure_targets(ds, targets)
        ds.require_targets(targets)
    return ds


def _load_path(
    path: Path, structure_column: str | None, pick: dict[str, Any], kw: dict[str, Any], end_member: str = "discharged"
) -> CrystalDataset:
    """One file or folder (not a catalog file): the reader its kind needs.

    Raises:
        DataError: when nothing in it can be used as a file (empty, binary, truncated before its
            first row; a lone structure file whose structure is rejected: the reason).
    """
    if path.is_dir():
        if not any(path.iterdir()):
            raise DataError(f"{path}: empty folder")
        reader = read_id_prop_folder if (path / "id_prop.csv").is_file() else read_structure_folder
        return reader(path, **pick, **kw)
    if not path.is_file():
        raise DataError(f"{path}: not a regular file or folder")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    if _suffix(path) not in TABLE_SUFFIXES:
        ds = read_structures([path], name=path.stem, **kw)
        if len(ds) == 0 and ds.rejections:  # the file is the entry: a lone unusable source
            raise DataError(f"{path}: {ds.rejections[0].reason}")
        return ds
    if _suffix(path) in (".json", ".json.gz"):
        doc = _load_json(path)
        if isinstance(doc, dict) and {"columns", "data"} <= set(doc):
            return read_matbench_json(path, doc=doc, **pick, **kw)
        if isinstance(doc, dict) and {"lattice", "sites"} <= set(doc):
            ds = read_objects([doc], ids=[path.name.split(".")[0]], name=path.name.split(".")[0])
            if len(ds) == 0:
                raise DataError(f"{path}: {ds.rejections[0].reason}")
            for m in ds.metadata:
                m["source"] = str(path)
            return ds
        if isinstance(doc, list):
            return read_table(path, structure_column=structure_column, rows=iter(doc), **pick, **kw)
    return read_table(path, structure_column=structure_column, end_member=end_member, **pick, **kw)  # CSV, JSON lines


def _load_several(
    sources: Sequence[Any],
    structure_column: str | None,
    end_member: str,
    subset: int | None,
    subset_seed: int,
    kw: dict[str, Any],
) -> CrystalDataset:
    """Several sources as one dataset. A source that cannot be used at all (empty, unreadable,
    binary, broken link, ...) is a rejection naming it; the other sources are kept.

    Raises:
        DataError: for a path that does not exist (and is not a dataset name), or when no
            source can be used.
    """
    for s in sources:  # a mistyped path is a usage error, not a rejection
        if isinstance(s, (str, Path)) and catalog_key_of(s) is None and not Path(s).is_symlink():
            _existing(s)
    parts = _split_subset(sources, subset, subset_seed, structure_column)
    datasets, failed = [], []
    for s, n, seed in parts:
        try:
            datasets.append(
                load_source(
                    s, structure_column=structure_column, end_member=end_member, subset=n, subset_seed=seed, **kw
                )
            )
        except DataError as exc:
            text = str(exc)
            reason = text[len(str(s)) + 2 :] if text.startswith(f"{s}: ") else text
            failed.append(Rejection(Path(str(s)).name, str(s), reason))
    if not datasets:
        more = f" (and {len(failed) - 1} more unusable sources)" if len(failed) > 1 else ""
        raise DataError(f"no usable source: {failed[0].source}: {failed[0].reason}{more}")
    ds = concat_datasets(datasets) if len(datasets) > 1 else datasets[0]
    ds.rejections.extend(failed)
    return ds


def _split_subset(
    sources: Sequence[Any], subset: int | None, seed: int, structure_column: str | None
) -> list[tuple[Any, int | None, int]]:
    """(source, its subset, its seed) for each source, such that the sample over all sources is
    a seeded uniform sample of ``subset`` of their raw entries together; sources that get no
    entry are left out, and those that cannot be counted (unusable) are read in full, to be
    named as rejections.
    """
    if subset is None:
        return [(s, None, seed) for s in sources]
    counts = []
    for s in sources:
        try:
            counts.append(count_raw_entries(s, structure_column=structure_column))
        except (DataError, OSError):
            counts.append(-1)  # unusable: read in full below, to be named
    if all(c < 0 for c in counts):
        return [(s, None, seed) for s in sources]
    broken: list[tuple[Any, int | None, int]] = [(s, None, seed) for s, c in zip(sources, counts, strict=True) if c < 0]
    sources = [s for s, c in zip(sources, counts, strict=True) if c >= 0]
    counts = [c for c in counts if c >= 0]
    pos = sample_positions(sum(counts), subset, seed)
    if pos is None:
        return [(s, None, seed) for s in sources] + broken
    edges = np.cumsum([0, *counts])
    taken = np.histogram(pos, bins=edges)[0] if len(sources) > 1 else np.array([len(pos)])
    parts: list[tuple[Any, int | None, int]] = [
        (s, int(n), seed + k) for k, (s, n) in enumerate(zip(sources, taken, strict=True)) if n > 0
    ]
    return parts + broken


def _load_json(path: Path) -> Any:
    """The whole file as one JSON document, or ``None`` when it is JSON lines (or damaged: then
    it is read line by line, which keeps the rows before the damage).

    Raises:
        DataError: for a file that is not text at all.
    """
    problem = binary_problem(path)
    if problem:
        raise DataError(f"{path}: {problem}")
    with _open_text(path) as f:
        try:
            return json.load(f)
        except (json.JSONDecodeError, RecursionError, *FILE_ERRORS):
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
        notes=[n for d in datasets for n in d.notes],
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
