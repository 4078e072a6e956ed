"""Learners: every model of the benchmark behind one protocol.

A :class:`Learner` is fitted on the training part of a split of a
:class:`~crystalgnn.data.dataset.CrystalDataset` and predicts entries of a dataset by index::

    learner = make_learner("per-element")
    report = learner.fit(ds, split, target="heat_all", out_dir="runs/pe")
    pred = learner.predict(ds, split.test)

Graph-level learners (``level == "graph"``) return one value per entry; site-level learners
(``level == "site"``) one value per site of the entries, concatenated in order.

Implementations: :class:`MeanLearner`, :class:`PerElementLearner`, :class:`SoapSVRLearner`
(the floors and the descriptor baseline, here), :class:`PerElementSiteLearner` (site level),
and the networks :class:`~crystalgnn.experiments.network_learners.GNNLearner` and
:class:`~crystalgnn.experiments.network_learners.SoapMLPLearner`. The networks train through a
resumable run folder that also evaluates the test part; their :class:`FitReport` carries that
run's metrics (``run_metrics``), which the benchmark takes as they are.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from crystalgnn.baselines.runner import (
    BASELINES,
    baseline_info,
    dataset_soap,
    labelled_indices,
    make_baseline,
    model_bytes,
)
from crystalgnn.baselines.soap import SoapConfig
from crystalgnn.baselines.soap_mlp import THESIS_SOAP
from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.splits import Split

#: SOAP -> MLP variants: name -> SoapMLPConfig options
SOAP_MLP_VARIANTS: dict[str, dict[str, Any]] = {
    "soap-mlp": {},
    "soap-mlp-raw": {"standardize": False, "input_softplus": True},  # unscaled, as the thesis
    "soap-mlp-noclip": {"clip": None},  # plain standardisation: explodes on rare/noise features
}
#: site-level learners: name -> description
SITE_LEARNERS = {"per-element-site": "mean training label of each site's element"}


@dataclass
class FitReport:
    """What fitting a learner cost and produced.

    Attributes:
        n_train: entries trained on (labelled ones; the networks: their run's training part).
        n_val: entries used for validation (0 for learners that need none).
        train_time_s: the fit only (features and graphs excluded).
        feature_time_s: time to compute the input features (SOAP), 0 when there are none.
        n_parameters: fitted parameters (support vectors x features + ... for the SVR).
        model_bytes: pickled size (baselines) or best-checkpoint size (networks).
        run_metrics: ``metrics.json`` of a training run that already evaluated ``split.test``
            (the networks); ``None`` when the caller evaluates with :meth:`Learner.predict`.
        info: learner-specific facts (updated by ``predict``, e.g. unseen elements).
    """

    n_train: int
    n_val: int = 0
    train_time_s: float = 0.0
    feature_time_s: float = 0.0
    n_parameters: int | None = None
    model_bytes: int | None = None
    run_metrics: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Learner(Protocol):
    """A model the benchmark can fit on a split and ask for predictions."""

    name: str
    level: str  # "graph" or "site"

    def fit(
        self,
        dataset: CrystalDataset,
        split: Split,
        *,
        target: str,
        out_dir: str | Path,
        seed: int = 0,
        split_file: str | Path | None = None,
    ) -> FitReport:
        """Fit on ``split``'s training part (``out_dir``: the run folder; ``split_file``: the
        split saved as ids, used by learners that read their data from disk).
        """
        ...

    def predict(self, dataset: CrystalDataset, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """Predictions for the entries ``idx`` of ``dataset`` (float array)."""
        ...


# --------------------------------------------------------------------------- features
class SoapFeatures:
    """The SOAP matrix of one dataset, computed on first use and shared by the SOAP learners."""

    def __init__(
        self,
        dataset: CrystalDataset,
        config: SoapConfig = THESIS_SOAP,
        *,
        n_jobs: int | None = None,
        show_progress: bool = True,
    ) -> None:
        self.dataset = dataset
        self.config = config
        self.n_jobs = n_jobs
        self.show_progress = show_progress
        self.time_s = 0.0
        self._matrix: np.ndarray | None = None

    def matrix(self) -> np.ndarray:
        if self._matrix is None:
            t0 = time.perf_counter()
            self._matrix = dataset_soap(self.dataset, self.config, n_jobs=self.n_jobs, show_progress=self.show_progress)
            self.time_s = time.perf_counter() - t0
        return self._matrix

    def for_dataset(self, dataset: CrystalDataset) -> np.ndarray:
        """This dataset's matrix, or (another dataset) a fresh one with the same settings."""
        if dataset is self.dataset:
            return self.matrix()
        return dataset_soap(dataset, self.config, n_jobs=self.n_jobs, show_progress=self.show_progress)


