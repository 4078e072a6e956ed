"""The benchmark and learning-curve commands end to end on a tiny synthetic perovskite table."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")

A_SITE = {"Sr": 0.3, "Ba": 0.5, "Ca": 0.1, "La": -0.4, "K": 0.9}
B_SITE = {"Ti": -1.0, "Zr": -0.6, "Nb": -0.2, "Fe": 0.4, "Mn": 0.2, "Al": -0.8}


def _perovskite_table(path: Path, n: int = 60, seed: int = 0) -> Path:
    """``n`` cubic ABO3 cells; ``energy`` depends on A, B and the lattice constant."""
    rng = np.random.default_rng(seed)
    with gzip.open(path, "wt") as f:
        for k in range(n):
            a, b = str(rng.choice(list(A_SITE))), str(rng.choice(list(B_SITE)))
            lat = float(rng.uniform(3.8, 4.2))
            s = Structure(
                Lattice.cubic(lat),
                [a, b, "O", "O", "O"],
                [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
            )
            energy = A_SITE[a] + B_SITE[b] + 2.0 * (lat - 4.0) + 0.05 * rng.normal()
            f.write(json.dumps({"id": f"p{k}", "structure": s.as_dict(), "energy": energy}) + "\n")
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _perovskite_table(tmp_path_factory.mktemp("data") / "perov.jsonl.gz")


def test_benchmark_end_to_end_and_resume(table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalgnn.evaluation import benchmark

    out = tmp_path / "bench"
    models = ["mean", "per-element", "cgcnn", "soap-mlp"]
    kw = dict(out=out, repeats=2, epochs=2, subset=50, subset_seed=1, show_progress=False, verbose=False)
    kw["train_options"] = {"batch_size": 16, "num_threads": 1}
    res = benchmark.run_benchmark(str(table), ["energy"], models, **kw)

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
        ids = {
            m: set(pd.read_csv(out / "runs" / f"{m}-energy-r{r}" / "predictions.csv")["id"]) for m in models
        }
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

    monkeypatch.setattr(benchmark, "train", boom)
    monkeypatch.setattr(benchmark, "train_soap_mlp", boom)
    monkeypatch.setattr(benchmark, "fit_predict_baseline", boom)
    monkeypatch.setattr(benchmark, "prepare_data", boom)
    again = benchmark.run_benchmark(str(table), ["energy"], models, **kw)
    assert again.n_run == 0 and again.n_skipped == 8
    assert len(pd.read_csv(out / "results.csv")) == 8

    # other settings in the same folder are refused
    with pytest.raises(benchmark.BenchmarkMismatch):
        benchmark.run_benchmark(str(table), ["energy"], models, **{**kw, "epochs": 3})


def test_interrupted_network_cell_resumes_from_its_run_folder(table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cell whose run folder finished but that is missing from results.csv is not retrained."""
    from crystalgnn.evaluation import benchmark

    out = tmp_path / "bench"
    kw = dict(out=out, repeats=1, epochs=1, show_progress=False, verbose=False, train_options={"batch_size": 16})
    benchmark.run_benchmark(str(table), ["energy"], ["cgcnn"], **kw)
    (out / "results.csv").unlink()
    calls = []
    real = benchmark.train

    def spy(cfg):  # type: ignore[no-untyped-def]
        res = real(cfg)
        calls.append(res.run_dir)
        return res

    monkeypatch.setattr(benchmark, "train", spy)
    before = (out / "runs" / "cgcnn-energy-r0" / "metrics.json").stat().st_mtime_ns
    benchmark.run_benchmark(str(table), ["energy"], ["cgcnn"], **kw)
    assert len(calls) == 1
    assert (out / "runs" / "cgcnn-energy-r0" / "metrics.json").stat().st_mtime_ns == before


