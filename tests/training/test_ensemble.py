"""Deep ensembles: ``train --ensemble N`` trains N seeded members on one split; the ensemble
predicts their mean with their spread."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.prediction import EnsemblePredictor, Predictor
from crystalgnn.training.ensemble import train_ensemble
from tinydata import perovskite_rows, small_config, write_jsonl


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    table = write_jsonl(root / "perov16.jsonl", perovskite_rows(16))
    res = train_ensemble(small_config(table, root / "ens", ensemble=3, split="0.5,0.25,0.25"))
    return table, res


def test_members_share_the_split_and_differ_in_seed(ensemble) -> None:
    _, res = ensemble
    members = [res.run_dir / f"member-{k}" for k in range(3)]
    splits = [json.loads((m / "split.json").read_text()) for m in members]
    assert splits[0] == splits[1] == splits[2]
    seeds = [json.loads((m / "metrics.json").read_text())["seed"] for m in members]
    assert seeds == [0, 1, 2]
    assert res.metrics["ensemble"] == 3 and res.metrics["n_test"] == 4


def test_ensemble_test_metrics_are_those_of_the_mean(ensemble) -> None:
    _, res = ensemble
    preds = [pd.read_csv(res.run_dir / f"member-{k}" / "predictions.csv") for k in range(3)]
    col = next(c for c in preds[0].columns if c.startswith("predicted heat_all"))  # units when the data have them
    stacked = np.stack([p[col].to_numpy() for p in preds])
    table = pd.read_csv(res.run_dir / "predictions.csv")
    np.testing.assert_allclose(table[col], stacked.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(table["std"], stacked.std(axis=0), rtol=1e-5, atol=1e-7)
    truth = table[preds[0].columns[1]].to_numpy()
    assert res.metrics["test"]["mae"] == pytest.approx(np.abs(stacked.mean(axis=0) - truth).mean(), rel=1e-5)
    assert res.metrics["mean_std"]["heat_all"] > 0  # three seeds do not agree exactly


def test_predictor_gives_mean_and_spread(ensemble) -> None:
    table, res = ensemble
    ens = Predictor.load(res.run_dir)
    assert isinstance(ens, EnsemblePredictor) and len(ens.members) == 3
    out = ens.predict(str(table))
    singles = np.stack([m.predict(str(table)).values for m in ens.members])
    np.testing.assert_allclose(out.values, singles.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(out.std, singles.std(axis=0), rtol=1e-5, atol=1e-7)
    assert "std" in out.to_frame().columns


def test_identical_members_have_zero_spread(ensemble, tmp_path) -> None:
    table, res = ensemble
    twin = tmp_path / "twin"
    for k in range(2):
        shutil.copytree(res.run_dir / "member-0", twin / f"member-{k}")
    (twin / "ensemble.json").write_text(json.dumps({"members": ["member-0", "member-1"], "seeds": [0, 0]}))
    out = Predictor.load(twin).predict(str(table))
    assert np.all(out.std == 0.0)


def test_ensemble_through_the_cli_resumes_and_predicts(ensemble, tmp_path) -> None:
    table, _ = ensemble
    out = tmp_path / "cli"
    args = ["train", str(table), "-t", "heat_all", "-m", "atom_fea_len=8", "-m", "h_fea_len=8", "-m", "n_conv=1",
            "--epochs", "2", "--batch-size", "4", "--optimizer", "adam", "--lr", "0.003", "--split", "0.5,0.25,0.25",
            "--ensemble", "2", "-o", str(out), "--no-progress", "--jobs", "1", "--threads", "1", "--no-cache"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "mean_std" in r.output
    first = json.loads((out / "metrics.json").read_text())
    # the same command again: the finished members are reported, not trained again
    stamp = (out / "member-1" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (out / "member-1" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp
    assert json.loads((out / "metrics.json").read_text())["test"] == first["test"]
    r = CliRunner().invoke(app, ["predict", str(out), str(table)])
    assert r.exit_code == 0, r.output
    assert "std" in r.output
    r = CliRunner().invoke(app, ["train", str(table), "-t", "heat_all", "--ensemble", "0", "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--ensemble must be >= 1" in r.output


def test_parallel_members_equal_the_sequential_ones(ensemble, tmp_path) -> None:
    """``--ensemble-jobs 2``: members in two spawned processes, the same split, seeds and results."""
    table, res = ensemble
    par = train_ensemble(small_config(table, tmp_path / "par", ensemble=3, ensemble_jobs=2, split="0.5,0.25,0.25"))
    for k in range(3):
        seq_dir, par_dir = res.run_dir / f"member-{k}", par.run_dir / f"member-{k}"
        assert json.loads((par_dir / "split.json").read_text()) == json.loads((seq_dir / "split.json").read_text())
        a, b = pd.read_csv(seq_dir / "predictions.csv"), pd.read_csv(par_dir / "predictions.csv")
        assert a["id"].tolist() == b["id"].tolist()
        np.testing.assert_allclose(b["predicted heat_all"], a["predicted heat_all"], rtol=1e-5, atol=1e-6)
    assert par.metrics["test"] == pytest.approx(res.metrics["test"], rel=1e-4)


def test_a_failing_member_stops_the_parallel_ensemble(tmp_path) -> None:
    """Member 0 fails before its split exists: the error is raised, nothing waits for it."""
    table = write_jsonl(tmp_path / "perov8.jsonl", perovskite_rows(8))
    cfg = small_config(table, tmp_path / "bad", ensemble=2, ensemble_jobs=2, targets=["no_such_label"])
    with pytest.raises(Exception, match="no_such_label"):
        train_ensemble(cfg)
    assert not (tmp_path / "bad" / "member-1").exists()
