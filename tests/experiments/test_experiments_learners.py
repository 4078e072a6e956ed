"""The Learner protocol and the floor, SOAP -> SVR and per-site learners on a tiny dataset."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

from crystalgnn.baselines.runner import fit_predict_baseline
from crystalgnn.data.splits import random_split
from crystalgnn.experiments.factory import make_learner
from crystalgnn.experiments.learners import (
    SITE_LEARNERS,
    FitReport,
    Learner,
    MeanLearner,
    PerElementLearner,
    PerElementSiteLearner,
    SoapFeatures,
    SoapSVRLearner,
    available_models,
)

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")


@pytest.mark.parametrize("name", [*available_models(), *SITE_LEARNERS])
def test_every_learner_satisfies_the_protocol(name: str) -> None:
    learner = make_learner(name, epochs=1, show_progress=False)
    assert isinstance(learner, Learner)
    assert learner.name == name and learner.level in ("graph", "site")
    fit = inspect.signature(learner.fit).parameters
    assert list(fit)[:2] == ["dataset", "split"]
    assert {"target", "out_dir", "seed", "split_file"} <= set(fit)
    assert all(fit[k].kind is inspect.Parameter.KEYWORD_ONLY for k in ("target", "out_dir", "seed", "split_file"))
    assert list(inspect.signature(learner.predict).parameters) == ["dataset", "idx"]


def test_make_learner_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        make_learner("soap-krr")
    with pytest.raises(KeyError, match="set by the benchmark"):
        make_learner("cgcnn", train_options={"epochs": 3})


def test_mean_learner_predicts_the_training_mean(perov_dataset, tmp_path) -> None:
    ds = perov_dataset
    split = random_split(len(ds), (0.7, 0.1, 0.2), seed=0)
    learner = MeanLearner()
    with pytest.raises(RuntimeError, match="fit"):
        learner.predict(ds, split.test)
    report = learner.fit(ds, split, target="energy", out_dir=tmp_path)
    y = ds.targets["energy"]
    train = split.train[np.isfinite(y[split.train])]
    assert 0 in split.train and report.n_train == len(split.train) - 1  # the missing label is left out
    assert isinstance(report, FitReport) and report.run_metrics is None
    assert report.n_parameters == 1 and report.model_bytes > 0 and report.n_val == 0
    pred = learner.predict(ds, split.test)
    assert pred.shape == (len(split.test),)
    assert np.all(pred == np.mean(y[train]))
    # the validation part joins the training set when asked (the Matbench protocol)
    both = MeanLearner(train_parts=("train", "val")).fit(ds, split, target="energy", out_dir=tmp_path)
    assert both.n_train == report.n_train + len(split.val)
    with pytest.raises(KeyError, match="unknown graph-level target"):
        learner.fit(ds, split, target="nope", out_dir=tmp_path)


def test_per_element_learner_is_exact_on_a_linear_target(perov_dataset, tmp_path) -> None:
    ds = perov_dataset
    split = random_split(len(ds), (0.8, 0.0, 0.2), seed=1)
    learner = PerElementLearner()
    report = learner.fit(ds, split, target="linear", out_dir=tmp_path)
    seen = {site.specie.symbol for i in split.train for site in ds.structures[i]}
    assert report.n_parameters == len(seen) == report.info["n_elements"]
    ok = [i for i in split.test if {site.specie.symbol for site in ds.structures[i]} <= seen]
    assert ok
    np.testing.assert_allclose(learner.predict(ds, ok), ds.targets["linear"][ok], atol=1e-8)
    assert learner.predict(ds, []).shape == (0,)


@pytest.mark.parametrize("name", ["mean", "per-element"])
def test_floor_learners_match_fit_predict_baseline(perov_dataset, tmp_path, name: str) -> None:
    ds = perov_dataset
    split = random_split(len(ds), (0.7, 0.1, 0.2), seed=2)
    ref = fit_predict_baseline(name, ds, "energy", split, show_progress=False)
    learner = make_learner(name)
    report = learner.fit(ds, split, target="energy", out_dir=tmp_path)
    np.testing.assert_allclose(learner.predict(ds, ref["test_indices"]), ref["predictions"], rtol=1e-12)
    assert (report.n_train, report.n_parameters, report.model_bytes) == (
        ref["n_train"],
        ref["n_parameters"],
        ref["model_bytes"],
    )


def test_soap_svr_learner_fits_and_predicts(perov_dataset, tmp_path) -> None:
    ds = perov_dataset
    split = random_split(len(ds), (0.7, 0.1, 0.2), seed=0)
    features = SoapFeatures(ds, show_progress=False)
    learner = SoapSVRLearner(features=features)
    report = learner.fit(ds, split, target="linear", out_dir=tmp_path)
    X = features.matrix()
    assert X.shape[0] == len(ds) and report.info["n_features"] == X.shape[1]
    assert report.feature_time_s == features.time_s > 0
    assert 0 < report.info["n_support"] <= len(split.train)
    pred = learner.predict(ds, split.test)
    assert pred.shape == (len(split.test),) and np.isfinite(pred).all()
    # the same model as the one-call runner on the same features
    ref = fit_predict_baseline("soap-svr", ds, "linear", split, features=X, show_progress=False)
    np.testing.assert_allclose(pred, ref["predictions"], rtol=1e-10)
    assert report.n_parameters == ref["n_parameters"]
    # it beats the mean on this composition-driven target
    y = ds.targets["linear"]
    assert np.mean(np.abs(pred - y[split.test])) < np.mean(np.abs(y[split.train].mean() - y[split.test]))


def test_per_element_site_learner_is_exact_on_element_constants(perov_dataset, tmp_path) -> None:
    ds = perov_dataset
    split = random_split(len(ds), (0.8, 0.0, 0.2), seed=0)
    learner = PerElementSiteLearner()
    assert learner.level == "site"
    report = learner.fit(ds, split, target="charge", out_dir=tmp_path)
    assert report.n_train == len(split.train)
    pred = learner.predict(ds, split.test)
    truth = np.concatenate([ds.site_targets["charge"][i] for i in split.test])
    seen = {site.specie.symbol for i in split.train for site in ds.structures[i]}
    known = np.array([site.specie.symbol in seen for i in split.test for site in ds.structures[i]])
    assert pred.shape == truth.shape and known.any()
    np.testing.assert_allclose(pred[known], truth[known], atol=1e-12)
    with pytest.raises(KeyError, match="per-site target"):
        learner.fit(ds, split, target="energy", out_dir=tmp_path)
