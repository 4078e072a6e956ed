"""Bad input never crashes a batch and is never dropped silently: each bad entry becomes a
Rejection (id, source, reason), the good entries survive, and rejected.csv lists them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import DummySpecies, Lattice, Structure
from pymatgen.io.cif import CifWriter

from crystalgnn.data.dataset import CrystalDataset, DataError, Rejection
from crystalgnn.data.readers import load_source, read_objects

KW = {"show_progress": False, "n_jobs": 1}


def cif(s: Structure) -> str:
    return str(CifWriter(s))


def reasons(ds: CrystalDataset) -> dict[str, str]:
    return {r.id: r.reason for r in ds.rejections}


def p1_cif(symbols: list[str], frac: list[list[float]], occ: list[float] | None = None, a: float = 4.0) -> str:
    occ = occ or [1.0] * len(symbols)
    lines = [
        "data_test",
        "_symmetry_space_group_name_H-M   'P 1'",
        *(f"_cell_length_{x}   {a:.6f}" for x in "abc"),
        *(f"_cell_angle_{x}   90.000000" for x in ("alpha", "beta", "gamma")),
        "loop_",
        " _symmetry_equiv_pos_site_id",
        " _symmetry_equiv_pos_as_xyz",
        "  1  'x, y, z'",
        "loop_",
        " _atom_site_type_symbol",
        " _atom_site_label",
        " _atom_site_symmetry_multiplicity",
        " _atom_site_fract_x",
        " _atom_site_fract_y",
        " _atom_site_fract_z",
        " _atom_site_occupancy",
    ]
    for k, (sym, xyz, o) in enumerate(zip(symbols, frac, occ, strict=True)):
        lines.append(f"  {sym}  {sym}{k}  1  {xyz[0]:.6f}  {xyz[1]:.6f}  {xyz[2]:.6f}  {o}")
    return "\n".join(lines) + "\n"


#: a disordered CIF with a real space group (no type symbols), so pymatgen's parser handles it
DISORDERED_FM3M = """data_disordered
_symmetry_space_group_name_H-M   'F m -3 m'
_symmetry_Int_Tables_number   225
_cell_length_a   4.2
_cell_length_b   4.2
_cell_length_c   4.2
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   90
loop_
 _symmetry_equiv_pos_as_xyz
 'x, y, z'
 'x+1/2, y+1/2, z'
 'x+1/2, y, z+1/2'
 'x, y+1/2, z+1/2'
loop_
 _atom_site_label
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
 Mg1  0.0  0.0  0.0  0.5
 Ni1  0.0  0.0  0.0  0.5
 O1   0.5  0.5  0.5  1.0
