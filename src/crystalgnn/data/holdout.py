"""Hold compositions out of a data table: a filtered copy that a model can be trained on.

A rediscovery test (issue 17) asks whether a screen finds known materials that none of its
models saw. :func:`filter_jsonl` copies a JSON-lines table (optionally gzipped) without the
rows whose composition is held out, row text unchanged, so that the copy is read exactly as the
original (keep the catalog file name and :func:`~crystalgnn.data.catalog.catalog_key_for_file`
reads it as that data set: ``crystalgnn train copy/mp_crysxpp_36k.jsonl.gz``).

Compositions are compared by :func:`formula_key`, the reduced formula of the smallest integer
multiple, so ``LiNi0.5Mn1.5O4``, ``Li2NiMn3O8`` and ``Li4Ni2Mn6O16`` are one key (pymatgen's
``Composition.reduced_formula`` leaves fractional amounts as they are). A row is held out when
any of its formula columns is: for an insertion-electrode table (``low_formula`` and
``high_formula``) an electrode goes when either end member is held out. Lines that are not JSON
objects and rows without a readable formula are copied unchecked (the reader names them later)
and counted.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, cast

from pymatgen.core import Composition

ELECTRODE_FORMULA_COLUMNS: tuple[str, ...] = ("low_formula", "high_formula")
"""Formula columns of the MP insertion-electrode tables (discharged, charged end member)."""


@lru_cache(maxsize=65536)
def formula_key(formula: str) -> str:
    """Reduced formula of the smallest integer multiple of ``formula`` (``ValueError`` if unreadable)."""
    try:
        integer, _ = Composition(formula).get_integer_formula_and_factor()
        return Composition(integer).reduced_formula
    except (KeyError, AttributeError) as exc:  # pymatgen's errors on odd symbols
        raise ValueError(f"unreadable formula {formula!r}") from exc


@dataclass
class HoldoutCounts:
    """What :func:`filter_jsonl` did: rows kept, removed (per held-out key), copied unchecked."""

    kept: int = 0
    removed: int = 0
    unchecked: int = 0
    by_key: Counter[str] = field(default_factory=Counter)


def _open(path: Path, mode: str) -> IO[str]:
    if path.name.endswith(".gz"):
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8"))
    return open(path, mode, encoding="utf-8")


def _row_keys(line: str, columns: Sequence[str]) -> list[str] | None:
    """Formula keys of a row's columns, ``None`` when the row cannot be checked."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(row, dict):
        return None
    keys = []
    for col in columns:
        value = row.get(col)
        if not isinstance(value, str) or not value:
            continue
        try:
            keys.append(formula_key(value))
        except ValueError:
            continue
    return keys or None


def filter_jsonl(
    source: str | Path,
    target: str | Path,
    held_out: Iterable[str],
    columns: Sequence[str] = ("formula",),
    removed_to: str | Path | None = None,
) -> HoldoutCounts:
    """Copy ``source`` to ``target`` without the rows whose formula is held out.

    Args:
        source, target: JSON-lines files (``.gz`` compressed when so named); ``target`` is
            written whole or not at all (temporary file, then renamed).
        held_out: formulas to remove, in any writing (compared by :func:`formula_key`).
        columns: the row's formula columns; a row goes when any of them is held out
            (:data:`ELECTRODE_FORMULA_COLUMNS` for electrode tables).
        removed_to: also write the removed rows to this file (e.g. as known references).

    Returns:
        The counts; ``by_key`` counts removed rows per held-out key (a row holding two held-out
        keys counts for both).
    """
    keys = {formula_key(f) for f in held_out}
    src, dst = Path(source), Path(target)
    tmp = dst.with_name(dst.name + ".partial" + ("" if not dst.name.endswith(".gz") else ".gz"))
    counts = HoldoutCounts()
    rem_file = _open(Path(removed_to), "w") if removed_to is not None else None
    try:
        with _open(src, "r") as fin, _open(tmp, "w") as fout:
            for line in fin:
                if not line.strip():
                    continue
                text = line if line.endswith("\n") else line + "\n"
                found = _row_keys(line, columns)
                hits = sorted(set(found or []) & keys)
                if found is None:
                    counts.unchecked += 1
                if not hits:
                    fout.write(text)
                    counts.kept += 1
                    continue
                counts.removed += 1
                counts.by_key.update(hits)
                if rem_file is not None:
                    rem_file.write(text)
        os.replace(tmp, dst)
    finally:
        if rem_file is not None:
            rem_file.close()
        if tmp.exists():
            tmp.unlink()
    return counts
