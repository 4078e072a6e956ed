"""Rejection reasons are kept whole (one line, at most ~300 characters, ending in an ellipsis
when cut), and counted by their kind without cutting inside brackets."""

from __future__ import annotations

import json

from crystalgnn.data import parsing
from crystalgnn.data.dataset import REASON_MAX_CHARS, Rejection, one_line, reason_kind
from crystalgnn.data.readers import load_source, read_objects

KW = {"show_progress": False, "n_jobs": 1}

BAD_NUMBER_CIF = """data_bad
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   4.0abc
_cell_length_b   4.0
_cell_length_c   4.0
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   90
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Na  Na0  0.0  0.0  0.0  1
"""


def test_one_line_and_cap():
    assert one_line("a\n  b\tc ") == "a b c"
    long = one_line("x" * 1000)
    assert len(long) == REASON_MAX_CHARS and long.endswith("…")
    r = Rejection("i", "s", "first line\nsecond: " + "y" * 500)
    assert "\n" not in r.reason and len(r.reason) == REASON_MAX_CHARS and r.reason.startswith("first line second: yy")


def test_reason_kind_does_not_cut_inside_brackets():
    assert reason_kind("unparsable CIF (not a number: '4.0abc')") == "unparsable CIF"
    assert reason_kind("unparsable CIF (ValueError: a: b)") == "unparsable CIF"
    assert reason_kind("isolated atom: site 3 (Z=8) has no neighbour within 8.0 Å") == "isolated atom"
    assert reason_kind("label 'a:b' is missing, NaN or infinite") == "label 'a:b' is missing, NaN or infinite"
    assert reason_kind("no atom features for element(s) Og") == "no atom features for element(s) Og"
    assert reason_kind("duplicate id") == "duplicate id"


def test_unparsable_cif_reason_is_whole_and_counted_by_kind(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"id": "bad", "cif": BAD_NUMBER_CIF}) + "\n")
    ds = load_source(path, **KW)
    [r] = ds.rejections
    assert r.reason == "unparsable CIF (not a number: '4.0abc')"
    assert ds.rejection_counts() == {"unparsable CIF": 1}
    assert ds.summary()["rejections_by_reason"] == {"unparsable CIF": 1}
    out = ds.write_rejections(tmp_path / "rejected.csv")
    assert "unparsable CIF (not a number: '4.0abc')" in out.read_text()


def test_long_parser_errors_are_not_cut_at_120_characters(monkeypatch):
    msg = "first part of a long message " * 6 + "\nTHE END"

    def boom(payload):
        raise RuntimeError(msg)

    monkeypatch.setattr(parsing, "structure_from_any", boom)
    ds = read_objects([{"lattice": "not a structure"}])
    [r] = ds.rejections
    assert r.reason == "unparsable structure (RuntimeError: " + " ".join(msg.split()) + ")"
    assert len(r.reason) > 120 and "THE END" in r.reason
