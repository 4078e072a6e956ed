"""Every reader returns the same CrystalDataset (files, folders, CGCNN/ALIGNN folders, tables,
Matbench JSON, in-memory objects)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter
from pymatgen.io.vasp import Poscar

from crystalgnn.data.catalog import catalog_names
from crystalgnn.data.dataset import CrystalDataset, DataError
from crystalgnn.data.readers import concat_datasets, load_source, read_objects, read_table

KW = {"show_progress": False, "n_jobs": 1}


def same_structure(a: Structure, b: Structure) -> bool:
    return (
        len(a) == len(b)
        and [s.species_string for s in a] == [s.species_string for s in b]
        and np.allclose(a.lattice.matrix, b.lattice.matrix, atol=1e-5)
        and np.allclose(a.frac_coords % 1.0, b.frac_coords % 1.0, atol=1e-5)
    )


def cif(s: Structure) -> str:
    return str(CifWriter(s))


def write_gz_or_plain(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- structure files
def test_single_cif_file(tmp_path, structures):
    s = structures["srtio3"]
    path = tmp_path / "sto.cif"
    path.write_text(cif(s))
    ds = load_source(path, **KW)
    assert isinstance(ds, CrystalDataset)
    assert ds.ids == ["sto"]
    assert ds.rejections == []
    assert same_structure(ds.structures[0], Structure.from_str(path.read_text(), fmt="cif"))
    assert ds.structures[0].composition.reduced_formula == "SrTiO3"
    assert ds.metadata[0]["source"] == str(path)


@pytest.mark.parametrize("name", ["POSCAR", "POSCAR-mp-5.vasp", "sto.vasp", "CONTCAR"])
def test_single_poscar_file(tmp_path, structures, name):
    s = structures["srtio3"]
    path = tmp_path / name
    Poscar(s).write_file(path)
    ds = load_source(path, **KW)
    expected_id = name[: -len(".vasp")] if name.endswith(".vasp") else name
    assert ds.ids == [expected_id]
    assert same_structure(ds.structures[0], s)


def test_extxyz_file_with_several_frames(tmp_path, structures):
    frames = [AseAtomsAdaptor.get_atoms(structures[k]) for k in ("nacl", "srtio3", "si")]
    path = tmp_path / "traj.extxyz"
    ase.io.write(path, frames, format="extxyz")
    ds = load_source(path, **KW)
    assert ds.ids == ["traj#0", "traj#1", "traj#2"]
    assert [len(s) for s in ds.structures] == [2, 5, 2]
    assert same_structure(ds.structures[1], structures["srtio3"])


def test_folder_of_mixed_structure_files(tmp_path, structures):
    (tmp_path / "a.cif").write_text(cif(structures["nacl"]))
    Poscar(structures["srtio3"]).write_file(tmp_path / "b.vasp")
    ase.io.write(tmp_path / "c.extxyz", AseAtomsAdaptor.get_atoms(structures["si"]), format="extxyz")
    (tmp_path / "notes.txt").write_text("not a structure")
    ds = load_source(tmp_path, **KW)
    assert ds.ids == ["a", "b", "c"]
    assert [s.composition.reduced_formula for s in ds.structures] == ["NaCl", "SrTiO3", "Si"]
    assert ds.rejections == []
    assert ds.name == tmp_path.name


def test_folder_of_vasp_runs_keeps_every_poscar(tmp_path, structures):
    """``run1/POSCAR`` and ``run2/POSCAR`` are different entries, not duplicates."""
    for k, key in enumerate(("nacl", "si")):
        d = tmp_path / f"run{k + 1}"
        d.mkdir()
        Poscar(structures[key]).write_file(d / "POSCAR")
    ds = load_source(tmp_path, **KW)
    assert len(ds) == 2, ds.rejections
    assert len(set(ds.ids)) == 2
    assert all("run" in i for i in ds.ids)
    assert [s.composition.reduced_formula for s in ds.structures] == ["NaCl", "Si"]


def test_same_dataset_from_every_structure_format(tmp_path, structures):
    s = structures["lifeo2"]
    (tmp_path / "x.cif").write_text(cif(s))
    Poscar(s).write_file(tmp_path / "x.vasp")
    ase.io.write(tmp_path / "x.extxyz", AseAtomsAdaptor.get_atoms(s), format="extxyz")
    loaded = [load_source(tmp_path / f"x.{ext}", **KW) for ext in ("cif", "vasp", "extxyz")]
    for ds in loaded:
        assert ds.ids == ["x"]
        assert ds.structures[0].composition == s.composition
        assert np.isclose(ds.structures[0].volume, s.volume)
        assert ds.structures[0].matches(s)


def test_in_memory_structures_and_atoms(structures):
    objs = [structures["nacl"], AseAtomsAdaptor.get_atoms(structures["srtio3"])]
    ds = load_source(objs, **KW)
    assert ds.ids == ["s0", "s1"]
    assert same_structure(ds.structures[0], structures["nacl"])
    assert ds.structures[1].composition.reduced_formula == "SrTiO3"
    single = load_source(structures["si"], **KW)
    assert single.ids == ["s0"] and len(single.structures[0]) == 2
    named = read_objects([structures["si"]], ids=["my-si"])
    assert named.ids == ["my-si"]


def test_crystal_dataset_passes_through(structures):
    ds = read_objects(list(structures.values()))
    assert load_source(ds, **KW) is ds


# --------------------------------------------------------------------------- CGCNN folder
def write_cgcnn_folder(folder: Path, structures, rows: list[list[str]], atom_init: bool = True) -> None:
    folder.mkdir(exist_ok=True)
    keys = list(structures)
    for k, row in enumerate(rows):
        (folder / f"{row[0]}.cif").write_text(cif(structures[keys[k % len(keys)]]))
    with (folder / "id_prop.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    if atom_init:
        (folder / "atom_init.json").write_text(
            json.dumps({str(z): [float(z == i) for i in range(1, 5)] for z in range(1, 101)})
        )


def test_cgcnn_folder_regression(tmp_path, structures):
    rows = [["mp-1", "-1.25"], ["mp-2", "0.5"], ["1000041", "2.0"], ["mp-4", "3e-1"]]
    write_cgcnn_folder(tmp_path / "cg", structures, rows)
    ds = load_source(tmp_path / "cg", **KW)
    assert ds.ids == ["mp-1", "mp-2", "1000041", "mp-4"]
    assert list(ds.targets) == ["target"]
    np.testing.assert_allclose(ds.targets["target"], [-1.25, 0.5, 2.0, 0.3])
    assert ds.atom_init == str(tmp_path / "cg" / "atom_init.json")
    assert json.loads(Path(ds.atom_init).read_text())["1"][0] == 1.0
    assert [s.composition.reduced_formula for s in ds.structures] == ["NaCl", "Si", "SrTiO3", "LiFeO2"]
    assert ds.rejections == []


def test_cgcnn_folder_classification_and_several_targets(tmp_path, structures):
    rows = [["a", "1", "0.1", "7"], ["b", "0", "0.2", "8"], ["c", "1", "0.3", "9"]]
    write_cgcnn_folder(tmp_path / "cls", structures, rows, atom_init=False)
    ds = load_source(tmp_path / "cls", **KW)
    assert ds.ids == ["a", "b", "c"]
    assert list(ds.targets) == ["target_0", "target_1", "target_2"]
    np.testing.assert_array_equal(ds.targets["target_0"], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(ds.targets["target_1"], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(ds.targets["target_2"], [7, 8, 9])
    assert ds.atom_init is None


def test_cgcnn_folder_with_header_names_targets(tmp_path, structures):
    rows = [["id", "band_gap", "is_metal"], ["x1", "1.1", "0"], ["x2", "0", "1"]]
    folder = tmp_path / "hdr"
    folder.mkdir()
    for k, r in enumerate(rows[1:]):
        (folder / f"{r[0]}.cif").write_text(cif(list(structures.values())[k]))
    with (folder / "id_prop.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    ds = load_source(folder, targets=["band_gap"], **KW)
    assert ds.ids == ["x1", "x2"]
    np.testing.assert_allclose(ds.targets["band_gap"], [1.1, 0.0])
    np.testing.assert_allclose(ds.targets["is_metal"], [0, 1])


# --------------------------------------------------------------------------- ALIGNN folder
def test_alignn_folder(tmp_path, structures):
    folder = tmp_path / "alignn"
    folder.mkdir()
    names = ["POSCAR-JVASP-1.vasp", "POSCAR-JVASP-7.vasp", "POSCAR-x.vasp"]
    for name, key in zip(names, ["nacl", "srtio3", "si"], strict=True):
        Poscar(structures[key]).write_file(folder / name)
    (folder / "id_prop.csv").write_text("POSCAR-JVASP-1.vasp,0.12\nPOSCAR-JVASP-7.vasp,-3.5\nPOSCAR-x.vasp,0\n")
    ds = load_source(folder, **KW)
    assert ds.ids == ["POSCAR-JVASP-1", "POSCAR-JVASP-7", "POSCAR-x"]
    np.testing.assert_allclose(ds.targets["target"], [0.12, -3.5, 0.0])
    assert same_structure(ds.structures[0], structures["nacl"])
    assert same_structure(ds.structures[1], structures["srtio3"])
    assert ds.metadata[1]["source"] == str(folder / "POSCAR-JVASP-7.vasp")


def test_alignn_folder_ids_do_not_depend_on_which_files_exist(tmp_path, structures):
    """A missing first file must not switch the reader to CGCNN ids (``x.vasp`` vs ``x``)."""
    folder = tmp_path / "alignn"
    folder.mkdir()
    Poscar(structures["si"]).write_file(folder / "POSCAR-b.vasp")
    (folder / "id_prop.csv").write_text("POSCAR-a.vasp,1.0\nPOSCAR-b.vasp,2.0\n")
    ds = load_source(folder, **KW)
    assert ds.ids == ["POSCAR-b"]
    assert [(r.id, "POSCAR-a.vasp" in r.reason) for r in ds.rejections] == [("POSCAR-a", True)]


def test_alignn_folder_with_cif_files(tmp_path, structures):
    folder = tmp_path / "alignn_cif"
    folder.mkdir()
    (folder / "JVASP-1.cif").write_text(cif(structures["nacl"]))
    (folder / "JVASP-2.cif").write_text(cif(structures["si"]))
    (folder / "id_prop.csv").write_text("JVASP-1.cif,0.5\nJVASP-2.cif,0.25\n")
    ds = load_source(folder, **KW)
    assert ds.ids == ["JVASP-1", "JVASP-2"]
    np.testing.assert_allclose(ds.targets["target"], [0.5, 0.25])


# --------------------------------------------------------------------------- tables
def _table_rows(structures, kind: str) -> list[dict]:
    rows = []
    for k, (key, s) in enumerate(structures.items()):
        payload = cif(s) if kind == "cif" else s.as_dict()
        rows.append(
            {"id": f"id-{key}", "structure": payload, "energy": -1.0 - k, "is_metal": k % 2 == 0, "formula": s.formula}
        )
    return rows


@pytest.mark.parametrize("kind", ["cif", "dict"])
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_jsonl_tables(tmp_path, structures, kind, suffix):
    rows = _table_rows(structures, kind)
    path = write_gz_or_plain(tmp_path / f"t{suffix}", "".join(json.dumps(r) + "\n" for r in rows))
    ds = load_source(path, **KW)
    assert ds.ids == [r["id"] for r in rows]
    np.testing.assert_allclose(ds.targets["energy"], [-1, -2, -3, -4])
    np.testing.assert_array_equal(ds.targets["is_metal"], [1, 0, 1, 0])
    assert "formula" not in ds.targets and ds.metadata[0]["formula"] == rows[0]["formula"]
    for s, key in zip(ds.structures, structures, strict=True):
        assert s.composition == structures[key].composition
    if kind == "dict":  # a Structure dict keeps its site order exactly
        for s, key in zip(ds.structures, structures, strict=True):
            assert same_structure(s, structures[key])


@pytest.mark.parametrize("kind", ["cif", "dict"])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_csv_tables(tmp_path, structures, kind, suffix):
    rows = _table_rows(structures, kind)
    buf = []
    import io

    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow({**r, "structure": r["structure"] if kind == "cif" else json.dumps(r["structure"])})
    buf.append(out.getvalue())
    path = write_gz_or_plain(tmp_path / f"t{suffix}", buf[0])
    ds = load_source(path, **KW)
    assert ds.ids == [r["id"] for r in rows]
    np.testing.assert_allclose(ds.targets["energy"], [-1, -2, -3, -4])
    np.testing.assert_array_equal(ds.targets["is_metal"], [1, 0, 1, 0])
    assert [s.composition.reduced_formula for s in ds.structures] == ["NaCl", "Si", "SrTiO3", "LiFeO2"]


def test_jsonl_cif_column_named_cif(tmp_path, structures):
    rows = [{"material_id": f"m{k}", "cif": cif(s), "gap": 0.1 * k} for k, s in enumerate(structures.values())]
    path = write_gz_or_plain(tmp_path / "c.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ds = load_source(path, targets=["gap"], **KW)
    assert ds.ids == ["m0", "m1", "m2", "m3"]
    np.testing.assert_allclose(ds.targets["gap"], [0, 0.1, 0.2, 0.3])


def test_per_site_columns_become_site_targets_aligned_with_sites(tmp_path, structures):
    """Per-site label = atomic number of the site, so any misalignment shows."""
    rows = []
    for key, s in structures.items():
        rows.append({"id": key, "structure": s.as_dict(), "z": [float(site.specie.Z) for site in s], "e": 1.0})
    path = write_gz_or_plain(tmp_path / "sites.jsonl.gz", "".join(json.dumps(r) + "\n" for r in rows))
    ds = load_source(path, targets=["z", "abs_z"], **KW)
    assert "z" in ds.site_targets and "z" not in ds.targets
    for s, z in zip(ds.structures, ds.site_targets["z"], strict=True):
        assert z.shape == (len(s),)
        np.testing.assert_array_equal(z, [site.specie.Z for site in s])
    np.testing.assert_array_equal(ds.site_targets["abs_z"][2], ds.site_targets["z"][2])


def test_per_site_columns_with_cif_text(tmp_path, structures):
    """With CIF text, labels follow the site order pymatgen's parser gives (as in the README)."""
    rows = []
    for key, s in structures.items():
        parsed = Structure.from_str(cif(s), fmt="cif")
        rows.append({"id": key, "cif": cif(s), "z": [site.specie.Z for site in parsed]})
    path = write_gz_or_plain(tmp_path / "sites.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ds = load_source(path, **KW)
    for s, z in zip(ds.structures, ds.site_targets["z"], strict=True):
        np.testing.assert_array_equal(z, [site.specie.Z for site in s])


def test_per_site_columns_in_csv(tmp_path, structures):
    """A CSV cell holding a JSON list of numbers is a per-site label."""
    path = tmp_path / "sites.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "structure", "q", "e"])
        for key, s in structures.items():
            w.writerow([key, json.dumps(s.as_dict()), json.dumps([0.5 * site.specie.Z for site in s]), 1.5])
    ds = load_source(path, **KW)
    assert list(ds.site_targets) == ["q"]
    for s, q in zip(ds.structures, ds.site_targets["q"], strict=True):
        np.testing.assert_allclose(q, [0.5 * site.specie.Z for site in s])
    np.testing.assert_allclose(ds.targets["e"], 1.5)


def test_text_column_with_gaps_is_metadata_not_a_target(tmp_path, structures):
    rows = [
        {"id": "a", "structure": structures["nacl"].as_dict(), "note": "", "e": 1},
        {"id": "b", "structure": structures["si"].as_dict(), "note": "from paper", "e": 2},
    ]
    path = write_gz_or_plain(tmp_path / "n.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ds = load_source(path, **KW)
    assert "note" not in ds.targets
    assert ds.metadata[1]["note"] == "from paper"
    np.testing.assert_allclose(ds.targets["e"], [1, 2])


def test_read_table_explicit_columns(tmp_path, structures):
    rows = [{"key": f"k{i}", "xtal": s.as_dict(), "y": float(i), "junk": i} for i, s in enumerate(structures.values())]
    path = write_gz_or_plain(tmp_path / "t.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ds = read_table(path, structure_column="xtal", id_column="key", label_columns=["y"], units={"y": "eV"}, **KW)
    assert ds.ids == ["k0", "k1", "k2", "k3"]
    assert list(ds.targets) == ["y"] and ds.units == {"y": "eV"}
    assert ds.metadata[2]["junk"] == 2


def test_table_without_structure_column_is_a_data_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,formula,e\na,NaCl,1\n")
    with pytest.raises(DataError, match="no structure column"):
        load_source(path, **KW)


# --------------------------------------------------------------------------- Matbench JSON
@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
@pytest.mark.parametrize("indent", [None, 1])
def test_matbench_json(tmp_path, structures, suffix, indent):
    keys = list(structures)
    doc = {
        "index": [f"mb-test-{k + 1:05d}" for k in range(len(keys))],
        "columns": ["structure", "e_form"],
        "data": [[structures[k].as_dict(), 0.25 * i] for i, k in enumerate(keys)],
    }
    path = write_gz_or_plain(tmp_path / f"matbench_test{suffix}", json.dumps(doc, indent=indent))
    ds = load_source(path, targets=["e_form"], **KW)
    assert ds.ids == doc["index"]
    np.testing.assert_allclose(ds.targets["e_form"], [0, 0.25, 0.5, 0.75])
    for s, k in zip(ds.structures, keys, strict=True):
        assert same_structure(s, structures[k])


@pytest.mark.parametrize("columns_first", [True, False])
def test_matbench_json_with_a_long_index(tmp_path, structures, columns_first):
    """pandas ``to_json(orient='split')`` writes ``columns`` first; pretty-printed files with a
    long ``index`` first must be recognised too (not only by their first few kB)."""
    n = 600
    s = structures["nacl"].as_dict()
    index = list(range(n))
    doc = (
        {"columns": ["structure", "y"], "index": index}
        if columns_first
        else {"index": index, "columns": ["structure", "y"]}
    )
    doc["data"] = [[s, float(i)] for i in range(n)]
    path = write_gz_or_plain(tmp_path / "mb.json.gz", json.dumps(doc, indent=None if columns_first else 2))
    ds = load_source(path, **KW)
    assert len(ds) == n and ds.ids[:3] == ["0", "1", "2"]
    assert ds.targets["y"][-1] == n - 1


def test_matbench_composition_only_is_a_clear_error(tmp_path):
    doc = {"index": [0], "columns": ["composition", "gap expt"], "data": [["NaCl", 8.5]]}
    path = write_gz_or_plain(tmp_path / "mb.json", json.dumps(doc))
    with pytest.raises(DataError, match="no structure column"):
        load_source(path, **KW)


def test_json_list_of_records(tmp_path, structures):
    recs = [{"id": k, "structure": s.as_dict(), "y": 1.0} for k, s in structures.items()]
    path = write_gz_or_plain(tmp_path / "recs.json", json.dumps(recs, indent=2))
    ds = load_source(path, **KW)
    assert ds.ids == list(structures)


def test_single_structure_json(tmp_path, structures):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(structures["srtio3"].as_dict()))
    ds = load_source(path, **KW)
    assert ds.ids == ["one"] and same_structure(ds.structures[0], structures["srtio3"])


# --------------------------------------------------------------------------- dispatch errors
def test_nonexistent_path_names_the_dataset_short_names(tmp_path):
    with pytest.raises(DataError) as err:
        load_source(tmp_path / "nope.cif", **KW)
    msg = str(err.value)
    assert "nope.cif" in msg and "no such file" in msg
    for name in catalog_names():
        assert name in msg


def test_typo_in_a_dataset_name_is_a_data_error():
    with pytest.raises(DataError, match="perovskites"):
        load_source("perovskits", **KW)


def test_several_sources_are_concatenated(tmp_path, structures):
    (tmp_path / "a.cif").write_text(cif(structures["nacl"]))
    (tmp_path / "b.cif").write_text(cif(structures["si"]))
    ds = load_source([tmp_path / "a.cif", tmp_path / "b.cif", tmp_path / "a.cif"], **KW)
    assert ds.ids == ["a", "b"]
    assert [r.reason for r in ds.rejections] == ["duplicate id"]


def test_concat_fills_missing_targets_with_nan(structures):
    a = read_objects([structures["nacl"]], ids=["a"])
    a.targets["e"] = np.array([1.0])
    b = read_objects([structures["si"]], ids=["b"])
    out = concat_datasets([a, b])
    assert out.ids == ["a", "b"]
    assert out.targets["e"][0] == 1.0 and np.isnan(out.targets["e"][1])


# --------------------------------------------------------------------------- encodings
def test_byte_order_mark_and_crlf_line_endings(tmp_path, structures):
    """Files saved by spreadsheet programs (BOM, CRLF) read like any other."""
    folder = tmp_path / "cg"
    folder.mkdir()
    (folder / "mp-1.cif").write_text(cif(structures["nacl"]))
    (folder / "mp-2.cif").write_text(cif(structures["si"]))
    (folder / "id_prop.csv").write_bytes("\ufeffmp-1,0.5\r\nmp-2,1.5\r\n".encode())
    ds = load_source(folder, **KW)
    assert ds.ids == ["mp-1", "mp-2"]
    np.testing.assert_allclose(ds.targets["target"], [0.5, 1.5])

    path = tmp_path / "t.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(["id", "cif", "y"])
        w.writerow(["a", cif(structures["srtio3"]).replace("\n", "\r\n"), "2.5"])
    ds = load_source(path, **KW)
    assert ds.ids == ["a"] and ds.targets["y"][0] == 2.5
    assert ds.structures[0].composition.reduced_formula == "SrTiO3"


def test_alignn_folder_with_a_broken_poscar(tmp_path, structures):
    folder = tmp_path / "alignn"
    folder.mkdir()
    Poscar(structures["nacl"]).write_file(folder / "POSCAR-good.vasp")
    (folder / "POSCAR-bad.vasp").write_text("garbage\n1.0\nnot a lattice\n")
    (folder / "id_prop.csv").write_text("POSCAR-good.vasp,1\nPOSCAR-bad.vasp,2\n")
    ds = load_source(folder, **KW)
    assert ds.ids == ["POSCAR-good"]
    [rej] = ds.rejections
    assert rej.id == "POSCAR-bad" and rej.source == str(folder / "POSCAR-bad.vasp")
    assert "unparsable structure" in rej.reason
