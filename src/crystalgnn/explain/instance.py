r"""Instance explanations: which atoms and bonds a zoo model's prediction for one structure rests on.

Three explainers of ``torch_geometric.explain`` on :class:`~crystalgnn.explain.masks.ExplainableModel`:

* ``gnnexplainer``: GNNExplainer (Ying et al., NeurIPS 2019), soft node and edge masks
  :math:`\sigma(\nu), \sigma(\mu)` trained to keep the prediction (MSE for regression,
  cross-entropy for classification) with size and entropy penalties;
* ``ig``: Integrated Gradients (Sundararajan et al., ICML 2017) through Captum,
  :math:`(m_k - 0) \int_0^1 \partial f(\alpha m)/\partial m_k \, d\alpha` for the all-ones
  node and edge masks :math:`m` against the fully masked baseline;
* ``saliency``: :math:`|\partial f / \partial m_k|` at :math:`m = 1` (Simonyan et al. 2014).

Atom importances are the node masks (atoms masked after embedding), bond importances the edge
masks (messages removed). Importance is the magnitude (GNNExplainer's masks are in [0, 1];
Integrated Gradients keeps its sign in ``atom_attribution`` / ``edge_attribution``). A crystal
bond is one undirected pair with a periodic image; the graphs hold it as up to two directed
edges (k-nearest-neighbour graphs are not symmetric), and a bond's importance is the **maximum**
over its directions (a bond only one of its atoms counts among its neighbours is not halved).
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pymatgen.core import Element
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.explain import Explainer

from crystalgnn.explain.masks import ExplainableModel, as_batch, reset_edge_masks
from crystalgnn.models.base import CrystalModel

METHODS: tuple[str, ...] = ("gnnexplainer", "ig", "saliency")


def make_explainer(wrapped: ExplainableModel, method: str, *, epochs: int = 100) -> Explainer:
    """PyG's :class:`~torch_geometric.explain.Explainer` for ``method`` (one of :data:`METHODS`)
    with node masks on atoms (``attributes`` of the (|V|, 1) ``x``) and edge masks on bonds.
    """
    from torch_geometric.explain.algorithm import CaptumExplainer, GNNExplainer

    algorithm: Any
    if method in ("ig", "saliency") and importlib.util.find_spec("captum") is None:
        raise ImportError(f"--method {method} needs captum: pip install 'crystalgnn[explain]'")
    if method == "gnnexplainer":
        algorithm = GNNExplainer(epochs=epochs)
    elif method == "ig":
        algorithm = CaptumExplainer("IntegratedGradients")
    elif method == "saliency":
        algorithm = CaptumExplainer("Saliency")
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    mode = "regression" if wrapped.task == "regression" else "multiclass_classification"
    return Explainer(
        wrapped,
        algorithm,
        explanation_type="model",
        node_mask_type="attributes",
        edge_mask_type="object",
        model_config={"mode": mode, "task_level": "graph", "return_type": "raw"},
    )


@dataclass
class StructureExplanation:
    """One structure's explanation.

    Attributes:
        id: the structure's id.
        method: the explainer.
        elements: element symbol per atom.
        positions: Cartesian positions (|V|, 3) in Å.
        prediction: the model's output (regression value, or predicted class).
        atom_attribution / atom_importance: per atom, signed and magnitude (|V|,).
        edge_index: the explained directed edges (2, |E|), messages ``edge_index[0] -> [1]``.
        edge_vec: their vectors (|E|, 3) in Å (periodic image included).
        edge_attribution / edge_importance: per directed edge (|E|,).
        seconds: wall time of the explainer.
        lattice: the cell (3, 3) in Å, rows are lattice vectors (``None`` if unknown).
    """

    id: str
    method: str
    elements: list[str]
    positions: np.ndarray
    prediction: float
    atom_attribution: np.ndarray
    atom_importance: np.ndarray
    edge_index: np.ndarray
    edge_vec: np.ndarray
    edge_attribution: np.ndarray
    edge_importance: np.ndarray
    seconds: float
    lattice: np.ndarray | None = None

    def atoms(self) -> Any:
        """Per-atom table, most important first: site, element, x, y, z, importance, attribution, rank."""
        import pandas as pd

        df = pd.DataFrame(
            {
                "id": self.id,
                "site": np.arange(len(self.elements)),
                "element": self.elements,
                "x": self.positions[:, 0],
                "y": self.positions[:, 1],
                "z": self.positions[:, 2],
                "importance": self.atom_importance,
                "attribution": self.atom_attribution,
            }
        )
        df = df.sort_values("importance", ascending=False, kind="stable")
        df["rank"] = np.arange(1, len(df) + 1)
        return df.reset_index(drop=True)

    def bonds(self) -> Any:
        """Per undirected bond (max over its directions), most important first: site_i,
        site_j (i <= j), elements, length (Å), importance, attribution, directions (1 or 2),
        dx, dy, dz (vector from site_i to the bonded image of site_j, Å), rank.
        """
        import pandas as pd

        keys = undirected_bond_keys(self.edge_index, self.edge_vec)
        df = pd.DataFrame(
            {
                "key": keys,
                "site_i": np.minimum(self.edge_index[0], self.edge_index[1]),
                "site_j": np.maximum(self.edge_index[0], self.edge_index[1]),
                "length": np.linalg.norm(self.edge_vec, axis=1),
                "importance": self.edge_importance,
                "attribution": self.edge_attribution,
            }
        )
        best = df.loc[df.groupby("key", sort=False)["importance"].idxmax()].copy()
        best["directions"] = df.groupby("key", sort=False).size().loc[best["key"]].to_numpy()
        best["id"] = self.id
        best["element_i"] = [self.elements[i] for i in best["site_i"]]
        best["element_j"] = [self.elements[j] for j in best["site_j"]]
        vec = np.array([k[2:] for k in best["key"]], dtype=np.float64).reshape(-1, 3)
        best["dx"], best["dy"], best["dz"] = vec[:, 0], vec[:, 1], vec[:, 2]  # site_i -> image of site_j
        best = best.drop(columns="key").sort_values("importance", ascending=False, kind="stable")
        best["rank"] = np.arange(1, len(best) + 1)
        columns = ["id", "site_i", "element_i", "site_j", "element_j", "length", "importance", "attribution",
                   "directions", "dx", "dy", "dz", "rank"]  # fmt: skip
        return best[columns].reset_index(drop=True)


def undirected_bond_keys(edge_index: np.ndarray, edge_vec: np.ndarray, decimals: int = 3) -> list[tuple[Any, ...]]:
    """A key per directed edge, equal for the two directions of one bond: (i, j, vector from i
    to the image of j) with i <= j (for i == j the vector's sign is fixed lexicographically),
    rounded. ``edge_vec`` points from ``edge_index[0]`` to the image of ``edge_index[1]``.
    """
    src, dst = edge_index
    vec = np.round(np.asarray(edge_vec, dtype=np.float64), decimals) + 0.0
    keys = []
    for s, d, v in zip(src.tolist(), dst.tolist(), vec, strict=True):
        # the reverse direction of a bond has the opposite vector
        if s > d or (s == d and tuple(-v) > tuple(v)):
            s, d, v = d, s, -v
        keys.append((s, d, *np.round(v, decimals).tolist()))
    return keys


def edge_vectors(model: CrystalModel, batch: Batch) -> Tensor:
    """Vectors of the explained edges (ALIGNN: its undirected copies)."""
    graphs = getattr(model.encoder, "graphs", None)
    if graphs is not None:
        vec: Tensor = graphs(batch)[1]
        return vec
    out: Tensor = batch.edge_vec
    return out


def explain_graph(
    wrapped: ExplainableModel,
    data: Data,
    method: str,
    *,
    structure_id: str = "",
    explainer: Explainer | None = None,
    epochs: int = 100,
) -> StructureExplanation:
    """Explain the model's prediction for one crystal graph with ``method``."""
    explainer = explainer or make_explainer(wrapped, method, epochs=epochs)
    batch = as_batch(data)
    n = int(batch.num_nodes)
    edge_index = wrapped.edge_index(batch)
    x = torch.ones(n, 1)
    with torch.no_grad():
        out = wrapped(x, edge_index, batch)
    prediction = float(out[0, 0]) if wrapped.task == "regression" else float(out[0].argmax())
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():  # Captum: "Input Tensor 0 did not already require gradients"
            warnings.filterwarnings("ignore", message="Input Tensor", category=UserWarning)
            expl = explainer(x, edge_index, batch=batch)
    finally:
        reset_edge_masks(wrapped)
    seconds = time.perf_counter() - start
    node = expl.node_mask.detach().view(n).double().numpy()
    edge = expl.edge_mask.detach().view(-1).double().numpy()
    return StructureExplanation(
        id=structure_id,
        method=method,
        elements=[Element.from_Z(int(z)).symbol for z in batch.z],
        positions=batch.pos.detach().numpy().astype(np.float64),
        prediction=prediction,
        atom_attribution=node,
        atom_importance=np.abs(node),
        edge_index=edge_index.numpy(),
        edge_vec=edge_vectors(wrapped.model, batch).detach().numpy().astype(np.float64),
        edge_attribution=edge,
        edge_importance=np.abs(edge),
        seconds=seconds,
        lattice=batch.lattice[0].detach().numpy().astype(np.float64) if "lattice" in batch else None,
    )


def explain_graphs(
    model: CrystalModel,
    graphs: list[Data],
    ids: list[str],
    method: str,
    *,
    output: int = 0,
    epochs: int = 100,
) -> list[StructureExplanation]:
    """Explain every graph (one structure each) of a data set with ``method``."""
    model.eval()
    wrapped = ExplainableModel(model, output=output)
    try:
        explainer = make_explainer(wrapped, method, epochs=epochs)
        return [
            explain_graph(wrapped, g, method, structure_id=i, explainer=explainer)
            for g, i in zip(graphs, ids, strict=True)
        ]
    finally:
        wrapped.remove()


def explain_dataset(
    predictor: Any, data: Any, method: str, *, target: str | None = None, epochs: int = 100
) -> tuple[list[StructureExplanation], list[Any]]:
    """Explain a :class:`~crystalgnn.prediction.Predictor`'s predictions for every structure of
    ``data`` (a :class:`~crystalgnn.data.dataset.CrystalDataset`).

    Returns the explanations and the rejected entries (unreadable, or without a graph).
    """
    from crystalgnn.prediction.predictor import predictable_graphs

    if predictor.level != "graph":
        raise ValueError("instance explanations need a graph-level model; per-site models: crystalgnn explain sites")
    output = 0
    if target is not None:
        if target not in predictor.targets:
            raise ValueError(f"unknown target {target!r}; the model predicts {', '.join(predictor.targets)}")
        output = predictor.targets.index(target)
    graphs, keep, rejected = predictable_graphs(
        data, predictor.graph_config, predictor.supported_elements(), show_progress=False
    )
    ids = [data.ids[i] for i in keep]
    return explain_graphs(predictor.task.model, graphs, ids, method, output=output, epochs=epochs), rejected


__all__ = [
    "METHODS", "StructureExplanation", "edge_vectors", "explain_dataset", "explain_graph", "explain_graphs",
    "make_explainer", "undirected_bond_keys",
]  # fmt: skip
