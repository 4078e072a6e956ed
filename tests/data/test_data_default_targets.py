"""A source with one unnamed label needs no target name: ``default_targets`` picks it."""

from __future__ import annotations

import pytest
from pymatgen.io.cif import CifWriter

from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.readers import load_source, read_objects
from crystalgnn.data.targets import default_targets

KW = {"show_progress": False, "n_jobs": 1}


def cgcnn_folder(folder, structures, lines: list[str], alignn: bool = False):
    folder.mkdir()
    for k, s in structures.items():
        name = f"POSCAR-{k}.vasp" if alignn else f"{k}.cif"
        (folder / name).write_text(s.to(fmt="poscar") if alignn else str(CifWriter(s)))
    (folder / "id_prop.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.parametrize("alignn", [False, True])
def test_one_unnamed_target_loads_without_a_name(tmp_path, structures, alignn):
    key = (lambda k: f"POSCAR-{k}.vasp") if alignn else (lambda k: k)
    lines = [f"{key(k)},{i * 0.5}" for i, k in enumerate(structures)]
    folder = cgcnn_folder(tmp_path / "f", structures, lines, alignn)
    for ds in (load_source(folder, **KW), load_source(folder, targets=None, **KW)):
        assert list(ds.targets) == ["target"] and len(ds) == len(structures)
        assert default_targets(ds) == ["target"]
    # training with the default target: the same as naming it
    named = load_source(folder, targets=default_targets(ds), **KW)
    assert named.ids == ds.ids


def test_several_labels_or_none_are_errors_that_list_them(tmp_path, structures):
    lines = [f"{k},{i},{i * 2},{i * 3}" for i, k in enumerate(structures)]
    ds = load_source(cgcnn_folder(tmp_path / "f", structures, lines), **KW)
    with pytest.raises(ValueError, match=r"several labels: target_0, target_1, target_2; choose with --target"):
        default_targets(ds)
    with pytest.raises(ValueError, match="no graph-level label"):
        default_targets(read_objects(list(structures.values())))
    site = CrystalDataset(ids=["a"], structures=[structures["nacl"]], site_targets={"magmom": [None]})
    with pytest.raises(ValueError, match=r"per-site labels: magmom"):
        default_targets(site)


def test_catalog_datasets_name_their_labels(shared_data):
    with pytest.raises(ValueError, match="several labels: heat_all, heat_ref, dir_gap, ind_gap"):
        default_targets(load_source("perovskites", subset=5, **KW))
    assert default_targets(load_source("phonon-cv", subset=5, **KW)) == ["heat_capacity"]
