r"""Faithfulness of instance explanations, measured against random masks of the same size.

**Regression** (PyG's ``fidelity`` refuses it). For a structure with prediction :math:`\hat y`
and an explanation ranking its atoms (or directed bonds), let :math:`S_k` be the top
:math:`\lceil k |V| / 100 \rceil` atoms (at least one) and :math:`\hat y_{\setminus S_k}` the
prediction with them masked (embedded features zeroed; for bonds: their messages removed in
every convolution). The fidelity at :math:`k` is

.. math::
    \Delta_k = |\hat y - \hat y_{\setminus S_k}|

(the "fidelity+" of GraphFramEx, Amara et al. 2022, with a distance instead of a label flip),
averaged over structures, next to :math:`\Delta_k^{rand}`, the same with random sets of the same
size (mean over ``n_random`` draws). A faithful explanation removes what the prediction rests on:
:math:`\Delta_k > \Delta_k^{rand}`; ``win_rate`` is the fraction of structures where it does.

**Classification**: PyG's :func:`~torch_geometric.explain.metric.fidelity` (fid+, fid-: how
often the predicted class changes without / with only the top-k set) and
:func:`~torch_geometric.explain.metric.characterization_score` (their weighted harmonic mean), on
hard top-k masks, with the same numbers for random masks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.explain import Explainer, Explanation
from torch_geometric.explain.metric import characterization_score, fidelity

from crystalgnn.explain.instance import StructureExplanation, explain_graph, make_explainer
from crystalgnn.explain.masks import ExplainableModel, as_batch, masked_prediction
from crystalgnn.models.base import CrystalModel

KS: tuple[int, ...] = (10, 20, 30, 50)


def top_k_mask(importance: np.ndarray, k_percent: float) -> Tensor:
    """1 for the top ``ceil(k% n)`` entries (at least one) by importance, 0 elsewhere (float)."""
    n = len(importance)
    size = max(1, math.ceil(k_percent * n / 100.0))
    order = np.argsort(-np.asarray(importance), kind="stable")[:size]
    mask = torch.zeros(n)
    mask[torch.as_tensor(order.copy())] = 1.0
    return mask


def random_masks(n: int, size: int, n_random: int, rng: np.random.Generator) -> list[Tensor]:
    """``n_random`` masks with ``size`` random entries set to 1."""
    out = []
    for _ in range(n_random):
        m = torch.zeros(n)
        m[torch.as_tensor(rng.choice(n, size=size, replace=False))] = 1.0
        out.append(m)
    return out


def _masked(wrapped: ExplainableModel, batch: Batch, what: str, removed: Tensor) -> Tensor:
    keep = 1.0 - removed
    if what == "atoms":
        return masked_prediction(wrapped, batch, node_mask=keep)
    return masked_prediction(wrapped, batch, edge_mask=keep)


def regression_fidelity(
    wrapped: ExplainableModel,
    data: Data,
    expl: StructureExplanation,
    *,
    what: str = "atoms",
    ks: Sequence[int] = KS,
    n_random: int = 10,
    rng: np.random.Generator | None = None,
) -> list[dict[str, Any]]:
    r"""Per ``k``: :math:`\Delta_k` of the explanation and the mean :math:`\Delta_k^{rand}` for
    one structure (``what``: ``atoms`` or ``bonds``, i.e. directed edges).
    """
    rng = rng or np.random.default_rng(0)
    batch = as_batch(data)
    y = float(masked_prediction(wrapped, batch)[0, 0])
    importance = expl.atom_importance if what == "atoms" else expl.edge_importance
    rows = []
    for k in ks:
        top = top_k_mask(importance, k)
        size = int(top.sum())
        d = abs(float(_masked(wrapped, batch, what, top)[0, 0]) - y)
        d_rand = [
            abs(float(_masked(wrapped, batch, what, m)[0, 0]) - y)
            for m in random_masks(len(importance), size, n_random, rng)
        ]
        rows.append({"k": k, "size": size, "delta": d, "delta_random": float(np.mean(d_rand))})
    return rows


def classification_fidelity(
    explainer: Explainer,
    data: Data,
    expl: StructureExplanation,
    *,
    what: str = "atoms",
    ks: Sequence[int] = KS,
    n_random: int = 10,
    rng: np.random.Generator | None = None,
) -> list[dict[str, Any]]:
    """Per ``k``: PyG's (fid+, fid-) of the hard top-k mask and their means over random masks."""
    rng = rng or np.random.default_rng(0)
    wrapped = explainer.model
    assert isinstance(wrapped, ExplainableModel)
    batch = as_batch(data)
    n = int(batch.num_nodes)
    x = torch.ones(n, 1)
    edge_index = wrapped.edge_index(batch)
    target = explainer.get_target(explainer.get_prediction(x, edge_index, batch=batch))
    importance = expl.atom_importance if what == "atoms" else expl.edge_importance

    def fid(mask: Tensor) -> tuple[float, float]:
        masks = {"node_mask": mask.view(n, 1)} if what == "atoms" else {"edge_mask": mask}
        e = Explanation(x=x, edge_index=edge_index, target=target, batch=batch, **masks)
        e._model_args = ["batch"]
        plus, minus = fidelity(explainer, e)
        return float(plus), float(minus)

    rows = []
    for k in ks:
        top = top_k_mask(importance, k)
        plus, minus = fid(top)
        rand = np.array([fid(m) for m in random_masks(len(importance), int(top.sum()), n_random, rng)])
        rows.append({"k": k, "size": int(top.sum()), "fid_plus": plus, "fid_minus": minus,
                     "fid_plus_random": float(rand[:, 0].mean()), "fid_minus_random": float(rand[:, 1].mean())})  # fmt: skip
    return rows


