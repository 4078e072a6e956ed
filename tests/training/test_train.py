"""Tests for crystalgnn.training.run: complete, reproducible, resumable training runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.data.readers import load_source
from crystalgnn.evaluation.reports import run_figures
from crystalgnn.prediction import Predictor
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.run import RunConfigMismatch, train
from tinydata import OVERLAP_CIF, perovskite_rows, read_predictions, small_config, write_jsonl

EPOCHS = 5
BAD_CIF = "data_broken\n_cell_length_a 3.0\nthis is not a CIF\n"


pytestmark = pytest.mark.usefixtures("one_thread")


def strict_json(text: str):
    """``json.loads`` that refuses NaN and infinities (not JSON, though Python writes them)."""

    def refuse(constant: str):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """60 perovskites + two unusable rows (regression), and the same cells with 0/1 labels."""
    d = tmp_path_factory.mktemp("train-data")
    rows = perovskite_rows(60)
    bad = [
        {"id": "broken", "cif": BAD_CIF, "heat_all": 1.0},
        {"id": "overlap", "cif": OVERLAP_CIF, "heat_all": 1.0},
    ]
    write_jsonl(d / "perov.jsonl", rows[:30] + bad + rows[30:])
    median = float(np.median([r["heat_all"] for r in rows]))
    write_jsonl(d / "classes.jsonl", rows, columns=("id", "cif"), extra=lambda r: {"high": int(r["heat_all"] > median)})
    return d


def config(data_dir: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        source=str(data_dir / "perov.jsonl"),
        targets=["heat_all"],
        epochs=EPOCHS,
        batch_size=16,
        optimizer="adam",
        lr=0.003,
        out=str(out),
        progress=False,
        n_jobs=1,
        num_threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def cli_args(data_dir: Path, out: Path) -> list[str]:
    """The `crystalgnn train` arguments that give the same run as :func:`config`."""
    return [
        "train", str(data_dir / "perov.jsonl"), "-t", "heat_all", "--epochs", str(EPOCHS), "--batch-size", "16",
        "--optimizer", "adam", "--lr", "0.003", "-o", str(out), "--jobs", "1", "--threads", "1", "--no-progress",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def run_a(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    return train(config(data_dir, out))


def test_run_folder_outputs(run_a) -> None:
    d = run_a.run_dir
    # training writes data files only; the figures are drawn from them afterwards
    assert not (d / "parity.png").exists() and not (d / "training.png").exists()
    made = run_figures(d)
    assert {p.name for p in made} == {"parity.png", "training.png"}
    for name in (
        "config.yaml",
        "split.json",
        "rejected.csv",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "log/metrics.csv",
        "metrics.json",
        "predictions.csv",
        "parity.png",
        "training.png",
    ):
        assert (d / name).is_file(), name
        assert (d / name).stat().st_size > 0, name
    m = strict_json((d / "metrics.json").read_text())
    assert m == json.loads(json.dumps(run_a.metrics))
    for key in ("mae", "rmse", "r2"):
        assert np.isfinite(m["test"][key]), key
    assert m["test"]["rmse"] >= m["test"]["mae"] > 0
    assert m["train_time_s"] > 0
    assert m["n_parameters"] > 10_000
    assert m["checkpoint_bytes"] == (d / "checkpoints" / "best.ckpt").stat().st_size
    assert m["epochs_run"] == EPOCHS and m["task"] == "regression"
    assert (m["n_train"], m["n_val"], m["n_test"], m["n_rejected"]) == (48, 6, 6, 2)
    # the config saved is the run's identity
    saved = TrainConfig.from_yaml(d / "config.yaml")
    assert saved.epochs == EPOCHS and saved.targets == ["heat_all"] and saved.optimizer == "adam"
    # split: disjoint, complete, ids of the dataset
    split = json.loads((d / "split.json").read_text())
    ids = [i for k in ("train", "val", "test") for i in split[k]]
    assert len(ids) == len(set(ids)) == 60
    assert "broken" not in ids and "overlap" not in ids
    # rejections, with their reasons
    rej = pd.read_csv(d / "rejected.csv")
    reasons = dict(zip(rej["id"], rej["reason"], strict=True))
    assert set(reasons) == {"broken", "overlap"}
    assert "overlapping" in reasons["overlap"]
    # predictions of the test split
    pred = read_predictions(d / "predictions.csv")
    assert list(pred.columns) == ["id", "target", "prediction"]
    assert sorted(pred["id"]) == sorted(split["test"])
    err = np.abs(pred["prediction"] - pred["target"])
    assert err.mean() == pytest.approx(m["test"]["mae"], rel=1e-5)
    # per-epoch log
    log = pd.read_csv(d / "log" / "metrics.csv")
    assert "val_mae" in log and log["val_mae"].notna().sum() == EPOCHS
    assert log["epoch"].max() == EPOCHS - 1


def test_same_seed_identical_metrics(run_a, data_dir, tmp_path) -> None:
    b = train(config(data_dir, tmp_path / "b"))
    assert b.metrics["test"] == run_a.metrics["test"]
    assert (tmp_path / "b" / "split.json").read_text() == (run_a.run_dir / "split.json").read_text()
    pa = read_predictions(run_a.run_dir / "predictions.csv")
    pb = read_predictions(tmp_path / "b" / "predictions.csv")
    pd.testing.assert_frame_equal(pa, pb)
    # a different seed gives another split and other weights
    c = train(config(data_dir, tmp_path / "c", seed=1, epochs=1))
    assert json.loads((tmp_path / "c" / "split.json").read_text()) != json.loads(
        (run_a.run_dir / "split.json").read_text()
    )
    assert c.metrics["test"] != run_a.metrics["test"]


def test_graphs_on_disk_train_identically(run_a, data_dir, tmp_path) -> None:
    """Training from graphs read per batch from the LMDB cache (``--graphs-on-disk``) gives the
    same run as graphs held in memory: same batches, same numbers."""
    d = train(config(data_dir, tmp_path / "d", graphs_on_disk=True, cache_dir=str(tmp_path / "cache")))
    assert d.metrics["test"] == run_a.metrics["test"]
    assert d.metrics["n_rejected"] == run_a.metrics["n_rejected"] == 2
    pd.testing.assert_frame_equal(
        read_predictions(tmp_path / "d" / "predictions.csv"), read_predictions(run_a.run_dir / "predictions.csv")
    )
    # a subset is drawn from the parsed entries before graph building, on disk as in memory
    sub = {"subset": 40, "epochs": 2, "cache_dir": str(tmp_path / "cache")}
    on_disk = train(config(data_dir, tmp_path / "sd", graphs_on_disk=True, **sub))
    in_memory = train(config(data_dir, tmp_path / "sm", **sub))
    assert on_disk.metrics["test"] == in_memory.metrics["test"]
    assert (tmp_path / "sd" / "split.json").read_text() == (tmp_path / "sm" / "split.json").read_text()
    with pytest.raises(ValueError, match="cache"):
        train(config(data_dir, tmp_path / "e", graphs_on_disk=True, use_cache=False))
    with pytest.raises(ValueError, match="graph-level"):
        train(config(data_dir, tmp_path / "f", targets=[], site_target="magmom", graphs_on_disk=True))


def _checkpoint_epoch(path: Path) -> int | None:
    try:
        return int(torch.load(str(path), map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # not written yet, or being written
        return None


def test_resume_after_kill_gives_uninterrupted_result(run_a, data_dir, tmp_path) -> None:
    out = tmp_path / "killed"
    last = out / "checkpoints" / "last.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CRYSTALGNN_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "crystalgnn.cli", *cli_args(data_dir, out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    epoch = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if last.is_file():
                epoch = _checkpoint_epoch(last)
                if epoch is not None and epoch >= 1:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, f"training ended before it could be killed: {proc.stderr.read()[-2000:]!r}"
        proc.kill()  # SIGKILL: no clean-up
    finally:
        proc.kill()
        proc.wait()
    assert epoch is not None and 1 <= epoch < EPOCHS
    assert not (out / "metrics.json").exists()
    # the same command again resumes from last.ckpt and finishes
    r = CliRunner().invoke(app, cli_args(data_dir, out))
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs_run"] == EPOCHS
    assert m["test"] == run_a.metrics["test"]
    pd.testing.assert_frame_equal(
        read_predictions(out / "predictions.csv"), read_predictions(run_a.run_dir / "predictions.csv")
    )
    # the per-epoch log covers the epochs of both processes, with the values of the straight run
    log = pd.read_csv(out / "log" / "metrics.csv")
    ref = pd.read_csv(run_a.run_dir / "log" / "metrics.csv")
    val, val_ref = log.dropna(subset=["val_mae"]), ref.dropna(subset=["val_mae"])
    assert val["epoch"].tolist() == list(range(EPOCHS))
    np.testing.assert_array_equal(val["val_mae"].to_numpy(), val_ref["val_mae"].to_numpy())
    # training time covers both processes (carried through the checkpoint)
    assert m["train_time_s"] > 0
    assert m["time_per_epoch_s"] > 0
    # running it once more reports the finished run without training again
    before = (out / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    r = CliRunner().invoke(app, cli_args(data_dir, out))
    assert r.exit_code == 0, r.output
    assert (out / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before


def test_other_config_in_same_folder_is_refused(run_a, data_dir) -> None:
    with pytest.raises(RunConfigMismatch, match=r"differs in: lr"):
        train(config(data_dir, run_a.run_dir, lr=0.01))
    with pytest.raises(RunConfigMismatch, match=r"differs in: batch_size"):
        train(config(data_dir, run_a.run_dir, batch_size=8))
    # fewer epochs than the finished run: reported as it is, nothing trained (more epochs extend
    # a run: test_extending_a_finished_run)
    before = (run_a.run_dir / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    fewer = train(config(data_dir, run_a.run_dir, epochs=EPOCHS - 1))
    assert fewer.metrics == strict_json((run_a.run_dir / "metrics.json").read_text())
    assert fewer.metrics["epochs_run"] == EPOCHS
    assert (run_a.run_dir / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before
    r = CliRunner().invoke(app, [*cli_args(data_dir, run_a.run_dir), "--seed", "3"])
    assert r.exit_code != 0
    text = " ".join(r.output.split())
    assert "different configuration" in text and "differs in: seed" in text
    # options that do not change the result may differ (threads, jobs, progress)
    same = train(config(data_dir, run_a.run_dir, num_threads=2, n_jobs=2, progress=True))
    assert same.metrics["test"] == run_a.metrics["test"]
    assert yaml.safe_load((run_a.run_dir / "config.yaml").read_text())["lr"] == 0.003


def test_classification_run(data_dir, tmp_path) -> None:
    cfg = config(
        data_dir, tmp_path / "cls", source=str(data_dir / "classes.jsonl"), targets=["high"], epochs=3,
        split="0.5,0.25,0.25",
    )  # fmt: skip
    res = train(cfg)
    m = res.metrics
    assert m["task"] == "classification"  # inferred from the 0/1 labels
    for key in ("roc_auc", "accuracy", "precision", "recall", "f1"):
        assert np.isfinite(m["test"][key]), key
    assert 0 <= m["test"]["roc_auc"] <= 1
    assert not (res.run_dir / "roc.png").exists()  # figures are drawn by run_figures
    assert {p.name for p in run_figures(res.run_dir)} == {"roc.png", "training.png"}
    assert (res.run_dir / "roc.png").stat().st_size > 0
    assert not (res.run_dir / "parity.png").exists()
    pred = read_predictions(res.run_dir / "predictions.csv")
    assert ((pred["prediction"] >= 0) & (pred["prediction"] <= 1)).all()
    assert set(pred["target"]) == {0, 1}
    log = pd.read_csv(res.run_dir / "log" / "metrics.csv")
    assert log["val_auc"].notna().sum() == 3


def test_predictor_reproduces_predictions_csv(run_a, data_dir) -> None:
    d = run_a.run_dir
    split = json.loads((d / "split.json").read_text())
    ds = load_source(str(data_dir / "perov.jsonl"), show_progress=False, n_jobs=1)
    test = ds.subset(ds.index_of(split["test"]))
    pred = Predictor.load(d)
    assert pred.source.endswith("best.ckpt")
    res = pred.predict(test, show_progress=False, n_jobs=1)
    saved = read_predictions(d / "predictions.csv")
    assert res.ids == list(saved["id"])
    got = res.values[:, 0].astype(np.float32)
    assert np.array_equal(got, saved["prediction"].to_numpy().astype(np.float32))
    frame = res.to_frame(test)
    assert list(frame.columns) == ["id", "formula", "target", "prediction"]
    np.testing.assert_array_equal(frame["target"].to_numpy(), saved["target"].to_numpy())


def test_failed_start_does_not_lock_the_run_folder(tmp_path) -> None:
    """A run that fails before training (unknown target) leaves no configuration behind that
    would make the corrected command fail as 'a different run'."""
    import pytest as _pytest

    from crystalgnn.training.config import TrainConfig
    from crystalgnn.training.run import RunConfigMismatch, _check_run_dir

    out = tmp_path / "run"
    first = TrainConfig(source="perovskites", targets=["nope"], out=str(out))
    out.mkdir()
    first.save(out / "config.yaml")
    (out / "split.json").write_text("{}")
    second = TrainConfig(source="perovskites", targets=["heat_all"], out=str(out))
    assert _check_run_dir(out, second) is False
    assert not (out / "config.yaml").exists() and not (out / "split.json").exists()
    # a folder whose run has started still refuses another configuration
    first.save(out / "config.yaml")
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with _pytest.raises(RunConfigMismatch):
        _check_run_dir(out, second)


# ----------------------------------------------------------------------------- small runs
TINY = {"atom_fea_len": 16, "h_fea_len": 16, "n_conv": 1}


@pytest.fixture(scope="module")
def small_table(tmp_path_factory) -> Path:
    """12 perovskites: with --split 0.5,0.4,0.1 that is 7 train, 4 validation and 1 test."""
    return write_jsonl(tmp_path_factory.mktemp("small") / "perov12.jsonl", perovskite_rows(12))


@pytest.mark.parametrize(("split", "empty"), [("0.9,0.0,0.1", "0 validation"), ("0.9,0.1,0.0", "0 test")])
def test_empty_validation_or_test_split_is_refused(small_table, tmp_path, split, empty) -> None:
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=rf"{empty} .*every part needs at least one"):
        train(small_config(small_table, out, split=split))
    assert not out.exists()  # nothing half-made is left behind
    # the same through the CLI: an error message, not a traceback
    r = CliRunner().invoke(
        app,
        ["train", str(small_table), "-t", "heat_all", "--split", split, "-o", str(out), "--no-progress", "--jobs", "1"],
    )
    assert r.exit_code != 0
    assert "every part needs at least one" in " ".join(r.output.split())


def test_metrics_json_is_strict_json(small_table, tmp_path) -> None:
    """One test entry: R² is undefined (NaN in memory) and written as null, never as NaN."""
    res = train(small_config(small_table, tmp_path / "run", epochs=1))
    assert res.metrics["n_test"] == 1 and np.isnan(res.metrics["test"]["r2"])
    text = (tmp_path / "run" / "metrics.json").read_text()
    m = strict_json(text)
    assert m["test"]["r2"] is None and np.isfinite(m["test"]["mae"])
    assert "NaN" not in text and "Infinity" not in text


def test_extending_a_finished_run(small_table, tmp_path) -> None:
    """The same config with more epochs continues a finished run from its last epoch; the result
    is that of a run asked for the larger number of epochs from the start."""
    out = tmp_path / "run"
    first = train(small_config(small_table, out, epochs=2))
    assert first.metrics["epochs_run"] == 2
    log2 = pd.read_csv(out / "log" / "metrics.csv").dropna(subset=["val_mae"])
    assert log2["epoch"].tolist() == [0, 1]
    more = train(small_config(small_table, out, epochs=3))
    m = strict_json((out / "metrics.json").read_text())
    assert more.metrics["epochs_run"] == m["epochs_run"] == 3
    assert TrainConfig.from_yaml(out / "config.yaml").epochs == 3
    assert _checkpoint_epoch(out / "checkpoints" / "last.ckpt") == 2  # epochs 0, 1, 2
    log = pd.read_csv(out / "log" / "metrics.csv").dropna(subset=["val_mae"])
    assert log["epoch"].tolist() == [0, 1, 2]  # the first process's epochs are kept
    np.testing.assert_array_equal(log["val_mae"].to_numpy()[:2], log2["val_mae"].to_numpy())
    train(small_config(small_table, tmp_path / "straight", epochs=3))
    assert m["test"] == strict_json((tmp_path / "straight" / "metrics.json").read_text())["test"]
    ref = pd.read_csv(tmp_path / "straight" / "log" / "metrics.csv").dropna(subset=["val_mae"])
    np.testing.assert_array_equal(log["val_mae"].to_numpy(), ref["val_mae"].to_numpy())
    # asked again for 3 (or fewer) epochs: reported, not trained again
    before = (out / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    assert train(small_config(small_table, out, epochs=3)).metrics["epochs_run"] == 3
    assert (out / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before


@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_site_linear_run_end_to_end(small_table, tmp_path, reduce) -> None:
    """``readout="site-linear"`` trains through ``run.train``; the checkpoint restores the
    per-atom contributions, which pool (mean or sum) into the saved test predictions."""
    from torch_geometric.data import Batch

    from crystalgnn.graphs.crystal_graph import build_graph
    from crystalgnn.models.readouts import SiteLinearReadout

    options = {**TINY, **({"site_reduce": "sum"} if reduce == "sum" else {})}
    out = tmp_path / "run"
    res = train(small_config(small_table, out, readout="site-linear", model_options=options))
    m = res.metrics
    assert m["readout"] == "site-linear" and m["level"] == "graph" and m["task"] == "regression"
    assert m["epochs_run"] == 2 and np.isfinite(m["test"]["mae"])
    pred = Predictor.load(out)
    assert pred.kind == "regression" and pred.targets == ["heat_all"]
    model = pred.task.model
    assert isinstance(model.readout, SiteLinearReadout) and model.readout.reduce == reduce
    assert pred.task.hparams.readout == "site-linear"
    # the saved test predictions are reproduced from the checkpoint ...
    split = json.loads((out / "split.json").read_text())
    ds = load_source(str(small_table), show_progress=False, n_jobs=1)
    test = ds.subset(ds.index_of(split["test"]))
    got = pred.predict(test, show_progress=False, n_jobs=1)
    saved = read_predictions(out / "predictions.csv")
    assert got.ids == list(saved["id"])
    np.testing.assert_array_equal(got.values[:, 0].astype(np.float32), saved["prediction"].to_numpy(np.float32))
    # ... and each is the pooled per-atom contributions (de-normalised)
    b = Batch.from_data_list([build_graph(s, pred.graph_config) for s in test.structures])
    with torch.no_grad():
        c = model.readout.contributions(model.encoder(b))[:, 0]
    pooled = c.sum() if reduce == "sum" else c.mean()
    expected = pooled * pred.task.y_std[0] + pred.task.y_mean[0]
    np.testing.assert_allclose(got.values[0, 0], float(expected), rtol=1e-5, atol=1e-5)


def test_classification_on_non_integer_labels_is_refused(small_table, tmp_path) -> None:
    with pytest.raises(ValueError, match="integer class labels"):
        train(small_config(small_table, tmp_path / "c", task="classification"))
    assert not (tmp_path / "c").exists()


def test_init_from_copies_matching_weights(small_table, tmp_path) -> None:
    """``init_from`` starts a run from another run's weights: with 0 learning rate, the new
    run's model equals the source's encoder (and readout of the same shape) exactly."""
    from crystalgnn.training.checkpoints import load_task

    first = train(small_config(small_table, tmp_path / "first"))
    src = load_task(first.run_dir / "checkpoints" / "best.ckpt").state_dict()
    second = train(small_config(small_table, tmp_path / "second", init_from=str(first.run_dir / "checkpoints" / "best.ckpt"),
                                optimizer="sgd", lr=1e-12, momentum=0.0, seed=5))  # fmt: skip
    got = load_task(second.run_dir / "checkpoints" / "best.ckpt").state_dict()
    enc = [k for k in src if k.startswith("model.encoder.") and "running" not in k and "num_batches" not in k]
    assert enc and all(torch.allclose(src[k], got[k], atol=1e-6, equal_nan=True) for k in enc)
    with pytest.raises(ValueError, match="no encoder weight fits"):
        train(small_config(small_table, tmp_path / "third", init_from=str(first.run_dir / "checkpoints" / "best.ckpt"),
                           model_options={**TINY, "atom_fea_len": 12}))  # fmt: skip


def test_init_from_a_shipped_model_name(small_table, tmp_path) -> None:
    """Fine-tuning from a shipped model by name: its encoder is copied (the head is new, since
    the target differs: tests/training/test_finetune.py)."""
    from crystalgnn.training.checkpoints import load_task
    from crystalgnn.training.resolve import resolve_model

    cfg = small_config(
        small_table, tmp_path / "ft", init_from="mp-formation-energy", model_options={}, epochs=1, lr=1e-12
    )
    run = train(cfg)
    got = load_task(run.run_dir / "checkpoints" / "best.ckpt").state_dict()
    ref = load_task(resolve_model("mp-formation-energy")).state_dict()
    w = "model.encoder.convs.0.fc_full.weight"
    assert torch.allclose(got[w], ref[w], atol=1e-6)


def test_last_checkpoint_is_the_last_epoch_after_the_best_has_passed(small_table, tmp_path) -> None:
    """With a learning rate that makes training diverge, the best validation epoch comes early;
    ``last.ckpt`` must still be the last completed epoch (the resume point), so a run stopped
    after its best epoch and resumed ends as one that went straight through."""
    kw = {"optimizer": "sgd", "lr": 3.0, "momentum": 0.0}
    train(small_config(small_table, tmp_path / "straight", epochs=5, **kw))
    ckpts = tmp_path / "straight" / "checkpoints"
    best_epoch = _checkpoint_epoch(ckpts / "best.ckpt")
    assert _checkpoint_epoch(ckpts / "last.ckpt") == 4
    assert best_epoch is not None and best_epoch < 4  # the best epoch has passed
    out = tmp_path / "stopped"
    train(small_config(small_table, out, epochs=best_epoch + 2, **kw))  # stops after the best epoch
    assert _checkpoint_epoch(out / "checkpoints" / "last.ckpt") == best_epoch + 1
    train(small_config(small_table, out, epochs=5, **kw))
    done = strict_json((out / "metrics.json").read_text())  # NaN (R² of one entry) as null
    assert done["test"] == strict_json((tmp_path / "straight" / "metrics.json").read_text())["test"]
    log = pd.read_csv(out / "log" / "metrics.csv").dropna(subset=["val_mae"])
    ref = pd.read_csv(tmp_path / "straight" / "log" / "metrics.csv").dropna(subset=["val_mae"])
    np.testing.assert_array_equal(log["val_mae"].to_numpy(), ref["val_mae"].to_numpy())
