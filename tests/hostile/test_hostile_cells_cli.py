"""Hostile cells through the CLI, each command in a subprocess (120 s timeout): a perovskite with
c = 10^6 Å (SIGFPE in vesin before the guard) and a near-degenerate cell (alpha = beta = gamma =
120 degrees, volume ~2e-6 Å^3: the neighbour search hung) beside three good perovskites. Every
command exits 0 without a traceback, names both bad cells with their reason and processes the
good ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from crystalgnn.graphs.builder import PARALLEL_MIN
from tinydata import perovskite_rows, write_cif_folder, write_jsonl

ROOT = Path(__file__).resolve().parents[2]
BAD = ("long_axis", "near_degenerate")
SRTIO3 = (["Sr", "Ti", "O", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Every command's exit code and output; the commands run at the same time (most of each
    is Python starting and importing torch and pymatgen)."""
    folder = tmp_path_factory.mktemp("hostile") / "cells"
    write_cif_folder(folder, perovskite_rows(3))
    Structure(Lattice.from_parameters(3.905, 3.905, 1e6, 90, 90, 90), *SRTIO3).to(
        filename=str(folder / "long_axis.cif")
    )
    Structure(Lattice.from_parameters(4, 4, 4, 120, 120, 120), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]).to(
        filename=str(folder / "near_degenerate.cif")
    )
    # the parallel build needs PARALLEL_MIN structures: 400 more perovskites in a table
    more = write_jsonl(folder.parent / "more.jsonl", perovskite_rows(3 + N_MORE)[3:])
    commands = {
        "inspect": ["data", "inspect", folder],
        "build-1": ["graphs", "build", folder, "--no-cache", "-j", 1],
        "build-2": ["graphs", "build", folder, more, "--no-cache", "-j", 2],
        "predict": ["predict", "mp-band-gap", folder],
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "crystalgnn", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=folder.parent,
        )
        for name, args in commands.items()
    }
    out = {}
    for name, proc in procs.items():
        try:
            text, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            text = proc.communicate()[0] + "\n[killed after 120 s]"
        out[name] = (proc.returncode, text)
    return out


N_MORE = PARALLEL_MIN


def result(outputs: dict[str, tuple[int, str]], name: str) -> str:
    """A command's output (whitespace collapsed: rich wraps long lines) once it exited 0 without a
    traceback and named both bad cells with their reason."""
    code, text = outputs[name]
    assert code == 0, text
    assert "Traceback" not in text and "Fatal Python error" not in text, text
    out = " ".join(text.split())
    for bad in BAD:
        assert f"{bad} (" in out and f"{bad}.cif" in out, out
    assert out.count("degenerate cell: its shortest height") >= 2, out
    return out


def test_data_inspect(outputs) -> None:
    out = result(outputs, "inspect")
    assert "3 usable structures of 5 read, 2 problems" in out, out


def test_graphs_build_one_process(outputs) -> None:
    out = result(outputs, "build-1")
    assert "3 graphs" in out and "(0 from cache, 3 built)" in out, out
    assert "2 entries rejected" in out and "degenerate cell: 2" in out, out


def test_graphs_build_worker_processes(outputs) -> None:
    out = result(outputs, "build-2")
    n_good = 3 + N_MORE
    assert n_good + 2 >= PARALLEL_MIN  # so the builder uses its worker processes
    assert f"{n_good} graphs" in out and f"(0 from cache, {n_good} built)" in out, out
    assert "2 entries rejected" in out and "degenerate cell: 2" in out, out


def test_predict(outputs) -> None:
    out = result(outputs, "predict")
    assert all(r["id"] in out for r in perovskite_rows(3)), out
    assert "2 inputs rejected" in out, out


def test_train_and_evaluate_keep_the_good_entries(tmp_path: Path) -> None:
    """A CGCNN folder (id_prop.csv) whose labelled entries include both hostile cells: ``train``
    (1 tiny epoch) and ``evaluate`` on its run folder exit 0, name both cells and use the rest."""
    folder = tmp_path / "labelled"
    rows = perovskite_rows(9)
    write_cif_folder(folder, rows)
    Structure(Lattice.from_parameters(3.905, 3.905, 1e6, 90, 90, 90), *SRTIO3).to(
        filename=str(folder / "long_axis.cif")
    )
    Structure(Lattice.from_parameters(4, 4, 4, 120, 120, 120), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]).to(
        filename=str(folder / "near_degenerate.cif")
    )
    lines = [f"{r['id']},{r['heat_all']}" for r in rows] + ["long_axis,1.0", "near_degenerate,2.0"]
    (folder / "id_prop.csv").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}

    def run(*args: object) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "crystalgnn", *map(str, args)],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
        )  # fmt: skip
        text = proc.stdout + proc.stderr
        assert proc.returncode == 0 and "Traceback" not in text, text
        return " ".join(text.split())

    out = run("train", folder, "--epochs", 1, "--batch-size", 4, "-m", "atom_fea_len=8", "-m", "n_conv=1",
              "--split", "0.34,0.33,0.33", "--no-progress", "--cache-dir", tmp_path / "cache", "--out", tmp_path / "run")  # fmt: skip
    rejected = (tmp_path / "run" / "rejected.csv").read_text()
    assert all(bad in rejected for bad in BAD) and rejected.count("degenerate cell") == 2, rejected
    assert "2 entries rejected (degenerate cell: 2)" in out and all(f"- {bad} (" in out for bad in BAD), out
    out = run("evaluate", tmp_path / "run", folder, "--out", tmp_path / "eval")
    assert all(f"{bad}" in out for bad in BAD), out
    import json

    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]["n"] == 9
