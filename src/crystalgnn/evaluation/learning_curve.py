"""Moved to :mod:`crystalgnn.experiments.learning_curve` (compatibility re-export)."""

from crystalgnn.experiments.learning_curve import (
    LearningCurveResult,
    learning_curve_figure,
    learning_curve_splits,
    run_learning_curve,
)

__all__ = ["LearningCurveResult", "learning_curve_figure", "learning_curve_splits", "run_learning_curve"]
