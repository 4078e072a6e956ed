"""One call for every descriptor/floor baseline, for the benchmark runner.

``fit_predict_baseline(name, dataset, target, split)`` fits baseline ``name`` on the training part
of ``split`` (entries whose label is missing are left out) and predicts the test part::

    from crystalgnn.baselines import fit_predict_baseline

    out = fit_predict_baseline("soap-svr", ds, "heat_all", split)
    out["mae"], out["train_time_s"], out["n_parameters"]

Names: ``"mean"``, ``"per-element"``, ``"soap-svr"`` (see :data:`BASELINES`). The pieces it is
made of -- :func:`make_baseline` (an unfitted estimator), :func:`labelled_indices`,
:func:`baseline_info`, :func:`model_bytes` -- are public for callers that fit and predict in
separate steps (the benchmark's learners).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.baselines.floors import MeanBaseline, PerElementBaseline
from crystalgnn.baselines.soap import SoapConfig, dataset_species, soap_features
from crystalgnn.baselines.svr import SoapSVR

#: baseline name -> one-line description
BASELINES = {
    "mean": "training-set mean of the target",
    "per-element": "least squares on element fractions (composition-only linear model)",
    "soap-svr": "RBF SVR (scikit-learn defaults) on standardised SOAP vectors (DScribe, inner average)",
}

#: what each baseline's ``fit``/``predict`` take: a list of structures or a SOAP matrix
BASELINE_INPUTS = {"mean": "structures", "per-element": "structures", "soap-svr": "soap"}

_SVR_OPTIONS = ("C", "epsilon", "gamma", "grid_search", "param_grid", "cv", "cache_size")


def model_bytes(model: Any) -> int:
    """Pickled size of a fitted baseline (the benchmark's ``model_bytes``)."""
    return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def make_baseline(name: str, *, n_jobs: int | None = None, **options: Any) -> Any:
    """An unfitted baseline estimator: ``fit(inputs, y)``, ``predict(inputs)``, ``n_parameters``.

    ``"mean"`` and ``"per-element"`` take structures as inputs, ``"soap-svr"`` a SOAP matrix
    (see :data:`BASELINE_INPUTS`). Options as :func:`fit_predict_baseline`'s.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    allowed = {"mean": (), "per-element": ("ridge",), "soap-svr": _SVR_OPTIONS}[name]
    extra = sorted(set(options) - set(allowed))
    if extra:
        raise TypeError(f"baseline {name!r} takes no option(s) {extra}; allowed: {list(allowed)}")
    if name == "mean":
        return MeanBaseline()
    if name == "per-element":
        return PerElementBaseline(**options)
    return SoapSVR(n_jobs=n_jobs, **options)


def labelled_indices(y: np.ndarray, split: Any, parts: Sequence[str]) -> np.ndarray:
    """The entries of ``split``'s ``parts`` (concatenated, in order) whose label in ``y`` is finite."""
    idx = (
        np.concatenate([np.asarray(getattr(split, p), dtype=np.int64) for p in parts])
        if parts
        else np.zeros(0, np.int64)
    )
    return idx[np.isfinite(np.asarray(y, dtype=float)[idx])]


def baseline_info(name: str, model: Any) -> dict[str, Any]:
    """What a fitted (and, for ``per-element``, last-used) baseline reports besides its metrics."""
    info: dict[str, Any] = {}
    if name == "per-element":
        info["unseen_elements"] = dict(model.unseen_elements_)
        info["n_elements"] = len(model.elements_)
    elif name == "soap-svr":
        info["n_support"] = model.n_support
        if model.best_params_ is not None:
            info["best_params"] = model.best_params_
    return info


def dataset_soap(
    dataset: Any,
    config: SoapConfig | None = None,
    *,
    n_jobs: int | None = None,
    cache_dir: str | Path | bool | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """SOAP vectors of every entry of ``dataset`` (species: the dataset's elements), cached."""
    config = config or SoapConfig()
    species = config.species if config.species is not None else dataset_species(dataset.structures)
    return soap_features(
        dataset.structures, config, species=species, n_jobs=n_jobs, cache_dir=cache_dir, show_progress=show_progress
    )


def fit_predict_baseline(
    name: str,
    dataset: Any,
    target: str,
    split: Any,
    *,
    train_parts: Sequence[str] = ("train",),
    soap_config: SoapConfig | None = None,
    features: np.ndarray | None = None,
    n_jobs: int | None = None,
    cache_dir: str | Path | bool | None = None,
    show_progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Fit baseline ``name`` on ``split``'s training entries and predict its test entries.

    Args:
        name: ``"mean"``, ``"per-element"`` or ``"soap-svr"``.
        dataset: a :class:`~crystalgnn.data.dataset.CrystalDataset`.
        target: a graph-level target of ``dataset``.
        split: a :class:`~crystalgnn.data.splits.Split` (index arrays into ``dataset``).
        train_parts: split parts to train on (default only ``"train"``, as the GNNs; none of
            these baselines needs a validation set, ``("train", "val")`` uses it for training).
        soap_config: SOAP parameters for ``"soap-svr"`` (default :class:`SoapConfig()`).
        features: precomputed SOAP matrix for the whole dataset (skips :func:`dataset_soap`).
        n_jobs: processes for SOAP and for the SVR grid search.
        cache_dir: SOAP cache folder (``False``: no cache).
        show_progress: progress bars.
        **options: ``ridge`` for ``"per-element"``; ``C``, ``epsilon``, ``gamma``,
            ``grid_search``, ``param_grid``, ``cv``, ``cache_size`` for ``"soap-svr"``.

    Returns:
        dict with ``predictions`` and ``y_test`` (test entries with a label), ``test_indices``,
        ``mae``, ``train_time_s`` (fit only), ``predict_time_s``, ``feature_time_s`` (SOAP,
        0 for the others; a cache hit makes it small), ``n_parameters``, ``model_bytes``
        (pickled size), ``n_train``, ``n_test``, ``unit`` and baseline-specific ``info``.
    """
    model = make_baseline(name, n_jobs=n_jobs, **options)
    if target not in dataset.targets:
        raise KeyError(f"unknown graph-level target {target!r}; dataset has {sorted(dataset.targets)}")

    y_all = np.asarray(dataset.targets[target], dtype=float)
    train = labelled_indices(y_all, split, train_parts)
    test = labelled_indices(y_all, split, ("test",))
    if len(train) == 0:
        raise ValueError(f"no training entries with a {target!r} label")
    y_train, y_test = y_all[train], y_all[test]
    feature_time = 0.0
    inputs: Any = dataset.structures
    if BASELINE_INPUTS[name] == "soap":
        t0 = time.perf_counter()
        inputs = (
            features
            if features is not None
            else dataset_soap(dataset, soap_config, n_jobs=n_jobs, cache_dir=cache_dir, show_progress=show_progress)
        )
        feature_time = time.perf_counter() - t0
        if len(inputs) != len(dataset):
            raise ValueError(f"features have {len(inputs)} rows for {len(dataset)} entries")

    def take(idx: np.ndarray) -> Any:
        return [inputs[i] for i in idx] if BASELINE_INPUTS[name] == "structures" else inputs[idx]

    t0 = time.perf_counter()
    model.fit(take(train), y_train)
    train_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = model.predict(take(test)) if len(test) else np.zeros(0)
    predict_time = time.perf_counter() - t0
    info = baseline_info(name, model)
    if BASELINE_INPUTS[name] == "soap":
        info = {"n_features": int(inputs.shape[1]), **info}

    pred = np.asarray(pred, dtype=float)
    return {
        "name": name,
        "target": target,
        "unit": getattr(dataset, "units", {}).get(target, ""),
        "predictions": pred,
        "y_test": y_test,
        "test_indices": test,
        "mae": float(np.mean(np.abs(pred - y_test))) if len(test) else float("nan"),
        "train_time_s": train_time,
        "predict_time_s": predict_time,
        "feature_time_s": feature_time,
        "n_parameters": int(model.n_parameters),
        "model_bytes": model_bytes(model),
        "n_train": len(train),
        "n_test": len(test),
        "info": info,
    }