# --------------------------------------------------------------------------- floors and SVR
class BaselineLearner:
    """A :mod:`crystalgnn.baselines` estimator (``mean``, ``per-element``, ``soap-svr``) as a learner.

    Args:
        name: a name of :data:`~crystalgnn.baselines.runner.BASELINES`.
        train_parts: split parts to train on (``("train", "val")``: the validation part too,
            as the Matbench protocol does; none of these needs a validation set).
        features: the SOAP matrix provider (``soap-svr``; made on first fit when omitted).
        n_jobs: processes for SOAP and the SVR grid search.
        **options: the estimator's options (``ridge``; ``C``, ``epsilon``, ``gamma``, ...).
    """

    level = "graph"
    inputs = "structures"

    def __init__(
        self,
        name: str,
        *,
        train_parts: Sequence[str] = ("train",),
        features: SoapFeatures | None = None,
        n_jobs: int | None = None,
        show_progress: bool = True,
        **options: Any,
    ) -> None:
        make_baseline(name, n_jobs=n_jobs, **options)  # checks the name and options
        self.name = name
        self.train_parts = tuple(train_parts)
        self.features = features
        self.n_jobs = n_jobs
        self.show_progress = show_progress
        self.options = options
        self.model: Any = None
        self.info: dict[str, Any] = {}

    def _inputs(self, dataset: CrystalDataset, idx: np.ndarray) -> Any:
        return [dataset.structures[int(i)] for i in idx]

    def _feature_time(self) -> float:
        return 0.0

    def fit(
        self,
        dataset: CrystalDataset,
        split: Split,
        *,
        target: str,
        out_dir: str | Path | None = None,
        seed: int = 0,
        split_file: str | Path | None = None,
    ) -> FitReport:
        if target not in dataset.targets:
            raise KeyError(f"unknown graph-level target {target!r}; dataset has {sorted(dataset.targets)}")
        y = np.asarray(dataset.targets[target], dtype=float)
        train = labelled_indices(y, split, self.train_parts)
        if len(train) == 0:
            raise ValueError(f"no training entries with a {target!r} label")
        self.info.clear()
        X = self._inputs(dataset, train)
        self.model = make_baseline(self.name, n_jobs=self.n_jobs, **self.options)
        t0 = time.perf_counter()
        self.model.fit(X, y[train])
        train_time = time.perf_counter() - t0
        self.info.update(baseline_info(self.name, self.model))
        return FitReport(
            n_train=len(train),
            train_time_s=train_time,
            feature_time_s=self._feature_time(),
            n_parameters=int(self.model.n_parameters),
            model_bytes=model_bytes(self.model),
            info=self.info,
        )

    def predict(self, dataset: CrystalDataset, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name}: fit() first")
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == 0:
            return np.zeros(0)
        pred = np.asarray(self.model.predict(self._inputs(dataset, idx)), dtype=float)
        self.info.update(baseline_info(self.name, self.model))
        return pred


class MeanLearner(BaselineLearner):
    """The training-set mean of the target, for every entry."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("mean", **kwargs)


class PerElementLearner(BaselineLearner):
    """Least squares on element fractions (``ridge``: optional L2 penalty)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("per-element", **kwargs)


