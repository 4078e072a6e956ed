"""Per-site models: any registered model's atom embeddings + a per-atom fully-connected head.

This is the per-site CGCNN of Karaguesian, Lunger, Shao-Horn & Gómez-Bombarelli (NeurIPS ML4PS
2021): the CGCNN convolution stack without pooling, followed by fully-connected layers applied
to every atom. Nothing of the backbone is copied: the registered model class is instantiated
and only its ``node_embeddings(batch)`` is used. Backbone parameters that ``node_embeddings``
does not touch (CGCNN's post-pooling layers) are found with one dry run on a two-atom crystal
and frozen, so they are neither trained nor counted.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crystalgnn.models.registry import build_model, make_config


class SiteHead(nn.Module):
    r"""Fully-connected layers applied to each atom: :math:`\hat y_i = W_o g(\ldots g(W_1 g(v_i)))`.

    ``g`` is softplus, as in CGCNN's post-pooling network (``conv_to_fc`` -> ``n_h - 1`` hidden
    layers -> output), here without pooling.

    Shapes:
        (|V|, in_dim) -> (|V|, out_dim)
    """

    def __init__(self, in_dim: int, hidden: int = 128, n_h: int = 1, out_dim: int = 1) -> None:
        super().__init__()
        if n_h < 1:
            raise ValueError("n_h (hidden layers of the per-site head) must be >= 1")
        self.fc_in = nn.Linear(in_dim, hidden)
        self.fcs = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(n_h - 1))
        self.fc_out = nn.Linear(hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        h = F.softplus(self.fc_in(F.softplus(x)))
        for fc in self.fcs:
            h = F.softplus(fc(h))
        return self.fc_out(h)


def _probe_batch(graph_config: Any) -> Any:
    """A two-atom rock-salt crystal as a one-graph batch, built with the model's graph config."""
    from pymatgen.core import Lattice, Structure
    from torch_geometric.data import Batch

    from crystalgnn.graphs.crystal_graph import build_graph

    s = Structure(Lattice.cubic(2.82), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return Batch.from_data_list([build_graph(s, graph_config)])


class SiteModel(nn.Module):
    """A registered backbone's ``node_embeddings`` followed by a :class:`SiteHead`.

    Args:
        model_name: registry name of the backbone (``cgcnn`` by default).
        model_config: the backbone's config (dict or dataclass).
        atom_table: (max_Z + 1, F) atom-feature table.
        head_hidden: width of the per-site hidden layers.
        head_layers: number of per-site hidden layers.
        out_dim: outputs per site.

    Shapes:
        batch with ``z`` (|V|,), ``edge_index``, ``edge_dist``, ``batch`` -> (|V|, out_dim)
    """

    def __init__(
        self,
        model_name: str,
        model_config: Any,
        atom_table: Tensor,
        *,
        head_hidden: int = 128,
        head_layers: int = 1,
        out_dim: int = 1,
    ) -> None:
        super().__init__()
        cfg = make_config(model_name, model_config) if isinstance(model_config, dict) else model_config
        self.backbone = build_model(model_name, cfg, atom_table, out_dim=1, task="regression")
        if not hasattr(self.backbone, "node_embeddings"):
            raise TypeError(f"model {model_name!r} has no node_embeddings(batch); it cannot make per-site predictions")
        emb_dim = self._freeze_unused(cfg)
        self.head = SiteHead(emb_dim, head_hidden, head_layers, out_dim)

    def _freeze_unused(self, cfg: Any) -> int:
        """Dry-run ``node_embeddings``; freeze backbone parameters it does not use; return its width."""
        was_training = self.backbone.training
        self.backbone.eval()  # no batch-norm statistics are updated by the probe
        params = [p for p in self.backbone.parameters() if p.requires_grad]
        with torch.enable_grad():
            emb = self.backbone.node_embeddings(_probe_batch(cfg.graph_config()))
            grads = torch.autograd.grad(emb.sum(), params, allow_unused=True)
        for p, g in zip(params, grads, strict=True):
            if g is None:
                p.requires_grad_(False)
        self.backbone.train(was_training)
        return int(emb.shape[-1])

    def node_embeddings(self, batch: Any) -> Tensor:
        return self.backbone.node_embeddings(batch)

    def forward(self, batch: Any) -> Tensor:
        return self.head(self.backbone.node_embeddings(batch))

    def n_parameters(self) -> int:
        """Trainable parameters (frozen, unused backbone layers are not counted)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