def _characterization(plus: float, minus: float) -> float:
    if plus <= 0.0 or minus >= 1.0:
        return 0.0
    return float(characterization_score(torch.tensor(plus), torch.tensor(minus)))


def fidelity_table(
    models: dict[str, CrystalModel],
    graphs: dict[str, list[Data]],
    methods: Sequence[str],
    *,
    ks: Sequence[int] = KS,
    what: Sequence[str] = ("atoms", "bonds"),
    n_random: int = 10,
    output: int = 0,
    epochs: int = 100,
    seed: int = 0,
) -> Any:
    """The table explainers x models: per (model, method, atoms|bonds, k) the mean fidelity of
    the explanations and of random masks of the same size over the structures, and the explainer's
    seconds per structure.

    Args:
        models: name -> trained graph-level model.
        graphs: name -> the graphs to explain with that model (built with its graph config).
        methods: explainers (:data:`~crystalgnn.explain.instance.METHODS`).

    Returns:
        a pandas DataFrame; regression columns ``delta``, ``delta_random``, ``ratio`` (delta /
        delta_random), ``win_rate``; classification ``fid_plus``, ``fid_minus``,
        ``characterization`` and the same with suffix ``_random``.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for name, model in models.items():
        model.eval()
        wrapped = ExplainableModel(model, output=output)
        try:
            for method in methods:
                explainer = make_explainer(wrapped, method, epochs=epochs)
                rng = np.random.default_rng(seed)
                per: list[dict[str, Any]] = []
                seconds = []
                for g in graphs[name]:
                    torch.manual_seed(seed)
                    expl = explain_graph(wrapped, g, method, explainer=explainer)
                    seconds.append(expl.seconds)
                    for w in what:
                        if model.task == "regression":
                            res = regression_fidelity(wrapped, g, expl, what=w, ks=ks, n_random=n_random, rng=rng)
                        else:
                            res = classification_fidelity(explainer, g, expl, what=w, ks=ks, n_random=n_random, rng=rng)
                        per.extend({"what": w, **r} for r in res)
                df = pd.DataFrame(per)
                for (w, k), grp in df.groupby(["what", "k"], sort=False):
                    row: dict[str, Any] = {"model": name, "method": method, "what": w, "k": k,
                                           "n_structures": len(grp), "mean_size": float(grp["size"].mean())}  # fmt: skip
                    if model.task == "regression":
                        row["delta"] = float(grp["delta"].mean())
                        row["delta_random"] = float(grp["delta_random"].mean())
                        row["ratio"] = row["delta"] / row["delta_random"] if row["delta_random"] > 0 else math.nan
                        row["win_rate"] = float((grp["delta"] > grp["delta_random"]).mean())
                    else:
                        for suffix in ("", "_random"):
                            plus, minus = (
                                float(grp[f"fid_plus{suffix}"].mean()),
                                float(grp[f"fid_minus{suffix}"].mean()),
                            )
                            row[f"fid_plus{suffix}"], row[f"fid_minus{suffix}"] = plus, minus
                            row[f"characterization{suffix}"] = _characterization(plus, minus)
                    row["seconds_per_structure"] = float(np.mean(seconds))
                    rows.append(row)
        finally:
            wrapped.remove()
    return pd.DataFrame(rows)


__all__ = ["KS", "classification_fidelity", "fidelity_table", "random_masks", "regression_fidelity", "top_k_mask"]
