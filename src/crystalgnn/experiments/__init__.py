"""Experiments: the model benchmark and the learning curve, on one ``Learner`` protocol.

Modules, one concept each:

* :mod:`~crystalgnn.experiments.learners` -- the :class:`Learner` protocol (``fit(dataset,
  split, ...) -> FitReport``, ``predict(dataset, idx)``), the floors, SOAP -> SVR, the per-site
  floor; :mod:`~crystalgnn.experiments.factory` -- :func:`make_learner`; :mod:`~crystalgnn.experiments.network_learners` -- the GNNs
  and SOAP -> MLP (resumable run folders);
* :mod:`~crystalgnn.experiments.preparation` -- the entries every model sees, the splits;
* :mod:`~crystalgnn.experiments.results` -- ``settings.json`` and the resumable results table;
* :mod:`~crystalgnn.experiments.orchestration` -- :func:`run_benchmark`: cells, progress;
* :mod:`~crystalgnn.experiments.summary` -- summary table, Markdown and figure;
* :mod:`~crystalgnn.experiments.learning_curve` -- :func:`run_learning_curve`.
"""

from crystalgnn.experiments.factory import make_learner
from crystalgnn.experiments.learners import (
    FitReport,
    Learner,
    available_models,
    model_kind,
)
from crystalgnn.experiments.learning_curve import run_learning_curve
from crystalgnn.experiments.orchestration import run_benchmark
from crystalgnn.experiments.results import BenchmarkMismatch, ResultStore
from crystalgnn.experiments.summary import summarize, summary_markdown

__all__ = [
    "BenchmarkMismatch",
    "FitReport",
    "Learner",
    "ResultStore",
    "available_models",
    "make_learner",
    "model_kind",
    "run_benchmark",
    "run_learning_curve",
    "summarize",
    "summary_markdown",
]
