"""Tests for crystalgnn.prediction.cgcnn_import: the original CGCNN's published checkpoints."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.prediction import Predictor
from crystalgnn.prediction.cgcnn_import import ORIGINAL_TARGETS, import_cgcnn_task, load_original_checkpoint
from tinydata import CGCNN_PRETRAINED, read_predictions

REFERENCE = CGCNN_PRETRAINED / "reference_predictions.csv"
MODELS = sorted(ORIGINAL_TARGETS)

pytestmark = [
    pytest.mark.skipif(not REFERENCE.is_file(), reason=f"{REFERENCE} not found"),
    pytest.mark.usefixtures("one_thread"),
]


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(REFERENCE)


@pytest.fixture(scope="module")
def dataset(reference, shared_data):
    from crystalgnn.data.readers import load_source

    ds = load_source("mp-elastic", show_progress=False)
    ids = sorted(set(reference["id"]))
    return ds.subset(ds.index_of(ids))


@pytest.fixture
def no_unsafe_load(monkeypatch):
    """Every torch.load call must be restricted (weights_only=True)."""
    calls = []
    real = torch.load

    def guarded(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        assert kwargs.get("weights_only") is True, "torch.load without weights_only=True"
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", guarded)
    return calls


def _values(res) -> dict[str, float]:
    v = res.values if res.values.ndim == 1 else res.values[:, 0]
    return dict(zip(res.ids, v.tolist(), strict=True))


def test_all_eight_models_present() -> None:
    assert len(MODELS) == 8
    missing = [m for m in MODELS if not (CGCNN_PRETRAINED / f"{m}.pth.tar").is_file()]
    if missing:
        pytest.skip(f"missing checkpoints: {missing}")


@pytest.mark.parametrize("name", MODELS)
def test_reproduces_reference_predictions(name, reference, dataset, no_unsafe_load) -> None:
    path = CGCNN_PRETRAINED / f"{name}.pth.tar"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    pred = Predictor.load(path)
    assert no_unsafe_load and all(no_unsafe_load)
    expected = reference[reference["model"] == name]
    assert len(expected) == 24
    res = pred.predict(dataset, show_progress=False, n_jobs=1)
    assert not res.rejected
    got = _values(res)
    want = expected["prediction"].to_numpy()
    have = np.array([got[i] for i in expected["id"]])
    np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-7)
    # what the task and units say
    target, unit = ORIGINAL_TARGETS[name]
    assert pred.targets == [target] and pred.units == {target: unit}
    assert pred.kind == ("classification" if name == "semi-metal-classification" else "regression")
    if pred.kind == "classification":
        assert ((have >= 0) & (have <= 1)).all()
    assert pred.task.hparams.graph_config["pad_to_max_neighbors"] is True


def test_imported_architecture_from_args() -> None:
    path = CGCNN_PRETRAINED / "band-gap.pth.tar"
    if not path.is_file():
        pytest.skip("band-gap.pth.tar not found")
    ckpt = load_original_checkpoint(path)
    task = import_cgcnn_task(path)
    cfg = task.hparams.model_config
    assert cfg["n_conv"] == int(ckpt["args"]["n_conv"]) and cfg["h_fea_len"] == int(ckpt["args"]["h_fea_len"])
    # the normaliser of the original checkpoint became the task's
    assert float(task.y_mean) == pytest.approx(float(ckpt["normalizer"]["mean"]))
    assert float(task.y_std) == pytest.approx(float(ckpt["normalizer"]["std"]))
    # weights copied one to one: the reference's embedding/convs into the encoder, its
    # post-pooling network into the readout's MLP
    ours = task.model.state_dict()
    for k, v in ckpt["state_dict"].items():
        top = k.split(".")[0]
        new = f"readout.mlp.{k}" if top in ("conv_to_fc", "fcs", "fc_out") else f"encoder.{k}"
        assert torch.equal(ours[new], v), k
    n_ref = sum(v.numel() for k, v in ckpt["state_dict"].items() if "running" not in k and "num_batches" not in k)
    assert task.model.n_parameters() == n_ref


def test_cli_import_then_predict_gives_same_values(tmp_path, reference, dataset, no_unsafe_load) -> None:
    runner = CliRunner()
    for name in ("formation-energy-per-atom", "semi-metal-classification"):
        src = CGCNN_PRETRAINED / f"{name}.pth.tar"
        if not src.is_file():
            pytest.skip(f"{src} not found")
        out = tmp_path / f"{name}.ckpt"
        r = runner.invoke(app, ["import-cgcnn", str(src), "-o", str(out)])
        assert r.exit_code == 0, r.output
        assert out.is_file()
        direct = _values(Predictor.load(src).predict(dataset, show_progress=False, n_jobs=1))
        converted = Predictor.load(out)
        via_ckpt = _values(converted.predict(dataset, show_progress=False, n_jobs=1))
        assert via_ckpt.keys() == direct.keys()
        for k in direct:
            assert via_ckpt[k] == direct[k], k
        expected = reference[reference["model"] == name]
        np.testing.assert_allclose([via_ckpt[i] for i in expected["id"]], expected["prediction"], rtol=1e-4, atol=1e-7)
        # and through `crystalgnn predict` on CIF files
        cif_dir = tmp_path / f"cifs-{name}"
        cif_dir.mkdir()
        for i, s in zip(dataset.ids[:4], dataset.structures[:4], strict=True):
            s.to(filename=str(cif_dir / f"{i}.cif"))
        csv = tmp_path / f"{name}.csv"
        r = runner.invoke(app, ["predict", str(out), str(cif_dir), "-o", str(csv)])
        assert r.exit_code == 0, r.output
        df = read_predictions(csv)
        assert sorted(df["id"]) == sorted(dataset.ids[:4])
        for i, p in zip(df["id"], df["prediction"], strict=True):
            assert p == pytest.approx(direct[i], rel=1e-5, abs=1e-6)
    assert no_unsafe_load and all(no_unsafe_load)


def test_rejects_non_checkpoints(tmp_path) -> None:
    bad = tmp_path / "bad.pth.tar"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a loadable CGCNN checkpoint"):
        load_original_checkpoint(bad)
    # a pickle with an arbitrary object is refused (no unrestricted unpickling)
    evil = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {}, "args": Path("x")}, evil)
    with pytest.raises(ValueError):
        load_original_checkpoint(evil)
    r = CliRunner().invoke(app, ["import-cgcnn", str(bad), "-o", str(tmp_path / "x.ckpt")])
    assert r.exit_code != 0


def test_sources_never_disable_weights_only() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "crystalgnn"
    offenders = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if re.search(r"weights_only\s*=\s*False", p.read_text()) or re.search(r"pickle\.loads?\(", p.read_text())
    ]
    assert not offenders
