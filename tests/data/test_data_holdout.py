"""Held-out compositions: filtered copies of data tables (crystalgnn.data.holdout)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from crystalgnn.data.holdout import ELECTRODE_FORMULA_COLUMNS, filter_jsonl, formula_key
from tinydata import SHARED_DATA, read_rows

ELECTRODES = SHARED_DATA / "mp_insertion_electrodes_gatgnn.jsonl.gz"


def test_formula_key_merges_fractional_and_integer_writings() -> None:
    assert formula_key("LiNi0.5Mn1.5O4") == formula_key("Li2NiMn3O8") == formula_key("Li4Ni2Mn6O16")
    assert formula_key("Li(CoO2)2") == formula_key("LiCo2O4") != formula_key("LiCoO2")
    assert formula_key("Fe2P2O8") == "FePO4"
    with pytest.raises(ValueError):
        formula_key("Li(")


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [line for line in fh if line.strip()]


def test_electrode_rows_go_when_either_end_member_is_held_out(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "low_formula": "Li2NiMn3O8", "high_formula": "NiMn3O8"},  # both held out
        {"id": "b", "low_formula": "NaCoO2", "high_formula": "CoO2"},  # charged member held out
        {"id": "c", "low_formula": "LiFePO4", "high_formula": "Li0.5FePO4"},  # discharged member
        {"id": "d", "low_formula": "LiTiS2", "high_formula": "TiS2"},  # kept
        {"id": "e", "low_formula": "", "high_formula": None},  # nothing to check: kept, counted
    ]
    src = tmp_path / "in.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
        fh.write("{not json\n")
    out, removed = tmp_path / "out" / "table.jsonl.gz", tmp_path / "removed.jsonl.gz"
    out.parent.mkdir()
    counts = filter_jsonl(
        src, out, ["LiNi0.5Mn1.5O4", "Ni0.5Mn1.5O4", "CoO2", "LiFePO4"], ELECTRODE_FORMULA_COLUMNS, removed
    )
    assert [json.loads(line)["id"] for line in _lines(removed)] == ["a", "b", "c"]
    kept = _lines(out)
    assert [json.loads(line)["id"] for line in kept[:2]] == ["d", "e"] and kept[2] == "{not json\n"
    assert (counts.kept, counts.removed, counts.unchecked) == (3, 3, 2)
    assert counts.by_key == {"Li2Mn3NiO8": 1, "Mn3NiO8": 1, "CoO2": 1, "LiFePO4": 1}
    assert not list(out.parent.glob("*partial*"))


def test_filtered_copy_reads_as_the_catalog_dataset(tmp_path: Path) -> None:
    """A copy with the catalog file name is the same data set to the readers, minus the rows."""
    from crystalgnn.data.readers import load_source

    rows = read_rows(ELECTRODES, 12)
    src = tmp_path / "src.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    drop = rows[3]["high_formula"]
    out = tmp_path / "filtered" / ELECTRODES.name
    out.parent.mkdir()
    counts = filter_jsonl(src, out, [drop], ELECTRODE_FORMULA_COLUMNS)
    expect = [
        r["id"]
        for r in rows
        if formula_key(drop) not in {formula_key(r["low_formula"]), formula_key(r["high_formula"])}
    ]
    assert counts.kept == len(expect) < len(rows)
    ds = load_source(str(out), show_progress=False, n_jobs=1)
    assert ds.ids == expect
    assert "average_voltage" in ds.targets
    charged = load_source(str(out), end_member="charged", show_progress=False, n_jobs=1)
    assert {s.composition.reduced_formula for s in charged.structures}.isdisjoint({formula_key(drop)})
