"""Checkpoints of the wrong kind are refused by one validation step, with one line naming the
file and the problem, before any model is built: bare state_dicts, missing hyper-parameters,
unknown models, mismatched shapes, future formats, pickled objects, huge declared dimensions,
original ``.pth.tar`` files whose args do not fit their weights. All-NaN weights predict with a
warning; resuming checks the format and the shapes too.
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from crystalgnn.data.readers import read_objects
from crystalgnn.models.registry import REGISTRY
from crystalgnn.prediction import NonFiniteWarning, Predictor
from crystalgnn.prediction.cgcnn_import import import_cgcnn_task
from crystalgnn.training.checkpoints import (
    CheckpointError,
    check_resume_point,
    expected_shapes,
    load_task,
    read_checkpoint,
    save_task,
    validate_checkpoint,
)
from crystalgnn.training.migration import FORMAT_VERSION
from crystalgnn.training.task import CrystalTask

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EMB = "model.encoder.embedding.weight"
pytestmark = pytest.mark.usefixtures("one_thread")


class Evil:
    """Unpickling it would run a shell command."""

    def __reduce__(self) -> Any:
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny graph-level CGCNN checkpoint in this release's format."""
    return save_task(load_task(FIXTURES / "graph_format1.ckpt"), tmp_path_factory.mktemp("ckpt") / "good.ckpt")


def _variant(good: Path, tmp: Path, name: str, change: Any) -> Path:
    ckpt = copy.deepcopy(read_checkpoint(good))
    out = change(ckpt)
    path = tmp / f"{name}.ckpt"
    torch.save(ckpt if out is None else out, path)
    return path


def _config(**kw: Any) -> Any:
    def change(c: dict[str, Any]) -> None:
        c["hyper_parameters"]["model_config"].update(kw)

    return change


def _expanded(c: dict[str, Any]) -> None:
    """A weight whose shape is backed by one stored number (a stride-0 view)."""
    w = c["state_dict"]["model.encoder.embedding.weight"]
    c["state_dict"]["model.encoder.embedding.weight"] = torch.zeros(1).expand(*w.shape)


#: name -> (how the good checkpoint is spoilt, what the one-line error says)
WRONG_KINDS: dict[str, tuple[Any, str]] = {
    "bare-state-dict": (lambda c: c["state_dict"], "a bare state_dict"),
    "no-hyper-parameters": (lambda c: {"state_dict": c["state_dict"]}, "no hyper_parameters"),
    "hp-not-a-mapping": (lambda c: c.update(hyper_parameters=[1, 2]), "hyper_parameters is a list"),
    "missing-hyper-parameter": (lambda c: c["hyper_parameters"].pop("target") and None, "missing: target"),
    "unknown-model": (lambda c: c["hyper_parameters"].update(model_name="nosuch"), "unknown model 'nosuch'"),
    "mismatched-shapes": (_config(atom_fea_len=7), "has shape (8, 92) in the file, the settings give (7, 92)"),
    "future-format": (lambda c: c.update(crystalgnn_format_version=99), "format 99 is newer than this crystalgnn"),
    "pickled-object": (lambda c: c.update(extra=Evil()), "pickled object of type posix.system"),
    "not-a-tensor": (lambda c: c["state_dict"].update(junk="x"), "not named tensors: junk"),
    "expanded-tensor": (_expanded, "but the file holds 4e-06 MB"),
    "many-layers": (_config(n_conv=10**6), "settings do not fit the weights"),
}


def _one_line(exc: BaseException, path: Path) -> str:
    text = str(exc)
    assert "\n" not in text and text.startswith(str(path)), text
    assert "weights_only" not in text and "Traceback" not in text
    return text


@pytest.mark.parametrize("kind", sorted(WRONG_KINDS))
def test_wrong_kind_of_checkpoint_is_refused_in_one_line(kind, good, tmp_path) -> None:
    change, says = WRONG_KINDS[kind]
    path = _variant(good, tmp_path, kind, change)
    with pytest.raises(CheckpointError) as info:
        Predictor.load(path)
    assert says in _one_line(info.value, path)


def test_pickled_object_is_named_and_never_run(tmp_path, capfd) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match=re.escape("type posix.system, which crystalgnn does not load")):
        read_checkpoint(path)
    assert "pwned" not in capfd.readouterr().out


def _peak_kib() -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))  # type: ignore[union-attr]


def test_huge_declared_dimensions_fail_before_any_allocation(good, tmp_path) -> None:
    """atom_fea_len=10**6 with 8-wide weights: a real model would need ~370 MB for its
    embedding alone and 16 TB for its convolution; the check lays it out on the meta device."""
    path = _variant(good, tmp_path, "huge", _config(atom_fea_len=10**6, h_fea_len=10**6))
    assert path.stat().st_size < 100_000
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (Linux)
        before = _peak_kib()
    except OSError:
        before = None
    with pytest.raises(CheckpointError) as info:
        load_task(path)
    assert "the settings give (1000000, 92)" in _one_line(info.value, path)
    if before is not None:
        assert _peak_kib() - before < 200 * 1024  # KiB


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_meta_layout_matches_the_real_model(name, table) -> None:
    """The shapes the validation expects are those of the model really built, for every model."""
    spec = REGISTRY[name]
    cfg = spec.config_cls(**({"n_features": 12} if name == "soap-mlp" else {}))
    level = "site" if spec.site_only else "graph"
    hp = {"model_name": name, "model_config": cfg.to_dict(), "graph_config": {}, "readout": level,
          "target": {"names": ["x"], "level": level, "kind": "regression"}}  # fmt: skip
    real = CrystalTask(**hp, atom_table=table).state_dict()
    assert expected_shapes(hp, table) == {k: tuple(v.shape) for k, v in real.items()}


