"""The public entry point ``crystalgnn.data.load_dataset``."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from pymatgen.io.cif import CifWriter

from crystalgnn import data
from crystalgnn.data import CrystalDataset, DataError, load_dataset
from crystalgnn.data.readers import load_source

KW = {"show_progress": False, "n_jobs": 1}


def test_load_dataset_is_load_source_with_a_user_docstring(tmp_path, structures):
    folder = tmp_path / "cg"
    folder.mkdir()
    for k, s in structures.items():
        (folder / f"{k}.cif").write_text(str(CifWriter(s)))
    (folder / "id_prop.csv").write_text("".join(f"{k},{i}\n" for i, k in enumerate(structures)) + "ghost,1\n")
    ds = load_dataset(folder, **KW)
    ref = load_source(folder, **KW)
    assert isinstance(ds, CrystalDataset) and ds.ids == ref.ids
    np.testing.assert_array_equal(ds.targets["target"], ref.targets["target"])
    assert [r.id for r in ds.rejections] == ["ghost"]
    assert data.default_targets(ds) == ["target"]
    doc = inspect.getdoc(load_dataset)
    for word in ("id_prop.csv", "units", "rejections", "subset", "targets"):
        assert word in doc
    assert set(data.__all__) >= {"load_dataset", "default_targets", "CrystalDataset"}
    with pytest.raises(DataError):
        load_dataset(tmp_path / "nothing_here")


def test_load_dataset_with_targets_and_units(shared_data):
    ds = load_dataset("perovskites", targets=["heat_all"], subset=20, **KW)
    assert len(ds) == 20 and ds.units["heat_all"] == "eV/cell"
    assert np.isfinite(ds.targets["heat_all"]).all()
