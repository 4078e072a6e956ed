"""A JSON-lines table carries its units in a ``units`` column; the reader makes them ``ds.units``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from crystalgnn.data.dataset import DataError
from crystalgnn.data.readers import load_source


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _row(i: int, units: dict | None) -> dict:
    s = Structure(Lattice.cubic(3.0 + 0.1 * i), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    row = {"id": f"r{i}", "structure": s, "band_gap": 1.0 + i, "provenance": {"database": "x"}}
    return row | ({"units": units} if units is not None else {})


def test_units_come_from_the_units_column_and_stay_out_of_labels(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", [_row(0, {"band_gap": "eV"}), _row(1, None), _row(2, {"band_gap": "eV"})])
    ds = load_source(path, show_progress=False)
    assert ds.units == {"band_gap": "eV"} and list(ds.targets) == ["band_gap"]
    assert "units" not in ds.metadata[0] and ds.metadata[0]["provenance"] == {"database": "x"}


def test_two_units_for_one_label_are_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", [_row(0, {"band_gap": "eV"}), _row(1, {"band_gap": "J"})])
    with pytest.raises(DataError, match="'band_gap' has unit 'eV' in one row and 'J'"):
        load_source(path, show_progress=False)