def test_validation_returns_the_current_format(good) -> None:
    ckpt = validate_checkpoint(read_checkpoint(FIXTURES / "graph_format1.ckpt"))
    assert ckpt["crystalgnn_format_version"] == FORMAT_VERSION
    assert validate_checkpoint(read_checkpoint(good))["hyper_parameters"]["model_name"] == "cgcnn"


def test_all_nan_weights_predict_with_a_warning(good, tmp_path, structures) -> None:
    def nan_weights(c: dict[str, Any]) -> None:
        for k, v in c["state_dict"].items():
            if v.is_floating_point() and "atom_features" not in k:
                v.fill_(float("nan"))

    pred = Predictor.load(_variant(good, tmp_path, "nan", nan_weights))
    data = read_objects(list(structures.values()), ids=list(structures))
    with pytest.warns(NonFiniteWarning, match=rf"^{len(structures)} of {len(structures)} predictions are not finite"):
        res = pred.predict(data)
    assert np.isnan(res.values).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteWarning)
        Predictor.load(good).predict(data)  # finite: no warning


def test_resume_checks_format_and_shapes(good, tmp_path) -> None:
    task = load_task(good)
    check_resume_point(good, task)  # fits
    future = _variant(good, tmp_path, "future", lambda c: c.update(crystalgnn_format_version=99))
    with pytest.raises(CheckpointError, match="format 99 is newer"):
        check_resume_point(future, task)
    other = _variant(good, tmp_path, "other", lambda c: c["state_dict"].update({EMB: torch.zeros(7, 92)}))
    with pytest.raises(CheckpointError, match="does not fit this run's model: model.encoder.embedding.weight"):
        check_resume_point(other, task)
    # Lightning's hook, for checkpoints loaded by Lightning itself
    raw = read_checkpoint(good)
    with pytest.raises(CheckpointError, match="format 99 is newer"):
        task.on_load_checkpoint({**raw, "crystalgnn_format_version": 99})
    bad = copy.deepcopy(raw)
    bad["state_dict"][EMB] = torch.zeros(7, 92)
    with pytest.raises(CheckpointError, match="does not fit this run's model"):
        task.on_load_checkpoint(bad)
    task.on_load_checkpoint(copy.deepcopy(raw))


# ----------------------------------------------------------------------------- original .pth.tar
def _original(tmp: Path, name: str = "band-gap", **args: Any) -> Path:
    """An original-CGCNN-style file made from the format-1 fixture (whose names are the reference's)."""
    raw = read_checkpoint(FIXTURES / "graph_format1.ckpt")
    state = {k[len("model.") :]: v for k, v in raw["state_dict"].items()
             if k.startswith("model.") and not k.startswith(("model.atom_features", "model.expansion"))}  # fmt: skip
    base = {"atom_fea_len": 8, "h_fea_len": 8, "n_conv": 1, "n_h": 1, "task": "regression"}
    path = tmp / f"{name}.pth.tar"
    torch.save({"state_dict": state, "args": {**base, **args}, "normalizer": {"mean": 1.0, "std": 2.0}}, path)
    return path


def test_original_checkpoint_with_consistent_args_imports(tmp_path) -> None:
    task = import_cgcnn_task(_original(tmp_path))
    assert task.hparams["model_config"]["atom_fea_len"] == 8 and float(task.y_std[0]) == 2.0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ({"atom_fea_len": 64}, "do not fit the checkpoint's args: model.encoder.embedding.weight has shape (8, 92)"),
        ({"n_conv": 3}, "missing (model.encoder.convs.1.fc_full.weight"),
        ({"h_fea_len": "wide"}, "args h_fea_len='wide' is not a positive whole number"),
        ({"n_h": 0}, "args n_h=0 is not a positive whole number"),
        ({"atom_fea_len": 10**6}, "the settings give"),
        ({"task": "ranking"}, "args task='ranking'"),
    ],
)
def test_original_checkpoint_with_inconsistent_args_is_refused(args, says, tmp_path) -> None:
    path = _original(tmp_path, **args)
    with pytest.raises(CheckpointError) as info:
        Predictor.load(path)
    assert says in _one_line(info.value, path)


def test_crystalgnn_checkpoint_named_pth_tar_has_its_format_checked(good, tmp_path) -> None:
    renamed = tmp_path / "mine.pth.tar"
    renamed.write_bytes(good.read_bytes())
    assert Predictor.load(renamed).model_name == "cgcnn"
    future = tmp_path / "future.pth.tar"
    torch.save({**read_checkpoint(good), "crystalgnn_format_version": 99}, future)
    with pytest.raises(CheckpointError, match="format 99 is newer"):
        Predictor.load(future)
