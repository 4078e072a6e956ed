"""Tests for crystalgnn.baselines.svr and the uniform runner (fit_predict_baseline)."""

from __future__ import annotations

import numpy as np
import pytest

from crystalgnn.baselines import BASELINES, SoapSVR, fit_predict_baseline, soap_features
from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.splits import random_split


def _mae(a, b) -> float:
    return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))


def test_svr_defaults_are_sklearn_defaults():
    from sklearn.svm import SVR

    from crystalgnn.baselines.svr import RBFKernelSVR

    svr = SoapSVR()._pipeline().named_steps["svr"]
    ref = SVR()
    assert isinstance(svr, RBFKernelSVR)  # the RBF kernel, computed as a matrix (tests/baselines/test_svr_kernel.py)
    assert (svr.C, svr.epsilon, svr.gamma) == (ref.C, ref.epsilon, ref.gamma) == (1.0, 0.1, "scale")


def test_svr_fits_smooth_function_of_features():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6)) * np.array([1, 1, 1, 100, 1e-3, 1])  # scaling matters: standardised
    y = 50.0 + 20.0 * (np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + X[:, 3] / 100)  # large offset and scale
    model = SoapSVR().fit(X[:300], y[:300])
    pred = model.predict(X[300:])
    assert _mae(pred, y[300:]) < 0.25 * _mae(y[300:], y[:300].mean())
    assert 0 < model.n_support <= 300
    assert model.n_parameters == model.n_support * 6 + model.n_support + 1


def test_svr_grid_search_picks_from_the_grid():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 4))
    y = np.sin(2 * X[:, 0]) + X[:, 1]
    model = SoapSVR(grid_search=True, param_grid={"C": [0.1, 10.0], "gamma": [0.05, 0.5]}).fit(X, y)
    assert model.best_params_["C"] in (0.1, 10.0) and model.best_params_["gamma"] in (0.05, 0.5)
    assert len(model.cv_results_["params"]) == 4
    default_grid = SoapSVR(grid_search=True)._grid(X)
    assert len(default_grid["svr__C"]) == 4 and len(default_grid["svr__gamma"]) == 3


def test_runner_on_synthetic_dataset(make_structures):
    constants = {"Na": -1.0, "Cl": -3.0, "K": -0.5, "Br": -2.5}
    structures = make_structures(list(constants), 80, seed=7)
    y = np.array([sum(constants[site.specie.symbol] for site in s) / len(s) for s in structures])
    y[5] = np.nan  # a missing label is left out, not an error
    ds = CrystalDataset(
        ids=[f"s{i}" for i in range(80)], structures=structures, targets={"e": y}, units={"e": "eV/atom"}
    )
    split = random_split(80, (0.7, 0.1, 0.2), seed=0)
    results = {}
    for name in BASELINES:
        out = fit_predict_baseline(name, ds, "e", split, cache_dir=False, show_progress=False)
        assert set(out) >= {"predictions", "y_test", "train_time_s", "n_parameters", "model_bytes"}
        assert out["predictions"].shape == out["y_test"].shape == (out["n_test"],)
        assert np.all(np.isfinite(out["y_test"])) and out["model_bytes"] > 0 and out["unit"] == "eV/atom"
        assert out["n_train"] == int(np.isfinite(y[split.train]).sum())
        results[name] = out
    assert results["mean"]["n_parameters"] == 1
    assert results["per-element"]["mae"] < 1e-8  # additive target: exact
    assert results["per-element"]["n_parameters"] == 4
    assert results["soap-svr"]["info"]["n_features"] > 0

    both = fit_predict_baseline("mean", ds, "e", split, train_parts=("train", "val"))
    assert both["n_train"] > results["mean"]["n_train"]
    with pytest.raises(ValueError, match="unknown baseline"):
        fit_predict_baseline("soap-krr", ds, "e", split)
    with pytest.raises(TypeError, match="no option"):
        fit_predict_baseline("mean", ds, "e", split, C=3.0)
    with pytest.raises(KeyError):
        fit_predict_baseline("mean", ds, "missing", split)


def test_svr_smooth_synthetic_target_on_real_structures(perovskites):
    # 40 real perovskites, each isotropically strained by -6..+6 % in volume^(1/3): the target,
    # volume per atom, is a smooth function of the structure. Test structures have strained
    # siblings in training, so SOAP -> SVR must interpolate; the mean cannot.
    idx = np.random.default_rng(0).choice(len(perovskites), 40, replace=False)
    structures = []
    for i in idx:
        for f in (0.94, 0.97, 1.0, 1.03, 1.06):
            s = perovskites.structures[i].copy()
            s.scale_lattice(s.volume * f**3)
            structures.append(s)
    y = np.array([s.volume / len(s) for s in structures])
    X = soap_features(structures, cache_dir=False, show_progress=False)
    perm = np.random.default_rng(0).permutation(len(y))
    tr, te = perm[:160], perm[160:]
    pred = SoapSVR().fit(X[tr], y[tr]).predict(X[te])
    assert _mae(pred, y[te]) < 0.5 * _mae(y[te], y[tr].mean())


def test_svr_beats_mean_on_real_heat_all(perovskites):
    # Measured: with 200 random perovskites (160 to train) SOAP -> SVR is NOT reliably better
    # than the mean for heat_all (test MAE 0.40-0.56 vs 0.47-0.60 eV/cell over 4 draws: 56
    # elements, 4,788 sparse features). With 1,000 (800 to train) it is 11-15 % better over 3
    # draws, and 28 % better on the full set (benchmarks/soap_check.py). Assert the 1,000 case.
    idx = np.random.default_rng(0).choice(len(perovskites), 1000, replace=False)
    sub = perovskites.subset(idx)
    split = random_split(len(sub), (0.8, 0.0, 0.2), seed=0)
    kw = {"cache_dir": False, "show_progress": False}
    svr = fit_predict_baseline("soap-svr", sub, "heat_all", split, **kw)
    mean = fit_predict_baseline("mean", sub, "heat_all", split, **kw)
    assert svr["mae"] < 0.95 * mean["mae"]
    assert svr["n_train"] == 800 and svr["n_test"] == 200
