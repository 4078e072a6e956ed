"""Explanations of trained models (layer ``explain``, above evaluation and experiments).

Per-site contributions (``crystalgnn explain sites``):

- :mod:`~crystalgnn.explain.sites`: per-site contributions of models trained with the
  ``site-linear`` readout (the CGCNN paper's site-energy readout), written as tables, structures
  and maps.
- :mod:`~crystalgnn.explain.site_roles`: the A, B and X sites of ABX3 perovskites, from
  coordination.
- :mod:`~crystalgnn.explain.periodic_table`: periodic-table heatmaps, one value per element.

Instance explanations (``crystalgnn explain structure``):

- :mod:`~crystalgnn.explain.masks`: a zoo model seen the way ``torch_geometric.explain`` expects
  (node masks on the embedded atoms, edge masks on the messages).
- :mod:`~crystalgnn.explain.instance`: instance explainers through ``torch_geometric.explain``
  (GNNExplainer, Integrated Gradients, Saliency) on every zoo model: per-atom and per-bond
  importances.
- :mod:`~crystalgnn.explain.fidelity`: faithfulness of the explanations against random masks of
  the same size (regression and classification).
- :mod:`~crystalgnn.explain.instance_plots`: the cell coloured by importance, the mean importance
  per element.

Model-level explanations (``crystalgnn explain model``):

- :mod:`~crystalgnn.explain.xgnn`: XGNN model-level explanations adapted to crystals (the
  generator's training and sampling).
- :mod:`~crystalgnn.explain.xgnn_labels`: node labels, periodic group or period of each atom.
- :mod:`~crystalgnn.explain.xgnn_data`: median-split classes and the bond lengths of generated
  bonds.
- :mod:`~crystalgnn.explain.xgnn_policy`: the graph-generation policy.
- :mod:`~crystalgnn.explain.xgnn_env`: actions on label graphs, validity rules, the reward.
- :mod:`~crystalgnn.explain.xgnn_summary`: label histograms, bond heatmaps and the counts behind
  the thesis' chemical claims.
"""
