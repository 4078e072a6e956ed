"""The exit-code rule of ``predict``, ``evaluate``, ``graphs build`` and ``data inspect``: exit 0
when every usable entry was processed and the rejected ones were named; 1 when nothing was
usable; 2 with ``--strict`` when anything was rejected. Also: non-finite predictions are one
warning line, ``--structures-out`` never writes two ids to one file, and nothing is written
under the home folder (matplotlib's files go to the crystalgnn cache folder).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.training.checkpoints import load_task, read_checkpoint, save_task
from tinydata import perovskite_rows, small_structures, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args: Any) -> tuple[Any, str]:
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("exit-codes")
    out = {"dir": d, "model": save_task(load_task(FIXTURES / "graph_format1.ckpt"), d / "model.ckpt")}
    for k, s in small_structures().items():
        out[k] = d / f"{k}.cif"
        s.to(filename=str(out[k]))
    out["empty"] = d / "empty.cif"
    out["empty"].write_text("")
    rows = [{"id": k, "cif": s.to(fmt="cif"), "v": 17.0} for k, s in small_structures().items()]
    rows.append({"id": "broken", "cif": "data_x\nnot a cif\n", "v": 1.0})
    out["labelled"] = write_jsonl(d / "labelled.jsonl", rows, columns=("id", "cif", "v"))
    return out


def test_predict_usable_and_unusable_files(files, tmp_path) -> None:
    rej = tmp_path / "rejected.csv"
    r, text = invoke("predict", files["model"], files["nacl"], files["empty"], "--rejected", rej)
    assert r.exit_code == 0, r.output
    assert "nacl" in text and "1 inputs rejected" in text and "empty.cif" in text and "empty file" in text
    assert [row["id"] for row in csv.DictReader(rej.open())] == ["empty.cif"]
    r, text = invoke("predict", files["model"], files["empty"])  # nothing usable
    assert r.exit_code == 1 and "error:" in text and "empty file" in text
    r, text = invoke("predict", files["model"], files["nacl"], files["empty"], "--strict")
    assert r.exit_code == 2 and "nacl" in text and "--strict: 1 inputs rejected" in text
    r, _ = invoke("predict", files["model"], files["nacl"], files["si"], "--strict")
    assert r.exit_code == 0, r.output


def test_evaluate_names_rejections_and_strict(files, tmp_path) -> None:
    r, text = invoke("evaluate", files["model"], files["labelled"], "--out", tmp_path / "a")
    assert r.exit_code == 0, r.output
    assert "1 entries rejected" in text and "broken" in text and "unparsable CIF" in text
    assert [row["id"] for row in csv.DictReader((tmp_path / "a" / "rejected.csv").open())] == ["broken"]
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["n_rejected"] == 1
    r, text = invoke("evaluate", files["model"], files["labelled"], "--out", tmp_path / "b", "--strict")
    assert r.exit_code == 2 and "--strict: 1 entries rejected" in text
    assert (tmp_path / "b" / "metrics.json").is_file()  # evaluated first, then the exit code


@pytest.mark.parametrize("command", [("data", "inspect"), ("graphs", "build", "--no-cache", "-j", "1")])
def test_inspect_and_graphs_build_follow_the_rule(command, files) -> None:
    r, text = invoke(*command, files["nacl"], files["empty"])
    assert r.exit_code == 0 and "empty.cif" in text, r.output
    r, _ = invoke(*command, files["empty"])
    assert r.exit_code == 1
    r, _ = invoke(*command, files["nacl"], files["empty"], "--strict")
    assert r.exit_code == 2


def test_nan_weights_print_one_warning_line(files) -> None:
    ckpt = read_checkpoint(files["model"])
    for k, v in ckpt["state_dict"].items():
        if v.is_floating_point() and "atom_features" not in k:
            v.fill_(float("nan"))
    path = files["dir"] / "nan.ckpt"
    torch.save(ckpt, path)
    r = CliRunner().invoke(app, ["predict", str(path), str(files["nacl"]), str(files["si"])])
    assert r.exit_code == 0, r.output
    warned = [ln for ln in r.output.splitlines() if "not finite" in ln]
    assert warned == ["warning: 2 of 2 predictions are not finite (NaN or infinite): the model's weights may be broken"]


def test_structures_out_gives_every_id_its_own_file(tmp_path) -> None:
    s = small_structures()["nacl"]
    ids = ["a/b", "a_b", "a:b", "A_B", "site_property", "index"]
    table = tmp_path / "ids.jsonl"
    table.write_text("".join(json.dumps({"id": i, "cif": s.to(fmt="cif")}) + "\n" for i in ids))
    out = tmp_path / "structures"
    r, text = invoke("predict", FIXTURES / "site_format1.ckpt", table, "--structures-out", out)
    assert r.exit_code == 0, r.output
    assert f"wrote {len(ids)} structures" in text and "index.csv" in text
    index = list(csv.DictReader((out / "index.csv").open()))
    assert [row["id"] for row in index] == ids
    names = [row["json"] for row in index] + [row["cif"] for row in index]
    assert len({n.lower() for n in names}) == 2 * len(ids)  # distinct, also case-insensitively
    assert index[1]["json"] == "a_b.json"  # a safe id keeps its name
    assert len(list(out.glob("*.json"))) == len(ids) + 1 and len(list(out.glob("*.cif"))) == len(ids)
    assert json.loads((out / "site_property.json").read_text())["n_structures"] == len(ids)


def _run(code: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("CRYSTALGNN_CACHE_DIR", "MPLCONFIGDIR")}
    src = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    env = {**base, "HOME": str(home), "PYTHONPATH": src, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)


def _under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_predict_writes_nothing_under_home(files, tmp_path) -> None:
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    code = "from crystalgnn.cli import app; app()"
    p = _run(code.replace("app()", f"app(['predict', {str(files['model'])!r}, {str(files['nacl'])!r}])"), home,
             CRYSTALGNN_CACHE_DIR=str(cache))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert _under(home) == []
    assert (cache / "matplotlib").is_dir()  # imported by Lightning's torchmetrics: its files stay in the cache


def test_train_and_evaluate_with_cache_dir_write_nothing_under_home(tmp_path) -> None:
    """With ``--cache-dir`` and no ``CRYSTALGNN_CACHE_DIR``, train keeps matplotlib's files (and
    the graph and atom-feature caches) in the cache dir and nothing is written under the home
    folder. (``evaluate`` alone, in its own process, puts matplotlib's files in the default
    cache folder, ``~/.cache/crystalgnn/matplotlib``.)"""
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    table = write_jsonl(tmp_path / "t.jsonl", perovskite_rows(12))
    run = tmp_path / "run"
    train = ["train", str(table), "-t", "heat_all", "--epochs", "1", "--batch-size", "8", "-o", str(run),
             "-m", "atom_fea_len=8", "-m", "n_conv=1", "-j", "1", "--threads", "1", "--split", "0.6,0.2,0.2",
             "--no-progress", "--cache-dir", str(cache)]  # fmt: skip
    code = (
        "from typer.testing import CliRunner; from crystalgnn.cli import app; import sys\n"
        f"r = CliRunner().invoke(app, {train!r}); print(r.output); assert r.exit_code == 0, r.output\n"
        f"r = CliRunner().invoke(app, ['evaluate', {str(run)!r}, {str(table)!r}, '-o', {str(tmp_path / 'ev')!r}])\n"
        "print(r.output); assert r.exit_code == 0, r.output\n"
    )
    p = _run(code, home)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (cache / "matplotlib").is_dir() and (tmp_path / "ev" / "parity.png").is_file()
    assert _under(home) == []
