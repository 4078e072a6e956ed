"""The learner for a model name: baselines, SOAP -> MLP variants and GNNs behind one factory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from crystalgnn.experiments.learners import (
    SITE_LEARNERS,
    BaselineLearner,
    Learner,
    MeanLearner,
    PerElementLearner,
    PerElementSiteLearner,
    SoapFeatures,
    SoapSVRLearner,
    model_kind,
)
from crystalgnn.experiments.network_learners import GNNLearner, SoapMLPLearner

_BASELINE_CLASSES: dict[str, Callable[..., BaselineLearner]] = {
    "mean": MeanLearner,
    "per-element": PerElementLearner,
    "soap-svr": SoapSVRLearner,
}


def make_learner(
    name: str,
    *,
    epochs: int = 30,
    train_options: dict[str, Any] | None = None,
    source: str | None = None,
    features: SoapFeatures | None = None,
    train_parts: Sequence[str] = ("train",),
    n_jobs: int | None = None,
    show_progress: bool = True,
) -> Learner:
    """The learner called ``name`` (any of :func:`available_models`, or ``per-element-site``).

    Args:
        epochs, train_options: the networks' training (``TrainConfig`` fields).
        source: where the networks read the dataset (a file written for them, or the source
            itself); ``None``: each GNN run writes the dataset it is given into its folder.
        features: the shared SOAP matrix (``soap-svr``, SOAP -> MLP variants).
        train_parts: training parts of the split for the baselines (the networks always train
            on ``train`` and validate on ``val``).
        n_jobs, show_progress: processes and progress bars.
    """
    if name in SITE_LEARNERS:
        return PerElementSiteLearner(train_parts=train_parts)
    kind = model_kind(name)
    if kind == "baseline":
        return _BASELINE_CLASSES[name](
            train_parts=train_parts, features=features, n_jobs=n_jobs, show_progress=show_progress
        )
    if kind == "gnn":
        return GNNLearner(name, epochs=epochs, train_options=train_options, source=source, show_progress=show_progress)
    return SoapMLPLearner(
        name, epochs=epochs, train_options=train_options, source=source, features=features,
        n_jobs=n_jobs, show_progress=show_progress,
    )  # fmt: skip


__all__ = ["make_learner"]
