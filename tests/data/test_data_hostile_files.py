"""Damaged and odd files never abort a read: every bad entry is named with its reason, every
good one kept (oversized CSV cells, truncated and fake gzip files, JSON lines that are not
objects, broken symbolic links, odd ``id_prop.csv`` rows, several sources of which one is
unusable). A lone unusable source is a one-line :class:`DataError`.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import zlib

import pytest
from pymatgen.core import Lattice, Structure

from crystalgnn.data import DataError
from crystalgnn.data.readers import count_raw_entries, load_source
from crystalgnn.data.tables import count_table_rows, iter_table_rows

KW = {"show_progress": False}


def _nacl(a: float = 5.6) -> Structure:
    return Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _rows(n: int) -> list[dict]:
    return [{"id": f"g{k}", "structure": _nacl(5.5 + 0.01 * k).as_dict(), "y": float(k)} for k in range(n)]


def _reasons(ds) -> dict[str, str]:
    return {r.id: r.reason for r in ds.rejections}


def test_csv_cell_longer_than_the_csv_module_limit(tmp_path):
    big = _nacl()
    big.make_supercell([13, 12, 11])  # 3,432 atoms: a CIF of about 200,000 characters
    big_cif = big.to(fmt="cif")
    assert len(big_cif) > 131_072
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "cif", "y"])
        w.writerow(["a", _nacl().to(fmt="cif"), 1.0])
        w.writerow(["big", big_cif, 2.0])
        w.writerow(["c", _nacl(5.7).to(fmt="cif"), 3.0])
    assert count_table_rows(path) == 3
    ds = load_source(path, **KW)
    assert ds.ids == ["a", "big", "c"] and not ds.rejections
    assert len(ds.structures[1]) == 3432


def test_csv_record_with_more_values_than_the_header(tmp_path):
    path = tmp_path / "t.csv"
    cif = _nacl().to(fmt="cif")
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "cif", "y"])
        w.writerow(["a", cif, 1.0])
        w.writerow(["b", cif, 2.0, "surprise"])
        w.writerow(["c", cif])  # short: the label is missing, not an error
    ds = load_source(path, **KW)
    assert ds.ids == ["a", "c"]
    assert _reasons(ds)["row1"].startswith("4 values, expected 3 (line ")
    assert list(ds.targets) == ["y"]


def _gz_lines(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode())


def test_truncated_jsonl_gz_keeps_every_complete_row(tmp_path):
    lines = [json.dumps(r) for r in _rows(60)]
    data = _gz_lines(lines)
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    complete = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[: len(data) * 2 // 3]).count(b"\n")
    assert 0 < complete < 60
    ds = load_source(path, **KW)
    assert ds.ids == [f"g{k}" for k in range(complete)]
    [cut] = ds.rejections
    assert cut.id == "t.jsonl.gz" and cut.source == str(path)
    assert cut.reason.startswith(f"file truncated after line {complete} (EOFError: ")
    assert count_table_rows(path) == complete
    assert len(load_source(path, subset=5, **KW)) == 5  # sampling counts the complete rows only
    # cut before the first complete row: nothing usable in a lone source
    path.write_bytes(data[:20])
    with pytest.raises(DataError, match=r"t\.jsonl\.gz: file truncated after line 0 \(EOFError"):
        load_source(path, **KW)


def test_plain_text_named_gz_is_read_as_text_and_binary_is_named(tmp_path):
    plain = tmp_path / "plain.jsonl.gz"
    plain.write_text("".join(json.dumps(r) + "\n" for r in _rows(3)))
    assert load_source(plain, **KW).ids == ["g0", "g1", "g2"]
    binary = tmp_path / "binary.jsonl.gz"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError, match="binary.jsonl.gz: unreadable file .named .gz but neither gzip-compressed nor"):
        load_source(binary, **KW)
    json_gz = tmp_path / "doc.json.gz"
    json_gz.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError, match="neither gzip-compressed nor text"):
        load_source(json_gz, **KW)
    gz_of_binary = tmp_path / "zipped.csv.gz"
    gz_of_binary.write_bytes(gzip.compress(os.urandom(4000) + b"\x00"))
    with pytest.raises(DataError, match="gzip of binary data"):
        load_source(gz_of_binary, **KW)
    # beside a good source: one rejection naming the file, the good entries kept
    ds = load_source([plain, binary], **KW)
    assert ds.ids == ["g0", "g1", "g2"]
    assert _reasons(ds) == {"binary.jsonl.gz": "unreadable file (named .gz but neither gzip-compressed nor text)"}
    assert ds.rejections[0].source == str(binary)


def test_json_lines_that_are_valid_json_but_not_objects(tmp_path):
    good = [json.dumps(r) for r in _rows(3)]
    lines = ["[1, 2, 3]", good[0], "null", '"s"', "{not json", "7", good[1], "", good[2]]
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(_gz_lines(lines))
    ds = load_source(path, **KW)
    assert ds.ids == ["g0", "g1", "g2"]
    assert _reasons(ds) == {
        "row0": "not a JSON object (line 1: an array)",
        "row2": "not a JSON object (line 3: null)",
        "row3": "not a JSON object (line 4: a string)",
        "row4": "invalid JSON (line 5: Expecting property name enclosed in double quotes)",
        "row5": "not a JSON object (line 6: a number)",
    }
    assert all(r.source == str(path) for r in ds.rejections)
    assert [r.get("id") for r in iter_table_rows(path, positions=[1, 5])] == ["g0", None]
    # a JSON document that is an array of rows, some not objects
    doc = tmp_path / "rows.json"
    doc.write_text(json.dumps([_rows(1)[0], [1, 2], None]))
    ds = load_source(doc, **KW)
    assert ds.ids == ["g0"] and {r.id for r in ds.rejections} == {"row1", "row2"}


def test_rows_before_the_first_one_with_a_structure_are_named(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [{"id": "x", "y": 1.0}, *_rows(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = load_source(path, **KW)
    assert ds.ids == ["g0", "g1"]
    assert _reasons(ds) == {"x": "missing structure (no 'structure' column)"}


def test_broken_symbolic_links_in_a_folder_are_named(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "good.cif").write_text(_nacl().to(fmt="cif"))
    os.symlink(tmp_path / "nowhere.cif", folder / "dangling.cif")
    os.symlink(folder / "loop-b.cif", folder / "loop-a.cif")
    os.symlink(folder / "loop-a.cif", folder / "loop-b.cif")
    os.symlink(folder, folder / "self")  # a link to a folder above: never followed, no hang
    ds = load_source(folder, **KW)
    assert ds.ids == ["good"]
    why = _reasons(ds)
    assert why["dangling"] == f"dangling symbolic link (to {tmp_path / 'nowhere.cif'})"
    assert why["loop-a"].startswith("symbolic link loop") and why["loop-b"].startswith("symbolic link loop")
    assert {r.kind for r in ds.rejections} == {"dangling symbolic link", "symbolic link loop"}
    assert count_raw_entries(folder) == 1
    # a lone broken link, and a folder with nothing but broken links
    with pytest.raises(DataError, match="dangling.cif: dangling symbolic link"):
        load_source(folder / "dangling.cif", **KW)
    only = tmp_path / "only"
    only.mkdir()
    os.symlink(tmp_path / "nowhere.cif", only / "a.cif")
    with pytest.raises(
        DataError, match=r"no structure files .*; 1 broken symbolic links \(a.cif: dangling symbolic link"
    ):
        load_source(only, **KW)
    # a CGCNN folder whose id_prop.csv names a dangling link
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "a.cif").write_text(_nacl().to(fmt="cif"))
    os.symlink(tmp_path / "nowhere.cif", cg / "b.cif")
    (cg / "id_prop.csv").write_text("a,1.0\nb,2.0\n")
    ds = load_source(cg, **KW)
    assert ds.ids == ["a"] and _reasons(ds)["b"].startswith("dangling symbolic link")


def _cgcnn(tmp_path, lines: list[str], ids: list[str]):
    folder = tmp_path / "cg"
    folder.mkdir(parents=True)
    for k, i in enumerate(ids):
        (folder / f"{i}.cif").write_text(_nacl(5.5 + 0.01 * k).to(fmt="cif"))
    (folder / "id_prop.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_id_prop_extra_column_text_target_and_header(tmp_path):
    folder = _cgcnn(
        tmp_path,
        ["material,band_gap", "a,1.0", "b,2.0,7", "c,abc", "d,", "e,3.5,", "f", "g,true"],
        ["a", "b", "c", "d", "e", "f", "g"],
    )
    ds = load_source(folder, **KW)
    assert ds.ids == ["a", "d", "e", "g"]
    assert list(ds.targets) == ["band_gap"]  # the header names the target; no target from the extra column
    assert ds.targets["band_gap"][[0, 2, 3]].tolist() == [1.0, 3.5, 1.0]
    assert _reasons(ds) == {
        "b": "3 values, expected 2 (line 3)",
        "c": "label 'band_gap' is not a number: 'abc' (line 4)",
        "f": "1 value, expected 2 (line 7)",
    }
    assert len(ds.notes) == 1 and "first line 'material,band_gap' read as a header" in ds.notes[0]
    assert ds.summary()["notes"] == ds.notes
    # a header with the default names is said so too, and is not an entry
    folder2 = _cgcnn(tmp_path / "two", ["material,target", "a,1.0", "b,2.0"], ["a", "b"])
    ds = load_source(folder2, **KW)
    assert ds.ids == ["a", "b"] and not ds.rejections and "read as a header" in ds.notes[0]
    # without a header the most common width wins, and nothing is noted
    folder3 = _cgcnn(tmp_path / "three", ["a,1.0", "b,2.0", "c,3.0,4.0"], ["a", "b", "c"])
    ds = load_source(folder3, **KW)
    assert ds.ids == ["a", "b"] and list(ds.targets) == ["target"] and not ds.notes
    assert _reasons(ds) == {"c": "3 values, expected 2 (line 3)"}


def test_several_sources_one_unusable_and_a_lone_unusable_source(tmp_path):
    good = tmp_path / "good.cif"
    good.write_text(_nacl().to(fmt="cif"))
    empty = tmp_path / "empty.cif"
    empty.write_text("")
    junk = tmp_path / "junk.cif"
    junk.write_bytes(b"\x00\x01garbage" * 50)
    empty_table = tmp_path / "empty.jsonl"
    empty_table.write_text("")
    ds = load_source([good, empty, junk, empty_table], **KW)
    assert ds.ids == ["good"]
    why = {r.source: r.reason for r in ds.rejections}
    assert why[str(empty)] == "empty file" and why[str(empty_table)] == "empty file"
    assert why[str(junk)].startswith("unparsable CIF")
    # alone, each of them is a one-line DataError (the CLI's exit 1), whatever made it unusable
    for bad in (empty, junk, empty_table):
        with pytest.raises(DataError) as info:
            load_source(bad, **KW)
        assert str(info.value).startswith(f"{bad}: ") and "\n" not in str(info.value)
    with pytest.raises(DataError, match="no usable source: .*empty.cif: empty file .and 1 more unusable sources."):
        load_source([empty, junk], **KW)
    with pytest.raises(DataError, match="no such file"):  # a mistyped path stays a usage error
        load_source([good, tmp_path / "typo.cif"], **KW)


def test_matbench_rows_of_the_wrong_length_are_rejected(tmp_path):
    d = _nacl().as_dict()
    doc = {"index": ["a", "b", "c"], "columns": ["structure", "y"], "data": [[d, 1.0], [d], [d, 3.0]]}
    path = tmp_path / "mb.json"
    path.write_text(json.dumps(doc))
    ds = load_source(path, **KW)
    assert ds.ids == ["a", "c"]
    assert [r.reason for r in ds.rejections] == ["row 1 (index b): 1 values, expected 2"]


def test_truncated_table_read_in_chunks_keeps_every_complete_row(tmp_path):
    from crystalgnn.data.chunked import iter_source_chunks

    data = _gz_lines([json.dumps(r) for r in _rows(30)])
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    complete = count_table_rows(path)
    assert 0 < complete < 30
    for size in (complete, 4):
        chunks = list(iter_source_chunks(path, chunk_size=size, show_progress=False))
        assert [i for d in chunks for i in d.ids] == [f"g{k}" for k in range(complete)]
        [cut] = [r for d in chunks for r in d.rejections]
        assert cut.reason.startswith(f"file truncated after line {complete} (EOFError")
