"""Checkpoints of older releases keep working: the shipped models and users' runs written before
the encoder/readout split (format 1) load and predict what the code that wrote them predicted.

The fixtures in ``tests/fixtures`` were written by that code (``tests/fixtures/make_format1.py``):
a tiny per-site and a tiny graph-level CGCNN run's ``best.ckpt``, with that code's predictions
for three structures, and the shipped models' predictions for the bundled examples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

import crystalgnn
from crystalgnn.data.examples import examples_dir
from crystalgnn.data.readers import load_source, read_objects
from crystalgnn.prediction import Predictions, Predictor, SitePredictions
from crystalgnn.pretrained import PRETRAINED_DIR
from crystalgnn.training.checkpoints import (
    CheckpointError,
    format_version,
    load_task,
    migrate,
    read_checkpoint,
    save_task,
)
from crystalgnn.training.migration import FORMAT_VERSION

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHIPPED = sorted(p.stem for p in PRETRAINED_DIR.glob("*.ckpt"))
# the models shipped before the encoder/readout split; later ones are written in the current format
SHIPPED_FORMAT1 = sorted(json.loads((FIXTURES / "shipped_format1.json").read_text())["models"])

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def examples():
    return load_source(str(examples_dir()), show_progress=False)


def _first_column(values: np.ndarray) -> np.ndarray:
    return values if values.ndim == 1 else values[:, 0]


# ----------------------------------------------------------------------------- shipped models
def test_shipped_models_are_format_1_or_current() -> None:
    assert len(SHIPPED_FORMAT1) >= 6 and set(SHIPPED_FORMAT1) <= set(SHIPPED)
    for name in SHIPPED:
        want = 1 if name in SHIPPED_FORMAT1 else FORMAT_VERSION
        assert format_version(read_checkpoint(PRETRAINED_DIR / f"{name}.ckpt")) == want, name


@pytest.mark.parametrize("name", sorted(set(SHIPPED) - set(SHIPPED_FORMAT1)))
def test_current_format_shipped_model_predicts(name, examples) -> None:
    pred = Predictor.load(name)
    assert pred.source.endswith(f"{name}.ckpt") and "migrated_from_format" not in pred.task.hparams.extra
    res = pred.predict(examples, show_progress=False, n_jobs=1)
    assert not res.rejected and np.isfinite(_first_column(res.values)).all()
    if name == "electrode-voltage":  # the bundled Li cathodes work at 3.4-4.1 V (experiment)
        assert ((res.values >= 3.0) & (res.values <= 4.5)).all(), dict(zip(res.ids, res.values, strict=True))


@pytest.mark.parametrize("name", SHIPPED_FORMAT1)
def test_shipped_model_predicts_the_bundled_examples(name, examples) -> None:
    pred = Predictor.load(name)
    assert pred.source.endswith(f"{name}.ckpt") and pred.model_name == "cgcnn"
    assert pred.task.hparams.extra["migrated_from_format"] == 1
    res = pred.predict(examples, show_progress=False, n_jobs=1)
    assert isinstance(res, Predictions) and not res.rejected
    assert res.ids == list(examples.ids)
    values = _first_column(res.values)
    assert np.isfinite(values).all()
    # what the release that wrote the file predicted
    ref = json.loads((FIXTURES / "shipped_format1.json").read_text())["models"][name]
    assert pred.kind == ref["kind"] and pred.targets == ref["targets"]
    want = np.array([ref["predictions"][i] for i in res.ids])
    np.testing.assert_allclose(values, want, rtol=1e-6, atol=1e-6)
    if pred.kind == "classification":
        assert ((values >= 0) & (values <= 1)).all()


def test_load_model_predicts_a_pymatgen_structure() -> None:
    """The Python API example: ``crystalgnn.load_model("mp-band-gap").predict([structure])``."""
    s = Structure(Lattice.cubic(5.64), ["Na", "Cl"] * 4, [
        [0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0], [0.5, 0, 0.5], [0, 0, 0.5], [0, 0.5, 0.5], [0.5, 0.5, 0.5],
    ])  # fmt: skip
    model = crystalgnn.load_model("mp-band-gap")
    assert isinstance(model, Predictor) and model.targets == ["band_gap"] and model.units["band_gap"] == "eV"
    preds = model.predict([s])
    assert isinstance(preds, Predictions) and len(preds.ids) == 1 and not preds.rejected
    assert preds.values.shape == (1, 1) and np.isfinite(preds.values).all()
    # one structure alone, and the same structure as a dataset, agree
    again = model.predict(read_objects([s]))
    np.testing.assert_array_equal(again.values, preds.values)
    frame = preds.to_frame()
    assert frame.columns[0] == "id" and len(frame) == 1
    assert frame["prediction"][0] == preds.values[0, 0]


# ----------------------------------------------------------------------------- users' runs
def _fixture(kind: str) -> tuple[Path, dict]:
    return FIXTURES / f"{kind}_format1.ckpt", json.loads((FIXTURES / f"{kind}_format1.json").read_text())


def _structures(ref: dict):
    ids = list(ref["structures"])
    return read_objects([Structure.from_dict(ref["structures"][i]) for i in ids], ids=ids)


@pytest.mark.parametrize("kind", ["site", "graph"])
def test_format_1_run_checkpoint_predicts_as_before(kind, tmp_path) -> None:
    path, ref = _fixture(kind)
    assert path.stat().st_size < 200_000
    raw = read_checkpoint(path)
    assert format_version(raw) == 1
    pred = Predictor.load(path)
    assert pred.kind == ref["kind"] == ("site" if kind == "site" else "regression")
    assert pred.targets == ref["targets"]
    assert pred.level == ("site" if kind == "site" else "graph")
    assert pred.task.model.level == pred.level
    res = pred.predict(_structures(ref), show_progress=False, n_jobs=1)
    assert isinstance(res, SitePredictions if kind == "site" else Predictions) and not res.rejected
    assert res.ids == list(ref["predictions"])
    for i, v in zip(res.ids, res.values, strict=True):
        want = np.asarray(ref["predictions"][i])
        assert np.asarray(v).shape == want.shape  # per site: one value per atom
        np.testing.assert_allclose(v, want, rtol=0, atol=1e-6)
    # saved again, the checkpoint is in the current format and predicts the same
    resaved = save_task(pred.task, tmp_path / "resaved.ckpt")
    assert format_version(read_checkpoint(resaved)) == FORMAT_VERSION
    again = Predictor.load(resaved).predict(_structures(ref), show_progress=False, n_jobs=1)
    for a, b in zip(again.values, res.values, strict=True):
        np.testing.assert_array_equal(a, b)


def test_migration_of_a_format_1_per_site_checkpoint() -> None:
    path, _ = _fixture("site")
    raw = read_checkpoint(path)
    hp = raw["hyper_parameters"]
    assert "site_target" in hp and any(k.startswith("model.backbone.") for k in raw["state_dict"])
    keys_before = list(raw["state_dict"])
    new = migrate(raw)
    assert list(raw["state_dict"]) == keys_before and raw["hyper_parameters"] is hp  # input untouched
    assert format_version(new) == FORMAT_VERSION and "crystalgnn_site_format_version" not in new
    nh = new["hyper_parameters"]
    assert nh["readout"] == "site" and nh["target"]["level"] == "site" and nh["target"]["names"] == ["q"]
    assert nh["target"]["mean"] == [hp["normalizer"]["mean"]] and nh["target"]["std"] == [hp["normalizer"]["std"]]
    assert nh["readout_options"] == {"site_head_hidden": hp["head_hidden"], "site_head_layers": hp["head_layers"]}
    assert "max_neighbors" in nh["model_config"] and "max_num_nbr" not in nh["model_config"]
    state = new["state_dict"]
    assert all(k.startswith(("model.encoder.", "model.readout.")) or k in ("y_mean", "y_std") for k in state)
    # the former backbone's unused graph head is dropped; the per-site head is the readout
    assert not any(".conv_to_fc." in k for k in state if k.startswith("model.encoder."))
    assert torch.equal(state["model.readout.mlp.conv_to_fc.weight"], raw["state_dict"]["model.head.fc_in.weight"])
    assert torch.equal(state["model.encoder.embedding.weight"], raw["state_dict"]["model.backbone.embedding.weight"])
    task = load_task(path)
    assert float(task.y_mean[0]) == pytest.approx(hp["normalizer"]["mean"])
    assert float(task.y_std[0]) == pytest.approx(hp["normalizer"]["std"])


def test_migration_of_a_format_1_graph_checkpoint() -> None:
    path, _ = _fixture("graph")
    raw = read_checkpoint(path)
    hp = raw["hyper_parameters"]
    new = migrate(raw)
    nh = new["hyper_parameters"]
    assert nh["readout"] == "graph" and nh["target"]["names"] == hp["targets"] == ["v"]
    assert nh["target"]["kind"] == "regression" and nh["target"]["mean"] == hp["normalizer"]["mean"]
    old, state = raw["state_dict"], new["state_dict"]
    assert len(state) == len(old)  # renamed one to one
    assert torch.equal(state["model.readout.mlp.fc_out.weight"], old["model.fc_out.weight"])
    assert torch.equal(state["model.encoder.convs.0.fc_full.weight"], old["model.convs.0.fc_full.weight"])
    assert torch.equal(
        state["model.encoder.atom_features.table"].nan_to_num(-1), old["model.atom_features.table"].nan_to_num(-1)
    )


def test_unreadable_and_newer_checkpoints_are_refused(tmp_path) -> None:
    path, _ = _fixture("graph")
    ckpt = read_checkpoint(path)
    newer = tmp_path / "newer.ckpt"
    torch.save({**ckpt, "crystalgnn_format_version": FORMAT_VERSION + 1}, newer)
    with pytest.raises(CheckpointError, match="newer than this crystalgnn"):
        Predictor.load(newer)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable crystalgnn checkpoint"):
        Predictor.load(junk)
    other = tmp_path / "other.ckpt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="a bare state_dict"):
        read_checkpoint(other)
