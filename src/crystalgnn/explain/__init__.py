"""Explanations of trained models (layer ``explain``, above evaluation and experiments).

- :mod:`~crystalgnn.explain.sites`: per-site contributions of models trained with the
  ``site-linear`` readout (the CGCNN paper's site-energy readout), site roles, periodic-table maps.
- :mod:`~crystalgnn.explain.instance`: instance explainers through ``torch_geometric.explain``
  (GNNExplainer, Integrated Gradients, Saliency) on every zoo model, with measured fidelity.
- :mod:`~crystalgnn.explain.xgnn`: XGNN model-level explanations adapted to crystals.
"""
