"""``inspect_source`` reports every entry training would reject (reader, label and graph
stages), each with its id, source and full reason, and keeps the good ones."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from crystalgnn.data.readers import load_source
from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.graphs.inspection import Inspection, inspect_source

KW = {"show_progress": False, "n_jobs": 1}


def p1_cif(symbols, frac, a=4.0, occ=None, cell_a=None) -> str:
    occ = occ or [1.0] * len(symbols)
    lines = [
        "data_test",
        "_symmetry_space_group_name_H-M   'P 1'",
        f"_cell_length_a   {cell_a or f'{a:.6f}'}",
        f"_cell_length_b   {a:.6f}",
        f"_cell_length_c   {a:.6f}",
        *(f"_cell_angle_{x}   90.000000" for x in ("alpha", "beta", "gamma")),
        "loop_",
        " _atom_site_type_symbol",
        " _atom_site_label",
        " _atom_site_fract_x",
        " _atom_site_fract_y",
        " _atom_site_fract_z",
        " _atom_site_occupancy",
    ]
    for k, (sym, xyz, o) in enumerate(zip(symbols, frac, occ, strict=True)):
        lines.append(f"  {sym}  {sym}{k}  {xyz[0]:.6f}  {xyz[1]:.6f}  {xyz[2]:.6f}  {o}")
    return "\n".join(lines) + "\n"


GOOD = {
    "good_nacl": str(CifWriter(Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))),
    "good_si": str(
        CifWriter(
            Structure(
                Lattice.from_parameters(3.84, 3.84, 3.84, 60, 60, 60), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]
            )
        )
    ),
    "good_cscl": p1_cif(["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], a=4.1),
}
#: id -> (CIF text or None for "no file", label, expected stage, expected reason start)
BAD = {
    "unparsable": (
        p1_cif(["Na"], [[0, 0, 0]], cell_a="4.0abc"),
        "1.0",
        "read",
        "unparsable CIF (not a number: '4.0abc')",
    ),
    "empty": ("", "1.0", "read", "empty file"),
    "disordered": (
        p1_cif(["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], occ=[0.5, 1.0]),
        "1.0",
        "read",
        "partial occupancy / disordered sites",
    ),
    "unknown_element": (p1_cif(["Xx"], [[0, 0, 0]]), "1.0", "read", "unknown element"),
    "no_features": (
        p1_cif(["Md", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "1.0",
        "graph",
        "no atom features for element(s) Md",
    ),
    "isolated": (
        p1_cif(["Na"], [[0, 0, 0]], a=20.0),
        "1.0",
        "graph",
        "isolated atom: site 0 (Z=11) has no neighbour within 8.0 Å",
    ),
    "overlapping": (p1_cif(["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]]), "1.0", "graph", "overlapping atoms: sites"),
    "nan_label": (GOOD["good_nacl"], "nan", "label", "label 'target' is missing, NaN or infinite"),
    "missing_file": (None, "1.0", "read", "label file names a missing structure file (missing_file.cif)"),
}


@pytest.fixture
def bad_folder(tmp_path):
    folder = tmp_path / "bad_cgcnn"
    folder.mkdir()
    lines = []
    for k, text in GOOD.items():
        (folder / f"{k}.cif").write_text(text)
        lines.append(f"{k},2.5")
    for k, (text, label, _, _) in BAD.items():
        if text is not None:
            (folder / f"{k}.cif").write_text(text)
        lines.append(f"{k},{label}")
    lines.append("good_nacl,3.0")  # duplicate id
    (folder / "id_prop.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_every_bad_entry_is_reported_with_its_reason(bad_folder, tmp_path):
    insp = inspect_source(bad_folder, targets=["target"], **KW)
    assert isinstance(insp, Inspection)
    assert sorted(insp.dataset.ids) == sorted(GOOD)  # the good ones are kept
    found = {(r.id, s): r for r, s in zip(insp.rejections, insp.stages, strict=True)}
    for k, (_, _, stage, reason) in BAD.items():
        assert (k, stage) in found, (k, stage, insp.rows())
        assert found[(k, stage)].reason.startswith(reason), found[(k, stage)].reason
    assert found[("good_nacl", "read")].reason == "duplicate id"
    assert found[("missing_file", "read")].source.endswith("id_prop.csv")
    assert found[("isolated", "graph")].source.endswith("isolated.cif")
    # nothing else: one problem per bad entry here, none for the good ones
    assert len(insp.rejections) == len(BAD) + 1
    assert set(insp.rejected_ids) == set(BAD) | {"good_nacl"}
    counts = insp.counts()
    assert counts["isolated atom"] == counts["overlapping atoms"] == counts["unparsable CIF"] == 1
    assert insp.counts("stage") == {"read": 6, "label": 1, "graph": 3}
    s = insp.summary()
    assert s["entries"] == 3 and s["read"] == 3 + 4 and s["rejected"] == 10
    assert s["rejections_by_stage"] == {"read": 6, "label": 1, "graph": 3}
    assert s["labels"]["target"]["count"] == 3
    frame = insp.to_frame()
    assert list(frame.columns) == ["id", "source", "stage", "kind", "reason"] and len(frame) == 10
    with insp.write_csv(tmp_path / "out" / "problems.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["id"] for r in rows} == set(BAD) | {"good_nacl"}
    assert next(r for r in rows if r["id"] == "unparsable")["reason"] == "unparsable CIF (not a number: '4.0abc')"


def test_training_rejects_the_same_entries(bad_folder):
    """The inspection finds what load_source(targets) + graph building drop, with the same reasons."""
    from crystalgnn.graphs.atom_features import AtomFeaturizer
    from crystalgnn.graphs.builder import build_dataset_graphs

    insp = inspect_source(bad_folder, targets=["target"], **KW)
    ds = load_source(bad_folder, targets=["target"], **KW)
    build_dataset_graphs(
        ds, GraphConfig(), supported_elements=AtomFeaturizer.cgcnn().elements, n_jobs=1, show_progress=False
    )
    assert ds.ids == insp.dataset.ids
    assert sorted((r.id, r.reason) for r in ds.rejections) == sorted((r.id, r.reason) for r in insp.rejections)


def test_without_targets_nan_labels_are_kept_and_settings_are_used(bad_folder):
    insp = inspect_source(bad_folder, **KW)
    assert "nan_label" in insp.dataset.ids and "label" not in insp.stages
    assert insp.summary()["labels"]["target"]["missing"] == 1
    # a larger cutoff connects the isolated atom; every element allowed: Md is fine
    insp = inspect_source(bad_folder, graph_config=GraphConfig(radius=21.0), supported_elements=range(1, 119), **KW)
    assert {"isolated", "no_features"} <= set(insp.dataset.ids)


def test_a_dataset_given_is_not_changed(bad_folder):
    ds = load_source(bad_folder, **KW)
    n = len(ds)
    insp = inspect_source(ds, targets=["target"])
    assert len(ds) == n and len(insp.dataset) == 3


def test_cli_data_inspect_names_every_problem_of_a_bad_cgcnn_folder(bad_folder, tmp_path):
    """``crystalgnn data inspect`` shows every bad entry of the folder (graph-stage problems and
    NaN labels included) with its whole reason, keeps the good ones, and writes them all."""
    from typer.testing import CliRunner

    from crystalgnn.cli import app

    out = tmp_path / "problems.csv"
    r = CliRunner().invoke(app, ["data", "inspect", str(bad_folder), "--target", "target", "--rejected", str(out)])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "3 usable structures of 7 read, 10 problems" in text
    for k, (_, _, stage, reason) in BAD.items():
        assert f"- {k} (" in text and f", {stage}): {reason}" in text, (k, stage, reason)
    assert "unparsable CIF (not a number: '4.0abc')" in text  # not cut
    assert len(pd.read_csv(out)) == 10
    r = CliRunner().invoke(app, ["data", "inspect", str(bad_folder), "--strict"])
    assert r.exit_code == 2
