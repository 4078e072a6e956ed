"""End-to-end tests of the command-line interface on a tiny real dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from crystalgnn.cli import app
from tinydata import CGCNN_PRETRAINED, perovskite_rows, read_predictions, write_cif_folder, write_jsonl

runner = CliRunner()


def invoke(*args: str):
    r = runner.invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())  # rich wraps long lines: compare on normalised text


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    rows = perovskite_rows(40)
    cifs = write_cif_folder(d / "cifs", rows[:6])
    (cifs / "garbage.cif").write_text("data_garbage\n_cell_length_a 3.0\nnot a cif at all\n")
    good = write_cif_folder(d / "good", rows[:6])
    return {
        "cifs": cifs,
        "good": good,
        "table": write_jsonl(d / "perov.jsonl", rows),
        "dir": d,
    }


def test_help() -> None:
    r, text = invoke("--help")
    assert r.exit_code == 0
    for cmd in ("train", "evaluate", "predict", "import-cgcnn", "demo", "data", "graphs"):
        assert cmd in text
    r, text = invoke("train", "--help")
    assert r.exit_code == 0 and "--target" in text and "--epochs" in text
    # the installed entry point works as a program too
    p = subprocess.run([sys.executable, "-m", "crystalgnn.cli", "--help"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "import-cgcnn" in p.stdout


def test_data_inspect_lists_rejection(files, tmp_path) -> None:
    rej = tmp_path / "rejected.csv"
    r, text = invoke("data", "inspect", files["cifs"], "--rejected", rej)
    assert r.exit_code == 0, r.output
    assert "6 usable structures of 6 read, 1 problems" in text
    assert "garbage" in text
    df = pd.read_csv(rej)
    assert df["id"].tolist() == ["garbage"]
    assert "CIF" in df["reason"][0]
    r, text = invoke("data", "inspect", files["cifs"], "--strict")
    assert r.exit_code == 2
    assert "--strict: 1 problems" in text
    r, _ = invoke("data", "inspect", files["good"], "--strict")
    assert r.exit_code == 0, r.output
    r, text = invoke("data", "inspect", files["table"], "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["entries"] == 40 and summary["labels"]["heat_all"]["count"] == 40
    r, text = invoke("data", "inspect", files["dir"] / "nope")
    assert r.exit_code == 1 and "no such file" in text


def test_graphs_build_uses_cache(files, tmp_path) -> None:
    cache = tmp_path / "cache"
    r, text = invoke("graphs", "build", files["cifs"], "--cache-dir", cache, "-j", "1")
    assert r.exit_code == 0, r.output
    assert "6 graphs (30 atoms, 360 edges, 12.00 edges/atom)" in text
    assert "(0 from cache, 6 built)" in text
    assert (cache / "graphs.lmdb").is_dir()
    r, text = invoke("graphs", "build", files["cifs"], "--cache-dir", cache, "-j", "1")
    assert r.exit_code == 0 and "(6 from cache, 0 built)" in text
    r, text = invoke("graphs", "build", files["cifs"], "--no-cache", "--max-neighbors", "0", "--radius", "4", "-j", "1")
    assert r.exit_code == 0 and "6 graphs" in text and "12.00 edges/atom" not in text
    r, _ = invoke("graphs", "build", files["cifs"], "--no-cache", "--strict", "-j", "1")
    assert r.exit_code == 2
    # a table read 16 rows at a time: graphs into the cache only; the second time all from it
    fresh = tmp_path / "cache2"
    r, text = invoke("graphs", "build", files["table"], "--cache-dir", fresh, "--chunk-size", "16", "-j", "1")
    assert r.exit_code == 0, r.output
    assert "40 graphs" in text and "16 rows at a time" in text and "(0 from cache, 40 built)" in text
    r, text = invoke("graphs", "build", files["table"], "--cache-dir", fresh, "--chunk-size", "16", "-j", "1")
    assert r.exit_code == 0 and "(40 from cache, 0 built)" in text
    r, text = invoke("graphs", "build", files["cifs"], "--cache-dir", cache, "--chunk-size", "16")
    assert r.exit_code == 1 and "one CSV / JSON-lines table" in text
    r, text = invoke("graphs", "build", files["table"], "--no-cache", "--chunk-size", "16")
    assert r.exit_code == 1 and "drop --no-cache" in text


def test_train_evaluate_predict(files, tmp_path) -> None:
    run = tmp_path / "run"
    r, text = invoke(
        "train", files["table"], "-t", "heat_all", "--epochs", "2", "--batch-size", "16", "-o", run,
        "--optimizer", "adam", "--lr", "0.003", "-m", "atom_fea_len=16", "-m", "n_conv=2", "--jobs", "1",
        "--threads", "1", "--no-progress", "--split", "0.6,0.2,0.2",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "done" in text and '"mae"' in text
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["n_test"] == 8
    saved = (run / "config.yaml").read_text()
    assert "atom_fea_len: 16" in saved and "n_conv: 2" in saved

    # evaluate on the labelled table: metrics for every entry, predictions.csv, parity plot
    ev = tmp_path / "eval"
    r, text = invoke("evaluate", run, files["table"], "-o", ev)
    assert r.exit_code == 0, r.output
    m = json.loads((ev / "metrics.json").read_text())
    assert m["metrics"]["n"] == 40 and m["n_rejected"] == 0
    # the run's own data: the entries it trained and validated on are counted and named
    split = json.loads((run / "split.json").read_text())
    assert m["n_in_train_split"] == len(split["train"]) == 24 and m["n_in_val_split"] == len(split["val"]) == 8
    assert "24 of 40 entries were in this run's training split" in text and split["train"][0] in text
    r, text = invoke("evaluate", run, files["table"], "-o", tmp_path / "eval-test", "--test-only")
    assert r.exit_code == 0, r.output
    mt = json.loads((tmp_path / "eval-test" / "metrics.json").read_text())
    assert mt["metrics"]["n"] == len(split["test"]) == 8 and mt["evaluated"] == "test split only"
    r, text = invoke("evaluate", "mp-band-gap", files["table"], "--test-only", "-o", tmp_path / "x")
    assert r.exit_code == 2 and "needs a run folder" in text
    preds = read_predictions(ev / "predictions.csv")
    assert len(preds) == 40 and {"id", "target", "prediction"} <= set(preds.columns)
    assert (ev / "parity.png").stat().st_size > 0
    # evaluate reproduces the run's own test predictions
    test_preds = read_predictions(run / "predictions.csv")
    merged = test_preds.merge(preds, on="id", suffixes=("_run", "_eval"))
    assert len(merged) == len(test_preds) == 8
    pd.testing.assert_series_equal(merged["prediction_run"], merged["prediction_eval"], check_names=False, rtol=1e-6)

    # predict on a folder of CIF files (one unreadable): CSV with id and prediction
    out = tmp_path / "pred.csv"
    r, text = invoke("predict", run, files["cifs"], "-o", out)
    assert r.exit_code == 0, r.output
    df = read_predictions(out)
    assert {"id", "prediction"} <= set(df.columns)
    assert sorted(df["id"]) == sorted(p.stem for p in files["good"].glob("*.cif"))
    by_id = dict(zip(preds["id"], preds["prediction"], strict=True))
    for i, p in zip(df["id"], df["prediction"], strict=True):
        assert p == pytest.approx(by_id[i], rel=1e-5, abs=1e-6)
    assert "garbage" in text  # the rejected input is reported
    # a checkpoint file works as well as the run folder
    r, _ = invoke("predict", run / "checkpoints" / "best.ckpt", files["good"], "-o", tmp_path / "p2.csv")
    assert r.exit_code == 0, r.output
    pd.testing.assert_frame_equal(read_predictions(tmp_path / "p2.csv"), df)
    # errors are reported, not raised
    r, text = invoke("predict", tmp_path / "no-such-run", files["good"])
    assert r.exit_code == 1 and "not a file, run folder or shipped model" in text


def test_train_errors(files, tmp_path) -> None:
    # no --target: the source's only label is the default; several or none is an error
    from crystalgnn.training.config import TrainConfig
    from crystalgnn.training.run_data import resolve_default_target

    assert resolve_default_target(TrainConfig(source=str(files["table"]), n_jobs=1, progress=False)) == ["heat_all"]
    rows = perovskite_rows(8)
    several = write_jsonl(tmp_path / "two.jsonl", rows, columns=("id", "cif", "heat_all", "dir_gap"))
    r, text = invoke("train", several, "-o", tmp_path / "x", "--no-progress")
    assert r.exit_code == 1 and "several labels: heat_all, dir_gap; choose with --target" in text
    assert not (tmp_path / "x").exists()
    unlabelled = write_jsonl(tmp_path / "none.jsonl", rows, columns=("id", "cif"))
    r, text = invoke("train", unlabelled, "-o", tmp_path / "x", "--no-progress")
    assert r.exit_code == 1 and "no graph-level label" in text
    # a catalog dataset's labels are known without reading it: the same error at once
    r, text = invoke("train", "perovskites", "-o", tmp_path / "x", "--no-progress")
    assert r.exit_code == 1 and "perovskites: several labels: heat_all, heat_ref, dir_gap, ind_gap" in text
    r, text = invoke("train", files["table"], "-t", "heat_all", "-m", "bogus_option=1", "-o", tmp_path / "y")
    assert r.exit_code == 1 and "bogus_option" in text
    r, text = invoke("train", "-t", "heat_all", "-o", tmp_path / "z")
    assert r.exit_code == 2 and "no SOURCE" in text


def test_import_cgcnn(tmp_path, files) -> None:
    src = CGCNN_PRETRAINED / "band-gap.pth.tar"
    if not src.is_file():
        pytest.skip(f"{src} not found")
    out = tmp_path / "bg.ckpt"
    r, text = invoke("import-cgcnn", src, "-o", out)
    assert r.exit_code == 0, r.output
    assert "wrote" in text
    ckpt = torch.load(str(out), map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["target"]["names"] == ["band_gap"]
    assert ckpt["hyper_parameters"]["target"]["units"] == {"band_gap": "eV"}
    assert ckpt["crystalgnn_format_version"] == 2 and ckpt["hyper_parameters"]["readout"] == "graph"
    r, _ = invoke("predict", out, files["good"], "-o", tmp_path / "bg.csv")
    assert r.exit_code == 0, r.output
    df = read_predictions(tmp_path / "bg.csv")
    assert len(df) == 6 and df["prediction"].notna().all()
    r, text = invoke("import-cgcnn", tmp_path / "missing.pth.tar", "-o", tmp_path / "m.ckpt")
    assert r.exit_code == 1 and "no such file" in text


def test_demo(tmp_path) -> None:
    out = tmp_path / "demo.csv"
    r, text = invoke("demo", "-o", out)
    assert r.exit_code == 0, r.output
    for name in ("LiCoO2", "LiFePO4", "LiMn2O4", "LiMnPO4", "LiNiO2"):
        assert name in text
    df = read_predictions(out)
    assert sorted(df["structure"]) == ["LiCoO2", "LiFePO4", "LiMn2O4", "LiMnPO4", "LiNiO2"]
    assert (df["edges"] == 12 * df["atoms"]).all()