class SoapSVRLearner(BaselineLearner):
    """RBF SVR on standardised SOAP vectors (the features: a shared :class:`SoapFeatures`)."""

    inputs = "soap"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("soap-svr", **kwargs)

    def _soap(self, dataset: CrystalDataset) -> SoapFeatures:
        if self.features is None:
            self.features = SoapFeatures(dataset, n_jobs=self.n_jobs, show_progress=self.show_progress)
        return self.features

    def _inputs(self, dataset: CrystalDataset, idx: np.ndarray) -> Any:
        X = self._soap(dataset).for_dataset(dataset)
        if len(X) != len(dataset):
            raise ValueError(f"features have {len(X)} rows for {len(dataset)} entries")
        self.info["n_features"] = int(X.shape[1])
        return X[idx]

    def _feature_time(self) -> float:
        return self.features.time_s if self.features is not None else 0.0


# --------------------------------------------------------------------------- site level
class PerElementSiteLearner:
    """Per-site floor: each site gets the mean (or median) training label of its element."""

    level = "site"

    def __init__(self, *, train_parts: Sequence[str] = ("train",), statistic: str = "mean") -> None:
        from crystalgnn.baselines.site_baselines import PerElementSiteBaseline

        self.name = "per-element-site"
        self.train_parts = tuple(train_parts)
        self.model = PerElementSiteBaseline(statistic)
        self.fitted = False

    def fit(
        self,
        dataset: CrystalDataset,
        split: Split,
        *,
        target: str,
        out_dir: str | Path | None = None,
        seed: int = 0,
        split_file: str | Path | None = None,
    ) -> FitReport:
        if target not in dataset.site_targets:
            raise KeyError(f"unknown per-site target {target!r}; dataset has {sorted(dataset.site_targets)}")
        labels = dataset.site_targets[target]
        train = np.concatenate([np.asarray(getattr(split, p), dtype=np.int64) for p in self.train_parts])
        t0 = time.perf_counter()
        self.model.fit([dataset.structures[i] for i in train], [labels[i] for i in train])
        self.fitted = True
        return FitReport(
            n_train=len(train),
            train_time_s=time.perf_counter() - t0,
            n_parameters=len(self.model.values_) + 1,
            model_bytes=model_bytes(self.model),
            info={"n_elements": len(self.model.values_)},
        )

    def predict(self, dataset: CrystalDataset, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        if not self.fitted:
            raise RuntimeError(f"{self.name}: fit() first")
        per_structure = self.model.predict([dataset.structures[int(i)] for i in idx])
        return np.concatenate(per_structure).astype(float) if len(per_structure) else np.zeros(0)


# --------------------------------------------------------------------------- names and factory
def gnn_names() -> list[str]:
    from crystalgnn.models.registry import get_spec, model_names

    return [m for m in model_names() if m != "soap-mlp" and not get_spec(m).site_only]


def available_models() -> list[str]:
    """The graph-level models of the benchmark."""
    return [*BASELINES, *SOAP_MLP_VARIANTS, *gnn_names()]


def model_kind(name: str) -> str:
    """``"baseline"`` (mean, per-element, soap-svr), ``"soap-mlp"`` or ``"gnn"``."""
    if name in BASELINES:
        return "baseline"
    if name in SOAP_MLP_VARIANTS:
        return "soap-mlp"
    if name in gnn_names():
        return "gnn"
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(available_models())}")


__all__ = [
    "SITE_LEARNERS",
    "SOAP_MLP_VARIANTS",
    "BaselineLearner",
    "FitReport",
    "Learner",
    "MeanLearner",
    "PerElementLearner",
    "PerElementSiteLearner",
    "SoapFeatures",
    "SoapSVRLearner",
    "available_models",
    "gnn_names",
    "model_kind",
]
