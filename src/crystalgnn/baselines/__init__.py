"""Descriptor and floor baselines: training mean, per-element linear fit, SOAP -> SVR.

``fit_predict_baseline(name, dataset, target, split)`` runs any of them the same way;
``soap_features`` is shared with the SOAP -> MLP model.
"""

from crystalgnn.baselines.floors import MeanBaseline, PerElementBaseline, element_fractions
from crystalgnn.baselines.runner import BASELINES, dataset_soap, fit_predict_baseline
from crystalgnn.baselines.soap import SoapConfig, dataset_species, soap_features
from crystalgnn.baselines.svr import SoapSVR

__all__ = [
    "BASELINES",
    "MeanBaseline",
    "PerElementBaseline",
    "SoapConfig",
    "SoapSVR",
    "dataset_soap",
    "dataset_species",
    "element_fractions",
    "fit_predict_baseline",
    "soap_features",
]
