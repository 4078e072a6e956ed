"""``crystalgnn train`` end to end in a subprocess: quiet output, SIGTERM and resume (tiny runs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crystalgnn.cli import app
from tinydata import perovskite_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    "OMP_NUM_THREADS": "1",
}
pytestmark = pytest.mark.usefixtures("one_thread")

#: what Lightning prints that says nothing to a user of the CLI
NOISE = ("GPU available", "TPU available", "HPU available", "Tip:", "litlogger", "litmodels", "LightningDeprecationWarning",
         "PossibleUserWarning", "num_workers", "LeafSpec", "Trainer.fit` stopped", "Warning")  # fmt: skip


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("cli-train") / "perov.jsonl", perovskite_rows(40))


def train_args(table: Path, out: Path, epochs: int) -> list[str]:
    return [
        "train", str(table), "-t", "heat_all", "--epochs", str(epochs), "--batch-size", "8", "-o", str(out),
        "--optimizer", "adam", "--lr", "0.003", "-m", "atom_fea_len=16", "-m", "n_conv=1", "-j", "1",
        "--threads", "1", "--split", "0.6,0.2,0.2",
    ]  # fmt: skip


def test_train_prints_no_lightning_chatter(table: Path, tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "crystalgnn", *train_args(table, tmp_path / "run", 2), "--no-progress"],
        capture_output=True, text=True, timeout=600, env=ENV,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = p.stdout + p.stderr
    for noise in NOISE:
        assert noise not in out, (noise, out)
    assert "done" in p.stdout and json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_run"] == 2


def test_sigterm_exits_non_zero_and_the_same_command_resumes(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    epochs = 12
    args = [*train_args(table, out, epochs), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "crystalgnn", *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not (out / "checkpoints" / "last.ckpt").is_file():
            time.sleep(0.02)
        assert proc.poll() is None, f"training ended before SIGTERM: {proc.communicate()[1][-2000:]}"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, (proc.returncode, stderr)
    assert "SIGTERM" in stderr and "run the same command again to resume" in stderr
    assert "Traceback" not in stderr and "done" not in stdout
    assert not (out / "metrics.json").exists()
    # the same command again resumes from last.ckpt and finishes, without Lightning's warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert not [w for w in caught if "lightning" in w.filename], [str(w.message) for w in caught]
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == epochs
