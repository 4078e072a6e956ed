"""``subset=N`` draws a seeded random sample of N raw entries (rows, files) *before* any
structure is parsed, in every reader that ``load_source`` dispatches to."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from pymatgen.io.cif import CifWriter

from crystalgnn.data import files, parsing, tables
from crystalgnn.data.catalog import catalog_path
from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.readers import count_raw_entries, load_source, read_objects
from crystalgnn.data.tables import iter_table_rows, sample_positions

KW = {"show_progress": False, "n_jobs": 1}
NAMES = ["nacl", "si", "srtio3", "lifeo2"]


@pytest.fixture
def parsed(monkeypatch) -> list[int]:
    """Records how many payloads each call of the structure parser received."""
    calls: list[int] = []
    real = parsing.parse_structures

    def spy(payloads, **kw):
        calls.append(len(payloads))
        return real(payloads, **kw)

    monkeypatch.setattr(tables, "parse_structures", spy)
    return calls


def many_rows(structures, n: int) -> list[dict]:
    texts = [str(CifWriter(structures[k])) for k in NAMES]
    return [{"id": f"e{i:03d}", "cif": texts[i % 4], "y": float(i)} for i in range(n)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sample_positions_is_seeded_sorted_and_bounded():
    a = sample_positions(100, 10, seed=3)
    assert a == sample_positions(100, 10, seed=3)
    assert a != sample_positions(100, 10, seed=4)
    assert a == sorted(a) and len(set(a)) == 10 and all(0 <= i < 100 for i in a)
    # the formula of training.run.select_subset, over raw entries
    assert a == np.sort(np.random.default_rng(3).choice(100, size=10, replace=False)).tolist()
    assert sample_positions(10, None) is None and sample_positions(10, 10) is None and sample_positions(10, 50) is None
    with pytest.raises(ValueError, match="positive"):
        sample_positions(10, 0)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_table_subset_parses_only_the_sample(tmp_path, structures, parsed, suffix):
    rows = many_rows(structures, 60)
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["id", "cif", "y"])
            w.writeheader()
            w.writerows(rows)
    else:
        write_jsonl(path, rows)
    ds = load_source(path, subset=7, subset_seed=1, **KW)
    assert parsed == [7]
    pos = sample_positions(60, 7, 1)
    assert ds.ids == [rows[i]["id"] for i in pos]
    np.testing.assert_array_equal(ds.targets["y"], [float(i) for i in pos])
    assert ds.name == "t[subset 7, seed 1]"
    assert load_source(path, subset=7, subset_seed=1, **KW).ids == ds.ids  # deterministic
    assert load_source(path, subset=7, subset_seed=2, **KW).ids != ds.ids
    assert len(load_source(path, subset=500, **KW)) == 60  # larger than the table: everything


def test_rows_without_ids_keep_their_row_number(tmp_path, structures):
    rows = [{k: v for k, v in r.items() if k != "id"} for r in many_rows(structures, 20)]
    path = write_jsonl(tmp_path / "noid.jsonl", rows)
    ds = load_source(path, subset=5, subset_seed=0, **KW)
    assert ds.ids == [f"row{i}" for i in sample_positions(20, 5, 0)]


def test_bad_rows_in_the_sample_are_reported_not_replaced(tmp_path, structures):
    rows = many_rows(structures, 30)
    pos = sample_positions(30, 6, 0)
    rows[pos[0]]["cif"] = "data_x\n_cell_length_a 1\n"  # unparsable
    rows[pos[1]]["y"] = None  # missing label
    ds = load_source(write_jsonl(tmp_path / "t.jsonl", rows), targets=["y"], subset=6, **KW)
    assert len(ds) == 4 and len(ds.rejections) == 2
    assert {r.id for r in ds.rejections} == {rows[pos[0]]["id"], rows[pos[1]]["id"]}


def test_iter_table_rows_positions_and_count(tmp_path, structures):
    rows = many_rows(structures, 12)
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    with path.open("a") as f:
        f.write("\n{not json\n")
    assert tables.count_table_rows(path) == 13
    assert [r["id"] for r in iter_table_rows(path, positions=[0, 5, 11])] == ["e000", "e005", "e011"]
    assert next(iter(iter_table_rows(path, positions=[12])))["__error__"].startswith("invalid JSON (line 14")


def write_cgcnn(folder, structures, n: int):
    folder.mkdir()
    lines = []
    for i in range(n):
        (folder / f"c{i:02d}.cif").write_text(str(CifWriter(structures[NAMES[i % 4]])))
        lines.append(f"c{i:02d},{i}")
    (folder / "id_prop.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_cgcnn_folder_subset_reads_only_the_sampled_files(tmp_path, structures, parsed):
    folder = write_cgcnn(tmp_path / "cg", structures, 25)
    (folder / "c03.cif").unlink()  # a missing file outside the sample is never noticed
    pos = sample_positions(25, 5, 7)
    assert 3 not in pos
    ds = load_source(folder, subset=5, subset_seed=7, **KW)
    assert parsed == [5]
    assert ds.ids == [f"c{i:02d}" for i in pos] and not ds.rejections
    assert count_raw_entries(folder) == 25


def test_structure_folder_subset_opens_only_the_sampled_files(tmp_path, structures, monkeypatch):
    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(12):
        (folder / f"s{i:02d}.cif").write_text(str(CifWriter(structures[NAMES[i % 4]])))
    opened = []
    real = files.read_structure_file
    monkeypatch.setattr(files, "read_structure_file", lambda p: opened.append(p) or real(p))
    ds = load_source(folder, subset=4, subset_seed=0, **KW)
    assert len(opened) == 4
    assert ds.ids == [f"s{i:02d}" for i in sample_positions(12, 4, 0)]


def test_objects_datasets_and_several_sources(tmp_path, structures):
    objs = [structures[k] for k in NAMES] * 3
    ds = load_source(objs, subset=5, subset_seed=2)
    assert ds.ids == [f"s{i}" for i in sample_positions(12, 5, 2)]
    full = read_objects(objs)
    sub = load_source(full, subset=3, subset_seed=0)
    assert len(sub) == 3 and len(full) == 12 and isinstance(sub, CrystalDataset)
    a = write_jsonl(tmp_path / "a.jsonl", many_rows(structures, 20))
    b = write_jsonl(tmp_path / "b.jsonl", [{**r, "id": "b" + r["id"]} for r in many_rows(structures, 30)])
    assert count_raw_entries([a, b]) == 50
    both = load_source([a, b], subset=10, subset_seed=5, **KW)
    assert len(both) == 10 and len(set(both.ids)) == 10
    assert both.ids == load_source([a, b], subset=10, subset_seed=5, **KW).ids


def test_catalog_subset_parses_only_the_sample(shared_data, parsed):
    ds = load_source("perovskites", subset=40, subset_seed=0, **KW)
    assert parsed == [40] and len(ds) == 40
    ids = [r["id"] for r in iter_table_rows(catalog_path("perovskites"))]
    # no row of this file is rejected, so the sample is select_subset's after a full parse
    assert ds.ids == [ids[i] for i in sample_positions(len(ids), 40, 0)]
    assert ds.units["heat_all"] == "eV/cell"
    assert ds.name == "perovskites[subset 40, seed 0]"


def test_matbench_json_and_json_list_subsets(tmp_path, structures, parsed):
    rows = many_rows(structures, 16)
    doc = {"index": [r["id"] for r in rows], "columns": ["structure", "y"], "data": [[r["cif"], r["y"]] for r in rows]}
    mb = tmp_path / "matbench_x.json"
    mb.write_text(json.dumps(doc))
    ds = load_source(mb, subset=4, subset_seed=9, **KW)
    assert ds.ids == [rows[i]["id"] for i in sample_positions(16, 4, 9)] and parsed == [4]
    assert count_raw_entries(mb) == 16
    lst = tmp_path / "rows.json"
    lst.write_text(json.dumps(rows))
    assert load_source(lst, subset=3, subset_seed=9, **KW).ids == [rows[i]["id"] for i in sample_positions(16, 3, 9)]