def test_matbench_folds_match_sklearn_kfold() -> None:
    from sklearn.model_selection import KFold

    from crystalgnn.evaluation.benchmark import make_splits

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
    from crystalgnn.evaluation.benchmark import run_benchmark

    res = run_benchmark(
        str(table), ["energy"], ["mean", "per-element"], out=tmp_path / "mb", protocol="matbench",
        show_progress=False, verbose=False,
    )  # fmt: skip
    df = res.results
    assert sorted(set(df["repeat"].astype(int))) == [0, 1, 2, 3, 4]
    assert (df["n_train"] == 48).all() and (df["n_test"] == 12).all()


def test_per_model_repeats(table: Path, tmp_path: Path) -> None:
    """The thesis' protocol: more repeats for some models than others, on shared splits."""
    from crystalgnn.evaluation.benchmark import run_benchmark

    kw = dict(out=tmp_path / "pm", show_progress=False, verbose=False)
    res = run_benchmark(str(table), ["energy"], ["mean", "per-element"], repeats=3, model_repeats={"per-element": 2}, **kw)
    df = res.results
    assert sorted(df.loc[df["model"] == "mean", "repeat"].astype(int)) == [0, 1, 2]
    assert sorted(df.loc[df["model"] == "per-element", "repeat"].astype(int)) == [0, 1]
    counts = dict(zip(res.summary["model"], res.summary["n_runs"], strict=True))
    assert counts == {"mean": 3, "per-element": 2}
    # same split per repeat for every model: identical test-set sizes, and re-running computes nothing
    again = run_benchmark(str(table), ["energy"], ["mean", "per-element"], repeats=3, model_repeats={"per-element": 2}, **kw)
    assert again.n_run == 0 and again.n_skipped == 5
    with pytest.raises(ValueError, match="not in the benchmark"):
        run_benchmark(str(table), ["energy"], ["mean"], repeats=2, model_repeats={"soap-svr": 1}, **kw)


def test_learning_curve(table: Path, tmp_path: Path) -> None:
    from crystalgnn.evaluation.learning_curve import learning_curve_splits, run_learning_curve

    splits = learning_curve_splits(60, [10, 20, 40], 0)
    assert set(splits[10].train) <= set(splits[20].train) <= set(splits[40].train)
    assert all(np.array_equal(splits[10].test, s.test) for s in splits.values())

    out = tmp_path / "lc"
    res = run_learning_curve(
        str(table), "energy", ["mean", "per-element"], [12, 24, 48], out=out, repeats=2,
        show_progress=False, verbose=False,
    )  # fmt: skip
    df = pd.read_csv(out / "learning_curve.csv")
    assert len(df) == 2 * 3 * 2 and set(df["size"]) == {12, 24, 48}
    assert (df["n_train"] == df["size"]).all()
    assert (out / "learning_curve.png").is_file() and (out / "learning_curve_summary.csv").is_file()
    assert res.n_run == 12
    assert run_learning_curve(str(table), "energy", ["mean", "per-element"], [12, 24, 48], out=out, repeats=2,
                              show_progress=False, verbose=False).n_run == 0
    with pytest.raises(ValueError, match="exceed"):
        learning_curve_splits(60, [100], 0)


def test_soap_mlp_clips_standardised_features() -> None:
    """A feature far outside the training range cannot blow the prediction up (clip at ±5)."""
    import torch

    from crystalgnn.baselines.soap_mlp import SoapMLP, SoapMLPConfig
    from crystalgnn.graphs.atom_features import AtomFeaturizer

    table = torch.tensor(AtomFeaturizer.cgcnn().matrix())
    torch.manual_seed(0)
    model = SoapMLP(SoapMLPConfig(n_features=3), table)
    model.set_scaler([0.0, 0.0, 0.0], [1e-6, 1.0, 0.0])  # near-zero feature; constant column -> scale 1
    assert torch.equal(model.feature_scale[2], torch.tensor(1.0))
    x = torch.tensor([[1e-3, 0.5, 0.0]])
    at_clip = torch.tensor([[5e-6, 0.5, 0.0]])  # z = 5 (the clip) vs 1000
    assert torch.allclose(model(x), model(at_clip))
    raw = SoapMLP(SoapMLPConfig(n_features=3, standardize=False, input_softplus=True), table)
    assert torch.isfinite(raw(x)).all()


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
