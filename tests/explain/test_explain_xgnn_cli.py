"""``crystalgnn explain model`` end to end on a tiny group-label classifier trained on a median
split written by :func:`~crystalgnn.explain.xgnn_data.median_split_table`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.cli.explain_model import _run_source
from crystalgnn.explain.xgnn_data import MedianSplit, label_pair_distances, median_split_table
from crystalgnn.explain.xgnn_env import graph_is_valid
from crystalgnn.explain.xgnn_labels import write_label_atom_init
from tinydata import perovskite_rows, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> MedianSplit:
    tmp = tmp_path_factory.mktemp("xgnn")
    table = write_jsonl(tmp / "perov.jsonl", perovskite_rows(40))
    return median_split_table(table, "heat_all", tmp / "split", split="0.6,0.2,0.2", seed=0)


def train(split: MedianSplit, out: Path, atom_init: Path | None) -> Path:
    args = ["train", str(split.table), "-t", split.column, "--task", "classification",
            "--split-file", str(split.split), "--epochs", "1", "--batch-size", "8", "-o", str(out),
            "-m", "atom_fea_len=8", "-m", "n_conv=1", "-m", "h_fea_len=8", "-m", "max_neighbors=4",
            "-j", "1", "--threads", "1", "--no-progress"]  # fmt: skip
    if atom_init is not None:
        args += ["--atom-init", str(atom_init)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return out


def test_median_split_uses_the_training_median(split: MedianSplit) -> None:
    with gzip.open(split.table, "rt") as f:
        rows = [json.loads(line) for line in f]
    parts = json.loads(split.split.read_text())
    train_ids = set(parts["train"])
    values = np.array([r["heat_all"] for r in rows if r["id"] in train_ids])
    assert split.median == pytest.approx(np.median(values))
    assert all(r["heat_all_high"] == int(r["heat_all"] > split.median) for r in rows)
    assert sum(split.counts.values()) == len(rows) == 40 and len(train_ids) == 24


def test_pair_distances_are_nearest_neighbour_medians() -> None:
    from crystalgnn.graphs.builder import build_graph_list
    from crystalgnn.graphs.crystal_graph import GraphConfig
    from tinydata import structures_of

    structures = structures_of(perovskite_rows(5))
    graphs, _ = build_graph_list(structures, GraphConfig(radius=8.0, max_neighbors=12), n_jobs=1, show_progress=False)
    d = label_pair_distances([g for g in graphs if g is not None], "period", nearest=4)
    assert np.allclose(d, d.T) and (d > 1.0).all() and (d < 5.0).all()
    nearest = min(float(g.edge_dist.min()) for g in graphs if g is not None)
    assert d.min() >= nearest - 1e-6


def test_explain_model_end_to_end(split: MedianSplit, tmp_path: Path) -> None:
    atom_init = write_label_atom_init("group", tmp_path / "group.json")
    run = train(split, tmp_path / "run", atom_init)
    out = tmp_path / "xgnn"
    r = CliRunner().invoke(app, ["explain", "model", str(run), "--per-class", "6", "--min-prob", "0.3",
                                 "--iterations", "2", "--max-samples", "300",
                                 "--max-structures", "20", "--out", str(out), "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "class 0 (low)" in r.output and "class 1 (high)" in r.output
    stats = json.loads((out / "statistics.json").read_text())
    for name in ("low", "high"):
        res = json.loads((out / f"explanations_{name}.json").read_text())
        assert res["kind"] == "group" and len(res["explanations"]) == stats[name]["graphs"] <= 6
        for e in res["explanations"]:
            assert e["prob"] > 0.3 and graph_is_valid(e["labels"], [tuple(x) for x in e["edges"]], 18) == []
            assert e["label_names"] == [f"group {v + 1}" for v in e["labels"]]
        assert np.allclose(np.array(res["distances"]), np.array(res["distances"]).T)
    assert (out / "label_counts.csv").read_text().startswith("class,label,atoms,fraction")
    assert _run_source(run) == str(split.table)  # the default --data: the run's training table

    r = CliRunner().invoke(app, ["explain", "model", str(run), "--labels", "period", "--out", str(out)])
    assert r.exit_code == 1 and "group labels" in r.output


def test_explain_model_refuses_a_model_without_label_features(split: MedianSplit, tmp_path: Path) -> None:
    run = train(split, tmp_path / "run", None)
    r = CliRunner().invoke(app, ["explain", "model", str(run), "--out", str(tmp_path / "x")])
    assert r.exit_code == 1 and "not one-hot group (18) or period (7) labels" in r.output
    assert len(r.output.strip().splitlines()) == 1
