"""The benchmark (crystalgnn.experiments.orchestration) end to end on a tiny synthetic perovskite table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinydata import read_predictions

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")


def test_benchmark_end_to_end_and_resume(table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalgnn.experiments import network_learners, orchestration

    out = tmp_path / "bench"
    models = ["mean", "per-element", "cgcnn", "soap-mlp"]
    kw = dict(out=out, repeats=2, epochs=2, subset=50, subset_seed=1, show_progress=False, verbose=False)
    kw["train_options"] = {"batch_size": 16, "num_threads": 1}
    res = orchestration.run_benchmark(str(table), ["energy"], models, **kw)

    assert res.n_run == 8 and res.n_skipped == 0
    for name in ("results.csv", "summary.csv", "summary.md", "benchmark.png", "settings.json", "subset.jsonl.gz"):
        assert (out / name).is_file(), name
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 8
    assert set(df["model"]) == set(models) and sorted(set(df["repeat"])) == [0, 1]
    assert df[["mae", "rmse", "r2", "train_time_s", "n_parameters", "model_bytes"]].notna().all().all()
    assert (df["n_test"] == 5).all()  # 50 entries, 0.8/0.1/0.1
    # all models of a repeat share the test set
    for r in (0, 1):
        ids = {m: set(read_predictions(out / "runs" / f"{m}-energy-r{r}" / "predictions.csv")["id"]) for m in models}
        assert len({frozenset(v) for v in ids.values()}) == 1
    assert (out / "runs" / "cgcnn-energy-r0" / "checkpoints" / "best.ckpt").is_file()
    assert (out / "runs" / "soap-mlp-energy-r1" / "checkpoints" / "best.ckpt").is_file()
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4 and (summary["n_runs"] == 2).all()
    assert "± " in (out / "summary.md").read_text()
    # the per-element fit explains this composition-driven target far better than the mean
    per = summary.set_index("model")
    assert per.loc["per-element", "mae_mean"] < per.loc["mean", "mae_mean"]

    # re-running trains nothing
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(network_learners, "train", boom)
    monkeypatch.setattr(network_learners, "train_soap_mlp", boom)
    monkeypatch.setattr(orchestration, "make_learner", boom)
    monkeypatch.setattr(orchestration, "prepare_data", boom)
    again = orchestration.run_benchmark(str(table), ["energy"], models, **kw)
    assert again.n_run == 0 and again.n_skipped == 8
    assert len(pd.read_csv(out / "results.csv")) == 8

    # other settings in the same folder are refused
    with pytest.raises(orchestration.BenchmarkMismatch):
        orchestration.run_benchmark(str(table), ["energy"], models, **{**kw, "epochs": 3})


def test_interrupted_network_cell_resumes_from_its_run_folder(
    table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cell whose run folder finished but that is missing from results.csv is not retrained."""
    from crystalgnn.experiments import network_learners, orchestration

    out = tmp_path / "bench"
    kw = dict(out=out, repeats=1, epochs=1, show_progress=False, verbose=False, train_options={"batch_size": 16})
    orchestration.run_benchmark(str(table), ["energy"], ["cgcnn"], **kw)
    (out / "results.csv").unlink()
    calls = []
    real = network_learners.train

    def spy(cfg):  # type: ignore[no-untyped-def]
        res = real(cfg)
        calls.append(res.run_dir)
        return res

    monkeypatch.setattr(network_learners, "train", spy)
    before = (out / "runs" / "cgcnn-energy-r0" / "metrics.json").stat().st_mtime_ns
    orchestration.run_benchmark(str(table), ["energy"], ["cgcnn"], **kw)
    assert len(calls) == 1
    assert (out / "runs" / "cgcnn-energy-r0" / "metrics.json").stat().st_mtime_ns == before


def test_matbench_folds_match_sklearn_kfold() -> None:
    from sklearn.model_selection import KFold

    from crystalgnn.experiments.preparation import make_splits

    n = 103
    splits = make_splits(n, "matbench", 5, "0.8,0.1,0.1")
    ref = list(KFold(5, shuffle=True, random_state=18012019).split(np.arange(n)))
    assert len(splits) == 5
    for sp, (tr, te) in zip(splits, ref, strict=True):
        assert np.array_equal(np.sort(sp.test), np.sort(te))
        assert np.array_equal(np.sort(np.concatenate([sp.train, sp.val])), np.sort(tr))
        assert len(sp.val) == round(len(tr) / 9)  # val/(train+val) of 0.8/0.1/0.1
    assert len(make_splits(n, "matbench", 2, "0.8,0.1,0.1")) == 2
    with pytest.raises(ValueError):
        make_splits(n, "matbench", 6, "0.8,0.1,0.1")


def test_matbench_protocol_baselines_use_whole_training_folds(table: Path, tmp_path: Path) -> None:
    from crystalgnn.experiments import run_benchmark

    res = run_benchmark(
        str(table), ["energy"], ["mean", "per-element"], out=tmp_path / "mb", protocol="matbench",
        show_progress=False, verbose=False,
    )  # fmt: skip
    df = res.results
    assert sorted(set(df["repeat"].astype(int))) == [0, 1, 2, 3, 4]
    assert (df["n_train"] == 48).all() and (df["n_test"] == 12).all()


def test_per_model_repeats(table: Path, tmp_path: Path) -> None:
    """The thesis' protocol: more repeats for some models than others, on shared splits."""
    from crystalgnn.experiments import run_benchmark

    kw = dict(out=tmp_path / "pm", show_progress=False, verbose=False)
    res = run_benchmark(
        str(table), ["energy"], ["mean", "per-element"], repeats=3, model_repeats={"per-element": 2}, **kw
    )
    df = res.results
    assert sorted(df.loc[df["model"] == "mean", "repeat"].astype(int)) == [0, 1, 2]
    assert sorted(df.loc[df["model"] == "per-element", "repeat"].astype(int)) == [0, 1]
    counts = dict(zip(res.summary["model"], res.summary["n_runs"], strict=True))
    assert counts == {"mean": 3, "per-element": 2}
    # same split per repeat for every model: identical test-set sizes, and re-running computes nothing
    again = run_benchmark(
        str(table), ["energy"], ["mean", "per-element"], repeats=3, model_repeats={"per-element": 2}, **kw
    )
    assert again.n_run == 0 and again.n_skipped == 5
    with pytest.raises(ValueError, match="not in the benchmark"):
        run_benchmark(str(table), ["energy"], ["mean"], repeats=2, model_repeats={"soap-svr": 1}, **kw)


def test_cli_benchmark_and_learning_curve(table: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crystalgnn.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["benchmark", str(table), "--targets", "energy", "--models", "mean,per-element",
                              "--repeats", "2", "--out", str(tmp_path / "b"), "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "per-element" in res.output and (tmp_path / "b" / "summary.md").is_file()
    res = runner.invoke(app, ["benchmark", str(table), "--targets", "energy", "--models", "nope",
                              "--out", str(tmp_path / "c"), "--no-progress"])  # fmt: skip
    assert res.exit_code == 1 and "unknown model" in res.output
    res = runner.invoke(app, ["learning-curve", str(table), "--target", "energy", "--models", "mean",
                              "--sizes", "10,20", "--repeats", "1", "--out", str(tmp_path / "lc"), "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (tmp_path / "lc" / "learning_curve.csv").is_file()
