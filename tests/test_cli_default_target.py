"""A CGCNN folder (``id_prop.csv`` with one unnamed target) trains, benchmarks and evaluates
without naming the target, as the original ``main.py DIR`` does; with several labels the error
lists them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crystalgnn.cli import app
from tinydata import PEROVSKITES, perovskite_rows, write_cif_folder

pytestmark = pytest.mark.skipif(not PEROVSKITES.is_file(), reason="needs ../shared/data")


def _cgcnn_folder(root: Path, n: int = 40, columns: int = 1) -> Path:
    rows = perovskite_rows(n)
    folder = write_cif_folder(root / "cgcnn_data", rows)
    lines = [",".join([r["id"], *[str(r["heat_all"] + k) for k in range(columns)]]) for r in rows]
    (folder / "id_prop.csv").write_text("\n".join(lines) + "\n")
    return folder


def invoke(*args: object) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r.exit_code, " ".join(r.output.split())


def test_train_benchmark_evaluate_without_target(tmp_path: Path) -> None:
    folder = _cgcnn_folder(tmp_path)
    run = tmp_path / "run"
    code, text = invoke("train", folder, "--epochs", 1, "--batch-size", 16, "--out", run, "--no-progress",
                        "--cache-dir", tmp_path / "cache")  # fmt: skip
    assert code == 0, text
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["targets"] == ["target"] and metrics["n_test"] > 0
    code, text = invoke("evaluate", run, folder, "--out", tmp_path / "eval")
    assert code == 0, text
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]["n"] == 40
    code, text = invoke("benchmark", folder, "--models", "mean,per-element", "--repeats", 1, "--out", tmp_path / "bench",
                        "--no-progress")  # fmt: skip
    assert code == 0, text
    assert "target" in (tmp_path / "bench" / "results.csv").read_text()


def test_several_labels_are_listed(tmp_path: Path) -> None:
    folder = _cgcnn_folder(tmp_path, n=12, columns=2)
    code, text = invoke("train", folder, "--epochs", 1, "--out", tmp_path / "run")
    assert code != 0 and "several labels: target_0, target_1" in text and "--target" in text
    assert not (tmp_path / "run").exists()  # nothing half-made left behind
    code, text = invoke("benchmark", folder, "--models", "mean", "--out", tmp_path / "bench")
    assert code != 0 and "several labels: target_0, target_1" in text
