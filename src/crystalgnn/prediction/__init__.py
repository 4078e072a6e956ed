"""Prediction from a checkpoint alone: one :class:`Predictor` for every checkpoint."""

from crystalgnn.prediction.predictor import EnsemblePredictor, Predictor, predictable_graphs
from crystalgnn.prediction.results import NonFiniteWarning, Predictions, SitePredictions
from crystalgnn.training.resolve import resolve_model, shipped_models_dir

__all__ = [
    "EnsemblePredictor",
    "NonFiniteWarning",
    "Predictions",
    "Predictor",
    "SitePredictions",
    "predictable_graphs",
    "resolve_model",
    "shipped_models_dir",
]
