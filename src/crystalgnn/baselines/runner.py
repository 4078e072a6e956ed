"""One call for every descriptor/floor baseline, for the benchmark runner.

``fit_predict_baseline(name, dataset, target, split)`` fits baseline ``name`` on the training part
of ``split`` (entries whose label is missing are left out) and predicts the test part::

    from crystalgnn.baselines import fit_predict_baseline
    out = fit_predict_baseline("soap-svr", ds, "heat_all", split)
    out["mae"], out["train_time_s"], out["n_parameters"]

Names: ``"mean"``, ``"per-element"``, ``"soap-svr"`` (see :data:`BASELINES`).
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

_SVR_OPTIONS = ("C", "epsilon", "gamma", "grid_search", "param_grid", "cv", "cache_size")


def _model_bytes(model: Any) -> int:
    return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


def dataset_soap(
    dataset: Any,
    config: SoapConfig | None = None,
    *,
    n_jobs: int | None = None,
    cache_dir: str | Path | None | bool = None,
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
    cache_dir: str | Path | None | bool = None,
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
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    if target not in dataset.targets:
        raise KeyError(f"unknown graph-level target {target!r}; dataset has {sorted(dataset.targets)}")
    allowed = {"mean": (), "per-element": ("ridge",), "soap-svr": _SVR_OPTIONS}[name]
    extra = sorted(set(options) - set(allowed))
    if extra:
        raise TypeError(f"baseline {name!r} takes no option(s) {extra}; allowed: {list(allowed)}")

    y_all = np.asarray(dataset.targets[target], dtype=float)
    train = np.concatenate([np.asarray(getattr(split, p), dtype=np.int64) for p in train_parts])
    train = train[np.isfinite(y_all[train])]
    test = np.asarray(split.test, dtype=np.int64)
    test = test[np.isfinite(y_all[test])]
    if len(train) == 0:
        raise ValueError(f"no training entries with a {target!r} label")
    y_train, y_test = y_all[train], y_all[test]
    structures = dataset.structures
    info: dict[str, Any] = {}
    feature_time = 0.0

    if name in ("mean", "per-element"):
        model: Any = MeanBaseline() if name == "mean" else PerElementBaseline(**options)
        t0 = time.perf_counter()
        model.fit([structures[i] for i in train], y_train)
        train_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = model.predict([structures[i] for i in test]) if len(test) else np.zeros(0)
        predict_time = time.perf_counter() - t0
        if name == "per-element":
            info["unseen_elements"] = dict(model.unseen_elements_)
            info["n_elements"] = len(model.elements_)
    else:
        t0 = time.perf_counter()
        X = features if features is not None else dataset_soap(
            dataset, soap_config, n_jobs=n_jobs, cache_dir=cache_dir, show_progress=show_progress
        )
        feature_time = time.perf_counter() - t0
        if len(X) != len(dataset):
            raise ValueError(f"features have {len(X)} rows for {len(dataset)} entries")
        model = SoapSVR(n_jobs=n_jobs, **options)
        t0 = time.perf_counter()
        model.fit(X[train], y_train)
        train_time = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = model.predict(X[test]) if len(test) else np.zeros(0)
        predict_time = time.perf_counter() - t0
        info["n_features"] = int(X.shape[1])
        info["n_support"] = model.n_support
        if model.best_params_ is not None:
            info["best_params"] = model.best_params_

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
        "model_bytes": _model_bytes(model),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "info": info,
    }
