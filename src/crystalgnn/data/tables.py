"""Reading tables (CSV, JSON lines) and turning raw entries into a :class:`CrystalDataset`.

The bottom layer of the readers: :mod:`crystalgnn.data.catalog` builds on it for the short
dataset names, and :mod:`crystalgnn.data.readers` for every other kind of source. It imports
neither of them (imports in ``crystalgnn.data`` go one way: dataset/structure_io/parsing ->
tables -> catalog -> readers).

Sampling before parsing: :func:`sample_positions` draws the seeded random sample of raw entries
(rows, files) that ``subset=`` / ``subset_seed=`` select in every reader, so a subset of a large
source never parses the structures it does not keep.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.data.dataset import CrystalDataset, DataError, Rejection, finite_or_nan
from crystalgnn.data.parsing import parse_structures
from crystalgnn.data.textfiles import count_rows, numbered_rows, open_text, suffix_of

TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".csv.gz", ".jsonl.gz", ".ndjson.gz", ".json.gz", ".json")
STRUCTURE_COLUMNS = (
    "structure",
    "cif",
    "atoms",
    "poscar",
    "cif_discharged",
    "cif_charged",
    "structure_discharged",
    "structure_charged",
)
#: a column of ``{label: unit}`` objects: the table's units (``crystalgnn data fetch`` writes it)
UNITS_COLUMN = "units"
ID_COLUMNS = ("id", "material_id", "mpid", "mp_id", "jid", "name", "mbid")


# --------------------------------------------------------------------------- helpers
_open_text = open_text
_suffix = suffix_of


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
        # an unusable entry is named with its own reason and does not take its id from a
        # later, usable entry with the same id
        if isinstance(result, str):
            rejections.append(Rejection(entry_id, src, result))
            continue
        if entry_id in seen:
            rejections.append(Rejection(entry_id, src, "duplicate id"))
            continue
        seen.add(entry_id)
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


def sample_positions(n: int, subset: int | None, seed: int = 0) -> list[int] | None:
    """Sorted positions of a seeded random sample of ``subset`` out of ``n`` raw entries.

    ``None`` (meaning: every entry) when ``subset`` is ``None`` or not smaller than ``n``. The
    draw is ``numpy.random.default_rng(seed).choice(n, subset, replace=False)``, sorted: the
    same formula as ``training.run.select_subset``, so when no raw entry is rejected before
    that point the same seed picks the same entries.

    Raises:
        ValueError: for a ``subset`` below 1.
    """
    if subset is None:
        return None
    subset = int(subset)
    if subset < 1:
        raise ValueError(f"subset must be a positive number of entries, not {subset}")
    if subset >= n:
        return None
    return [int(i) for i in np.sort(np.random.default_rng(int(seed)).choice(n, size=subset, replace=False))]


def _pick(items: Sequence[Any], subset: int | None, seed: int) -> list[tuple[int, Any]]:
    """``(position, item)`` of the sampled items (all of them without ``subset``)."""
    pos = sample_positions(len(items), subset, seed)
    return list(enumerate(items)) if pos is None else [(k, items[k]) for k in pos]


def _numbered_rows(path: Path, positions: Iterable[int] | None = None) -> Iterable[tuple[int, dict[str, Any]]]:
    """:func:`crystalgnn.data.textfiles.numbered_rows`: ``(row number, row)``, error rows in
    place of unreadable ones.
    """
    return numbered_rows(path, positions)


def iter_table_rows(path: str | Path, positions: Iterable[int] | None = None) -> Iterable[dict[str, Any]]:
    """Rows of a CSV or JSON-lines file (optionally gzipped) as dicts.

    Rows that cannot be read (invalid JSON, not a JSON object, a CSV record with too many
    values, the damage of a truncated or binary file) come as ``{"__error__": reason}``.

    Args:
        path: the file.
        positions: only the rows at these 0-based positions (blank JSON lines do not count);
            every row when ``None``.
    """
    for _, row in _numbered_rows(Path(path), positions):
        yield row


def count_table_rows(path: str | Path) -> int:
    """Number of rows of a CSV or JSON-lines file (non-blank lines; CSV records), read without
    decoding JSON or parsing structures (a truncated file: the rows before the cut).
    """
    return count_rows(Path(path))


def read_table(
    path: str | Path,
    *,
    structure_column: str | None = None,
    id_column: str | None = None,
    label_columns: Sequence[str] | None = None,
    units: dict[str, str] | None = None,
    name: str | None = None,
    rows: Iterable[dict[str, Any]] | None = None,
    subset: int | None = None,
    subset_seed: int = 0,
    end_member: str = "discharged",
    **kw: Any,
) -> CrystalDataset:
    """A table with a structure column (CIF text or Structure dict) and label columns.

    Numeric/boolean columns become graph-level targets; list-valued columns with one value per
    site become per-site targets; other columns go to ``metadata``.

    Args:
        rows: these rows instead of the file's (the file then only names the source).
        subset: read a seeded random sample of this many rows (:func:`sample_positions`),
            chosen before any structure is parsed; rows without an id keep the id of their
            position in the whole table (``row<k>``).
        subset_seed: the seed of that sample.
        end_member: with ``end_member="charged"`` and no ``structure_column``, a table with a
            ``structure_charged`` (or ``cif_charged``) column is read from that column
            (electrode tables written by ``crystalgnn data fetch mp --kind electrodes``).
        **kw: ``n_jobs``, ``show_progress`` (structure parsing).

    A ``units`` column of ``{label: unit}`` objects gives the labels' units (a label with two
    different units is a ``DataError``); explicit ``units`` take precedence.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    numbered: Iterable[tuple[int, dict[str, Any]]]
    if rows is not None:
        numbered = enumerate(rows) if subset is None else _pick(list(rows), subset, subset_seed)
    elif subset is not None:
        numbered = _numbered_rows(path, sample_positions(count_table_rows(path), subset, subset_seed))
    else:
        numbered = _numbered_rows(path)
    ids, payloads, labels, metas = [], [], [], []
    rejections: list[Rejection] = []
    table_units: dict[str, str] = {}
    scol = structure_column
    waiting: list[tuple[int, dict[str, Any]]] = []  # rows read before the structure column is known

    def take(k: int, row: dict[str, Any], scol: str) -> None:
        icol = id_column or next((c for c in ID_COLUMNS if c in row), None)
        entry_id = str(row[icol]) if icol and row.get(icol) not in (None, "") else f"row{k}"
        payload = row.get(scol)
        if scol not in row:
            rejections.append(Rejection(entry_id, str(path), f"missing structure (no {scol!r} column)"))
            return
        if payload is None or (isinstance(payload, str) and not payload.strip()):
            rejections.append(Rejection(entry_id, str(path), f"missing structure (column {scol!r} is empty)"))
            return
        lab: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for c, v in row.items():
            if c in (scol, icol) or c in STRUCTURE_COLUMNS:
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

    n_file_errors = 0
    for k, row in numbered:
        if isinstance(row, dict) and isinstance(row.get(UNITS_COLUMN), dict):
            _merge_units(table_units, row[UNITS_COLUMN], path)
            row = {c: v for c, v in row.items() if c != UNITS_COLUMN}
        if isinstance(row, dict) and scol is None and end_member == "charged":
            scol = next((c for c in ("structure_charged", "cif_charged") if c in row), None)
        if not isinstance(row, dict):
            rejections.append(Rejection(f"row{k}", str(path), f"not a table row ({type(row).__name__})"))
        elif "__error__" in row:
            file_level = bool(row.get("__file__"))
            n_file_errors += file_level
            rejections.append(Rejection(path.name if file_level else f"row{k}", str(path), row["__error__"]))
        elif scol is None and (scol := next((c for c in STRUCTURE_COLUMNS if c in row), None)) is None:
            waiting.append((k, row))
        else:
            for kk, rr in waiting:  # rows before the first one with a structure column
                take(kk, rr, scol)
            waiting = []
            take(k, row, scol)
    if waiting:
        row = waiting[0][1]
        raise DataError(
            f"{path}: no structure column (looked for {', '.join(STRUCTURE_COLUMNS)}); "
            f"columns are {sorted(map(str, row))[:12]}; pass structure_column="
        )
    if not ids and not rejections:
        raise DataError(f"{path}: table has no rows")
    if rows is None and not ids and n_file_errors == len(rejections):
        raise DataError(f"{path}: {rejections[0].reason}")  # nothing readable in the file at all
    if label_columns is None:
        # columns that are numeric in some rows but text in others are metadata, not labels
        text_cols = {c for m in metas for c in m}
        for lab, meta in zip(labels, metas, strict=True):
            for c in text_cols & set(lab):
                meta[c] = lab.pop(c)
    return _assemble(
        ids,
        payloads,
        labels,
        str(path),
        name=name or path.name.split(".")[0],
        metas=metas,
        units=units if units is not None else table_units,
        rejections=rejections,
        **kw,
    )


def _merge_units(into: dict[str, str], cell: dict[str, Any], path: Path) -> None:
    """Add a row's ``units`` cell; a label with two different units is an error."""
    for label, unit in cell.items():
        if not isinstance(unit, str):
            continue
        if into.setdefault(str(label), unit) != unit:
            raise DataError(f"{path}: label {label!r} has unit {into[str(label)]!r} in one row and {unit!r} in another")
