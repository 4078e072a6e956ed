"""Every wrong kind of checkpoint through ``crystalgnn predict`` and ``crystalgnn evaluate``:
one line ``error: <file>: <why>``, no traceback, exit 1, and nothing run from a pickle.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.training.checkpoints import load_task, read_checkpoint, save_task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EMB = "model.encoder.embedding.weight"
pytestmark = pytest.mark.usefixtures("one_thread")


class Evil:
    def __reduce__(self) -> Any:
        return (os.system, ("echo pwned-by-checkpoint",))


def _cfg(**kw: Any) -> Any:
    return lambda c: c["hyper_parameters"]["model_config"].update(kw)


#: file name -> (how a good crystalgnn checkpoint is spoilt, what the error line says)
HOSTILE: dict[str, tuple[Any, str]] = {
    "bare.ckpt": (lambda c: c["state_dict"], "a bare state_dict"),
    "no-hp.ckpt": (lambda c: {"state_dict": c["state_dict"]}, "no hyper_parameters"),
    "missing-hp.ckpt": (lambda c: c["hyper_parameters"].pop("model_config") and None, "missing: model_config"),
    "unknown-model.ckpt": (lambda c: c["hyper_parameters"].update(model_name="gpt"), "unknown model 'gpt'"),
    "shapes.ckpt": (_cfg(atom_fea_len=7), "the weights do not fit the settings"),
    "future.ckpt": (lambda c: c.update(crystalgnn_format_version=99), "format 99 is newer"),
    "huge.ckpt": (_cfg(atom_fea_len=10**6), "the settings give (1000000, 92)"),
    "pickle.ckpt": (lambda c: c.update(extra=Evil()), "pickled object of type posix.system"),
    "list.ckpt": (lambda c: [1, 2, 3], "not a crystalgnn checkpoint (it holds list)"),
}


def _original(path: Path, raw: dict[str, Any], **args: Any) -> Path:
    state = {k[len("model.") :]: v for k, v in raw["state_dict"].items()
             if k.startswith("model.") and not k.startswith(("model.atom_features", "model.expansion"))}  # fmt: skip
    base = {"atom_fea_len": 8, "h_fea_len": 8, "n_conv": 1, "n_h": 1, "task": "regression"}
    torch.save({"state_dict": state, "args": {**base, **args}, "normalizer": {"mean": 0.0, "std": 1.0}}, path)
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, structures_table: Path) -> dict[str, tuple[Path, str]]:
    d = tmp_path_factory.mktemp("hostile")
    good = save_task(load_task(FIXTURES / "graph_format1.ckpt"), d / "good.ckpt")
    out = {}
    for name, (change, says) in HOSTILE.items():
        ckpt = copy.deepcopy(read_checkpoint(good))
        new = change(ckpt)
        torch.save(ckpt if new is None else new, d / name)
        out[name] = (d / name, says)
    junk = d / "junk.ckpt"
    junk.write_bytes(b"\x80\x04 this is not a checkpoint")
    out["junk.ckpt"] = (junk, "not a readable crystalgnn checkpoint")
    raw = read_checkpoint(FIXTURES / "graph_format1.ckpt")
    out["args.pth.tar"] = (_original(d / "args.pth.tar", raw, atom_fea_len=64), "do not fit the checkpoint's args")
    out["bad-args.pth.tar"] = (_original(d / "bad-args.pth.tar", raw, n_conv="three"), "args n_conv='three'")
    return out


@pytest.fixture(scope="module")
def structures_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tinydata import small_structures

    path = tmp_path_factory.mktemp("hostile-data") / "data.jsonl"
    with path.open("w") as f:
        for k, s in small_structures().items():
            f.write(json.dumps({"id": k, "cif": s.to(fmt="cif"), "v": 17.0}) + "\n")
    return path


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("name", [*sorted(HOSTILE), "junk.ckpt", "args.pth.tar", "bad-args.pth.tar"])
def test_hostile_checkpoint_ends_in_one_line_error(command, name, hostile, structures_table, tmp_path, capfd) -> None:
    path, says = hostile[name]
    extra = ["--out", str(tmp_path / "ev")] if command == "evaluate" else []
    r = CliRunner().invoke(app, [command, str(path), str(structures_table), *extra])
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), r.output
    assert says in lines[0] and "Traceback" not in r.output and "weights_only" not in r.output
    assert "pwned" not in capfd.readouterr().out
    assert not (tmp_path / "ev").exists()
