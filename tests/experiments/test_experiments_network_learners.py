"""The network learners (GNN through ``train``, SOAP -> MLP through ``train_soap_mlp``) and the
SOAP -> MLP model's input clipping."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from crystalgnn.data.splits import random_split
from crystalgnn.experiments.learners import Learner, SoapFeatures
from crystalgnn.experiments.network_learners import GNNLearner, SoapMLPLearner
from tinydata import read_predictions

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")
pytestmark = pytest.mark.usefixtures("one_thread")
OPTIONS = {"batch_size": 16, "num_threads": 1}


def _run_predictions(run_dir) -> pd.Series:  # type: ignore[no-untyped-def]
    return read_predictions(run_dir / "predictions.csv").set_index("id")["prediction"]


def test_gnn_learner_on_its_own_writes_its_data_and_predicts_like_its_run(perov_dataset, tmp_path) -> None:
    ds = perov_dataset
    split = random_split(len(ds), (0.7, 0.15, 0.15), seed=0)
    learner = GNNLearner("cgcnn", epochs=2, train_options=OPTIONS, show_progress=False)
    assert isinstance(learner, Learner)
    report = learner.fit(ds, split, target="linear", out_dir=tmp_path / "run")
    assert (tmp_path / "run" / "data.jsonl.gz").is_file() and (tmp_path / "run" / "split_ids.json").is_file()
    assert report.run_metrics is not None and np.isfinite(report.run_metrics["test"]["mae"])
    assert (report.n_train, report.n_val) == (len(split.train), len(split.val))
    assert report.n_parameters > 0 and report.model_bytes > 0
    pred = learner.predict(ds, split.test)
    ref = _run_predictions(tmp_path / "run")
    np.testing.assert_allclose(pred, ref.loc[[ds.ids[i] for i in split.test]].to_numpy(), rtol=1e-4, atol=1e-5)
    # fitting again finds the finished run folder and trains nothing
    again = GNNLearner("cgcnn", epochs=2, train_options=OPTIONS, show_progress=False)
    assert again.fit(ds, split, target="linear", out_dir=tmp_path / "run").run_metrics == report.run_metrics


def test_soap_mlp_learner_predicts_like_its_run(perov_dataset, tmp_path) -> None:
    ds = perov_dataset
    split = random_split(len(ds), (0.7, 0.15, 0.15), seed=0)
    features = SoapFeatures(ds, show_progress=False)
    learner = SoapMLPLearner("soap-mlp", epochs=2, train_options=OPTIONS, features=features, show_progress=False)
    report = learner.fit(ds, split, target="linear", out_dir=tmp_path / "mlp")
    assert report.feature_time_s == features.time_s and report.run_metrics is not None
    pred = learner.predict(ds, split.test)
    ref = _run_predictions(tmp_path / "mlp")
    np.testing.assert_allclose(pred, ref.loc[[ds.ids[i] for i in split.test]].to_numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="variant"):
        SoapMLPLearner("soap-mlp-huge")
