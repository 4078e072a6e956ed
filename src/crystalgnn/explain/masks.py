r"""A zoo model seen the way ``torch_geometric.explain`` expects: ``forward(x, edge_index, batch)``.

PyG's explainers (Ying et al., "GNNExplainer", NeurIPS 2019; Captum's attribution methods
through :class:`~torch_geometric.explain.algorithm.CaptumExplainer`) perturb two things:

* a **node mask** :math:`\nu \in R^{|V| \times 1}` multiplied into ``x``. Our models read atomic
  numbers, not ``x``, so :class:`ExplainableModel` passes ``x = 1`` (|V|, 1) and a forward hook
  multiplies it into the output of the encoder's atom embedding
  (:meth:`~crystalgnn.models.base.Encoder.atom_embedding_module`): the embedded atom features
  become :math:`\nu_i \mathbf v_i^{(0)}`, a zero masks the atom after embedding;
* an **edge mask** :math:`\mu \in R^{|E|}` that
  :func:`~torch_geometric.explain.algorithm.utils.set_masks` puts on every
  :class:`~torch_geometric.nn.MessagePassing` layer; every convolution of CGCNN, MEGNet, SchNet
  and ALIGNN (atom graph) multiplies its messages by it before aggregation
  (:func:`~crystalgnn.models.base.explain_edge_mask`), so a zero removes the message.

The edges are the encoder's :meth:`~crystalgnn.models.base.Encoder.explain_edge_index` (the
batch's directed bonds; for ALIGNN the undirected copies its atom-graph layers use).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from torch_geometric.data import Batch, Data
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks
from torch_geometric.nn import MessagePassing

from crystalgnn.models.base import CrystalModel


class ExplainableModel(nn.Module):
    r"""A :class:`~crystalgnn.models.base.CrystalModel` with PyG's explainer signature.

    ``forward(x, edge_index, batch)`` returns the model's output on ``batch`` with the atoms'
    embedded features scaled by ``x`` (|V|, 1); ``edge_index`` is only read by PyG (to set
    edge masks) and must be :meth:`edge_index` of the batch. Wrapping puts the model in eval
    mode.

    Args:
        model: a graph-level model (one output per structure).
        output: the regression target column to explain (classification: all logits are
            returned, PyG picks the class).

    Shapes:
        x (|V|, 1), edge_index (2, |E|) -> (B, 1) for regression, (B, C) logits for classification
    """

    def __init__(self, model: CrystalModel, output: int = 0) -> None:
        super().__init__()
        if model.level != "graph":
            raise ValueError("instance explanations need a graph-level model (one output per structure)")
        self.model = model
        self.output = output
        self._scale: Tensor | None = None
        self._hook: RemovableHandle = model.encoder.atom_embedding_module().register_forward_hook(self._scale_atoms)
        # explanations read the trained model (batch norm running statistics, no dropout); PyG's
        # Explainer restores the wrapper's own mode afterwards, so it must be eval too
        self.eval()

    @property
    def task(self) -> str:
        return self.model.task

    def _scale_atoms(self, module: nn.Module, inputs: Any, out: Tensor) -> Tensor:
        if self._scale is None:
            return out
        if self._scale.shape[0] != out.shape[0]:
            raise ValueError(f"node mask has {self._scale.shape[0]} rows for {out.shape[0]} atoms")
        return out * self._scale.view(out.shape[0], -1).to(out.dtype)

    def edge_index(self, batch: Batch) -> Tensor:
        """The bonds edge masks are indexed by (the convolutions' own edges)."""
        return self.model.encoder.explain_edge_index(batch)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Batch) -> Tensor:
        self._scale = x
        try:
            out: Tensor = self.model(batch)
        finally:
            self._scale = None
        if self.model.task == "regression":
            return out[:, self.output : self.output + 1]
        return out

    def remove(self) -> None:
        """Detach the hook from the wrapped model and clear its masks."""
        self._hook.remove()
        reset_edge_masks(self.model)


def reset_edge_masks(model: nn.Module) -> None:
    """Clear the edge masks of every message-passing layer, including the parameter slot
    GNNExplainer's :class:`~torch.nn.Parameter` mask leaves behind: otherwise a later
    :func:`set_masks` wraps a plain mask into a new parameter and Captum's gradients with
    respect to the mask it passed are lost.
    """
    clear_masks(model)
    for module in model.modules():
        if isinstance(module, MessagePassing) and "_edge_mask" in module._parameters:
            del module._parameters["_edge_mask"]
            module._edge_mask = None


def as_batch(data: Data | Batch) -> Batch:
    """One graph as a batch of one (models read ``batch``/``num_graphs``)."""
    return data if isinstance(data, Batch) else Batch.from_data_list([data])


@torch.no_grad()
def masked_prediction(
    wrapped: ExplainableModel, batch: Batch, node_mask: Tensor | None = None, edge_mask: Tensor | None = None
) -> Tensor:
    """The model's output with atoms scaled by ``node_mask`` (|V|,) and messages by
    ``edge_mask`` (|E|,) (1 keeps, 0 removes), as :meth:`Explainer.get_masked_prediction`.
    """
    n = int(batch.num_nodes)
    x = torch.ones(n, 1) if node_mask is None else node_mask.view(n, 1).float()
    edge_index = wrapped.edge_index(batch)
    if edge_mask is not None:
        set_masks(wrapped, edge_mask.float(), edge_index, apply_sigmoid=False)
    try:
        return wrapped(x, edge_index, batch)
    finally:
        clear_masks(wrapped)


__all__ = ["ExplainableModel", "as_batch", "masked_prediction", "reset_edge_masks"]