"""

GOOD_CIF = p1_cif(["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
BAD_CIFS = {
    "garbage": "this is not a CIF file at all\n_cell_length_a what\n",
    "no_atoms": p1_cif([], []),
    "partial": p1_cif(["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], occ=[0.5, 1.0]),
    "disordered_fm3m": DISORDERED_FM3M,
    "xx_element": p1_cif(["Na", "Xx"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "dummy_x": p1_cif(["Na", "X"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
}
EXPECTED = {
    "garbage": "unparsable",
    "no_atoms": "no atoms",
    "partial": "partial occupancy",
    "disordered_fm3m": "partial occupancy",
    "xx_element": "unknown element",
    "dummy_x": "unknown element",
}


def test_bad_cif_files_in_a_folder_are_rejected_one_by_one(tmp_path):
    for name, text in BAD_CIFS.items():
        (tmp_path / f"{name}.cif").write_text(text)
    (tmp_path / "good1.cif").write_text(GOOD_CIF)
    (tmp_path / "good2.cif").write_text(GOOD_CIF.replace("Cl", "Br"))
    (tmp_path / "empty.cif").write_text("")
    (tmp_path / "blank.cif").write_text("   \n\n")
    ds = load_source(tmp_path, **KW)
    assert ds.ids == ["good1", "good2"]
    assert [s.composition.reduced_formula for s in ds.structures] == ["NaCl", "NaBr"]
    why = reasons(ds)
    assert set(why) == set(BAD_CIFS) | {"empty", "blank"}
    for name, expected in EXPECTED.items():
        assert expected in why[name], (name, why[name])
    assert "empty" in why["empty"]
    assert "empty" in why["blank"]
    for r in ds.rejections:
        assert r.source == str(tmp_path / f"{r.id}.cif")


def test_bad_structures_in_a_table(tmp_path):
    good = Structure(Lattice.cubic(3.0), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    disordered = Structure(Lattice.cubic(3.0), [{"Cs": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    dummy = Structure(Lattice.cubic(3.0), [DummySpecies("X"), "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rows = [
        {"id": "ok-cif", "cif": cif(good), "y": 1.0},
        {"id": "garbage", "cif": "hello world", "y": 2.0},
        {"id": "empty-text", "cif": "", "y": 3.0},
        {"id": "null", "cif": None, "y": 3.5},
        {"id": "disordered", "cif": cif(disordered), "y": 4.0},
        {"id": "xx", "cif": BAD_CIFS["xx_element"], "y": 5.0},
        {"id": "dummy-dict", "cif": json.dumps(dummy.as_dict()), "y": 6.0},
        {"id": "disordered-dict", "cif": json.dumps(disordered.as_dict()), "y": 7.0},
        {"id": "ok-dict", "cif": json.dumps(good.as_dict()), "y": 8.0},
        {"id": "ok-cif", "cif": cif(good), "y": 9.0},
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    ds = load_source(path, **KW)
    assert ds.ids == ["ok-cif", "ok-dict"]
    np.testing.assert_allclose(ds.targets["y"], [1.0, 8.0])
    why = reasons(ds)
    assert "unparsable" in why["garbage"]
    assert "missing structure" in why["empty-text"] and "missing structure" in why["null"]
    assert "partial occupancy" in why["disordered"]
    assert "partial occupancy" in why["disordered-dict"]
    assert "unknown element" in why["xx"]
    assert "unknown element" in why["dummy-dict"]
    dup = [r for r in ds.rejections if r.id == "ok-cif"]
    assert len(dup) == 1 and dup[0].reason == "duplicate id"
    bad_line = [r for r in ds.rejections if "invalid JSON" in r.reason]
    assert len(bad_line) == 1 and "line 11" in bad_line[0].reason
    assert all(r.source == str(path) for r in ds.rejections)
    assert len(ds) + len(ds.rejections) == len(rows) + 1


def write_cgcnn(folder: Path, rows: list[str], cifs: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in cifs.items():
        (folder / f"{name}.cif").write_text(text)
    (folder / "id_prop.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_cgcnn_folder_missing_files_duplicates_and_bad_labels(tmp_path):
    ids = ["a", "b", "c", "d", "e", "f", "g"]
    folder = write_cgcnn(
        tmp_path / "cg",
        ["a,1.0", "b,nan", "c,inf", "d,", "e,-inf", "a,2.0", "ghost,1.0", "f,1.5", "g,not-a-number"],
        {i: GOOD_CIF for i in ids},
    )
    # without targets=..., labels that are missing stay NaN and nothing but the bad rows is
    # rejected; a label that is text (not a number, not empty) is a bad row, naming the value
    loose = load_source(folder, **KW)
    assert loose.ids == ids[:-1]
    assert np.isnan(loose.targets["target"][1]) and np.isinf(loose.targets["target"][2])
    assert reasons(loose) == {
        "a": "duplicate id",
        "ghost": "label file names a missing structure file (ghost.cif)",
        "g": "label 'target' is not a number: 'not-a-number' (line 9)",
    }
    # requested: NaN / inf / missing labels are rejected, naming the target
    ds = load_source(folder, targets=["target"], **KW)
    assert ds.ids == ["a", "f"]
    np.testing.assert_allclose(ds.targets["target"], [1.0, 1.5])
    why = reasons(ds)
    for i in ("b", "c", "d", "e"):
        assert why[i] == "label 'target' is missing, NaN or infinite"
    assert why["g"].startswith("label 'target' is not a number")
    assert why["ghost"].startswith("label file names a missing structure file")
    ghost = next(r for r in ds.rejections if r.id == "ghost")
    assert ghost.source == str(folder / "id_prop.csv")


def test_null_labels_in_a_table_rejected_only_when_requested(tmp_path):
    s = Structure(Lattice.cubic(3.0), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    rows = [
        {"id": "a", "structure": s, "gap": 1.0, "ef": None},
        {"id": "b", "structure": s, "gap": None, "ef": 2.0},
        {"id": "c", "structure": s, "gap": "NaN", "ef": 3.0},
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_source(path, targets=["ef"], **KW).ids == ["b", "c"]
    ds = load_source(path, targets=["gap"], **KW)
    assert ds.ids == ["a"]
    assert reasons(ds) == {
        "b": "label 'gap' is missing, NaN or infinite",
        "c": "label 'gap' is missing, NaN or infinite",
    }
    assert load_source(path, **KW).ids == ["a", "b", "c"]


def test_per_site_label_with_wrong_length_is_rejected_when_requested(tmp_path):
    s = Structure(Lattice.cubic(3.0), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    rows = [
        {"id": "ok", "structure": s, "m": [0.1, -0.1]},
        {"id": "short", "structure": s, "m": [0.1]},
        {"id": "none", "structure": s, "m": None},
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_source(path, **KW).ids == ["ok", "short", "none"]
    ds = load_source(path, targets=["m"], **KW)
    assert ds.ids == ["ok"]
    np.testing.assert_allclose(ds.site_targets["m"][0], [0.1, -0.1])
    assert set(reasons(ds)) == {"short", "none"}
    assert all("per-site label 'm'" in r.reason for r in ds.rejections)


def test_unknown_target_is_a_clear_error(tmp_path):
    path = write_cgcnn(tmp_path / "cg", ["a,1.0"], {"a": GOOD_CIF})
    with pytest.raises(KeyError, match="band_gap"):
        load_source(path, targets=["band_gap"], **KW)


def test_write_rejections_csv(tmp_path):
    folder = write_cgcnn(
        tmp_path / "cg", ["a,1.0", "b,nan", "ghost,2", "x,3"], {"a": GOOD_CIF, "b": GOOD_CIF, "x": BAD_CIFS["partial"]}
    )
    ds = load_source(folder, targets=["target"], **KW)
    out = ds.write_rejections(tmp_path / "run" / "rejected.csv")
    assert out == tmp_path / "run" / "rejected.csv"
    with out.open(newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["id", "source", "reason"]
    rows = {r[0]: r for r in table[1:]}
    assert set(rows) == {"b", "ghost", "x"}
    assert rows["ghost"][1].endswith("id_prop.csv")
    assert rows["x"][1].endswith("x.cif") and "partial occupancy" in rows["x"][2]
    assert rows["b"][2] == "label 'target' is missing, NaN or infinite"
    assert ds.rejection_counts()["label 'target' is missing, NaN or infinite"] == 1


def test_rejection_reasons_with_commas_and_newlines_round_trip(tmp_path):
    ds = read_objects([])
    # a reason is kept on one line (newlines collapse to a space), so rejected.csv has one line per entry
    ds.rejections.append(Rejection("odd,id", "a/b.csv", 'reason, with "quotes"\nand a newline'))
    out = ds.write_rejections(tmp_path / "rejected.csv")
    with out.open(newline="") as f:
        table = list(csv.reader(f))
    assert table[1] == ["odd,id", "a/b.csv", 'reason, with "quotes" and a newline']
    assert len(out.read_text().splitlines()) == 2


def test_empty_sources_are_data_errors(tmp_path):
    empty_dir = tmp_path / "empty_dir"
    empty_dir.mkdir()
    with pytest.raises(DataError, match="empty folder"):
        load_source(empty_dir, **KW)
    (tmp_path / "nostruct").mkdir()
    (tmp_path / "nostruct" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no structure files"):
        load_source(tmp_path / "nostruct", **KW)
    for name in ("empty.cif", "empty.csv", "empty.jsonl.gz", "POSCAR"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(DataError, match="empty file"):
            load_source(tmp_path / name, **KW)
    (tmp_path / "header_only.csv").write_text("id,cif,y\n")
    with pytest.raises(DataError, match="no rows"):
        load_source(tmp_path / "header_only.csv", **KW)
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "id_prop.csv").write_text("")
    with pytest.raises(DataError, match="empty id_prop.csv"):
        load_source(cg, **KW)


def test_unreadable_poscar_is_rejected_not_raised(tmp_path):
    (tmp_path / "POSCAR").write_text("this is\nnot a poscar\n")
    (tmp_path / "ok.cif").write_text(GOOD_CIF)
    ds = load_source(tmp_path, **KW)
    assert ds.ids == ["ok"]
    assert list(reasons(ds)) == ["POSCAR"]
    assert "unreadable" in reasons(ds)["POSCAR"]


def test_drop_and_require_targets_keep_arrays_aligned():
    structs = [Structure(Lattice.cubic(3.0 + k), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]) for k in range(4)]
    ds = CrystalDataset(
        ids=["a", "b", "c", "d"],
        structures=structs,
        targets={"y": [1.0, np.nan, 3.0, 4.0]},
        site_targets={"m": [np.array([k, -k], float) for k in range(4)]},
        metadata=[{"k": k} for k in range(4)],
    )
    ds.require_targets(["y"])
    assert ds.ids == ["a", "c", "d"]
    ds.drop([1], "manual", source="test")
    assert ds.ids == ["a", "d"]
    assert [m["k"] for m in ds.metadata] == [0, 3]
    np.testing.assert_allclose(ds.targets["y"], [1.0, 4.0])
    np.testing.assert_allclose(ds.site_targets["m"][1], [3, -3])
    assert [s.lattice.a for s in ds.structures] == [3.0, 6.0]
    assert [(r.id, r.reason) for r in ds.rejections] == [
        ("b", "label 'y' is missing, NaN or infinite"),
        ("c", "manual"),
    ]
    assert ds.rejections[1].source == "test"


def test_molecules_without_a_cell_are_rejected_clearly(tmp_path):
    import ase.io
    from ase.build import molecule

    ase.io.write(tmp_path / "water.xyz", molecule("H2O"))
    (tmp_path / "ok.cif").write_text(GOOD_CIF)
    ds = load_source(tmp_path, **KW)
    assert ds.ids == ["ok"]
    assert reasons(ds) == {"water": "not a periodic crystal (no three-dimensional cell)"}
    ds = load_source([molecule("CH4"), Structure.from_str(GOOD_CIF, fmt="cif")], **KW)
    assert ds.ids == ["s1"]
    assert reasons(ds) == {"s0": "not a periodic crystal (no three-dimensional cell)"}
