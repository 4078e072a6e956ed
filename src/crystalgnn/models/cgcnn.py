"""CGCNN: Crystal Graph Convolutional Neural Network (Xie & Grossman, PRL 120, 145301, 2018).

embedding -> R graph convolutions -> mean pooling -> L2 hidden layers -> output, with the same
layer names, initialisation and batch-norm placement as the reference implementation
(``txie-93/cgcnn``), so its checkpoints map one to one (see :mod:`crystalgnn.models.cgcnn_import`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import global_mean_pool

from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.models.layers import CrystalModel, GaussianExpansion, ModelConfig, uniform_degree
from crystalgnn.models.registry import register_model


@dataclass(frozen=True)
class CGCNNConfig(ModelConfig):
    """CGCNN hyper-parameters; names and defaults as the original CLI (``main.py``).

    Args:
        atom_fea_len: hidden atom feature size F (64).
        h_fea_len: hidden size after pooling (128).
        n_conv: number of convolution layers R (3).
        n_h: number of hidden layers after pooling L2 (1).
        conv: ``"gated"`` (Eq. 5, default) or ``"shared"`` (Eq. 4: one weight, no gate).
        radius: neighbour cutoff (Å); also the last Gaussian centre.
        max_num_nbr: neighbours kept per atom (12).
        step: Gaussian centre spacing and width (0.2 Å -> 41 features).
        pad_to_max_neighbors: build graphs with the reference code's zero padding (only for
            imported original checkpoints).
        dropout: dropout before the hidden layers, classification only (reference: 0.5).
    """

    atom_fea_len: int = 64
    h_fea_len: int = 128
    n_conv: int = 3
    n_h: int = 1
    conv: Literal["gated", "shared"] = "gated"
    radius: float = 8.0
    max_num_nbr: int = 12
    step: float = 0.2
    pad_to_max_neighbors: bool = False
    dropout: float = 0.5

    def graph_config(self) -> GraphConfig:
        return GraphConfig(
            radius=self.radius, max_neighbors=self.max_num_nbr, pad_to_max_neighbors=self.pad_to_max_neighbors
        )


class CGConvLayer(nn.Module):
    r"""The gated crystal graph convolution of CGCNN (Eq. 5), with the reference batch norms.

    .. math::
        z_{ij} = v_i \oplus v_j \oplus u_{ij}, \qquad
        [f_{ij}, s_{ij}] = \mathrm{BN}_1(z_{ij} W + b)

        v_i' = g\Big(v_i + \mathrm{BN}_2\big(\textstyle\sum_j \sigma(f_{ij}) \odot g(s_{ij})\big)\Big)

    where :math:`\sigma` is the sigmoid, :math:`g` softplus, :math:`W \in R^{(2F+G) \times 2F}`
    (``fc_full``). PyG's ``CGConv`` implements the same gate but without the two batch norms and
    the outer softplus of the reference code, so it cannot load the original weights; this layer
    keeps ``fc_full``/``bn1``/``bn2`` names. The product :math:`z_{ij} W` is evaluated as
    :math:`v_i W_a + v_j W_b + u_{ij} W_c` (node terms computed once per atom, not per edge),
    which is the same number with 4x fewer multiplications.

    With ``shared=True`` (Eq. 4) there is no gate: :math:`v_i' = g(v_i W_s +
    \mathrm{BN}(\sum_j (v_j \oplus u_{ij}) W_c) + b)`.

    Args:
        channels: atom feature size F.
        edge_dim: edge feature size G.
        shared: use Eq. 4 instead of Eq. 5.

    Shapes:
        x (|V|, F), edge_index (2, |E|), edge_attr (|E|, G) -> (|V|, F)
    """

    def __init__(self, channels: int, edge_dim: int, shared: bool = False) -> None:
        super().__init__()
        self.channels, self.edge_dim, self.shared = channels, edge_dim, shared
        if shared:
            self.fc_nbr = nn.Linear(channels + edge_dim, channels)
            self.fc_self = nn.Linear(channels, channels, bias=True)
            self.bn = nn.BatchNorm1d(channels)
        else:
            self.fc_full = nn.Linear(2 * channels + edge_dim, 2 * channels)
            self.bn1 = nn.BatchNorm1d(2 * channels)
            self.bn2 = nn.BatchNorm1d(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.children():
            m.reset_parameters()  # type: ignore[operator]

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, degree: int | None = None) -> Tensor:
        """``degree=k`` declares that the edges are sorted by centre atom with exactly ``k`` per
        atom (:func:`~crystalgnn.models.layers.uniform_degree`); the centre terms are then
        broadcast and the sum over neighbours is a dense reduction instead of a scatter (same
        numbers, faster)."""
        src, dst = edge_index
        n, F_ = x.shape[0], self.channels
        if self.shared:
            w = self.fc_nbr.weight
            msg = (x @ w[:, :F_].T).index_select(0, src) + torch.addmm(self.fc_nbr.bias, edge_attr, w[:, F_:].T)
            agg = self._sum_at_centre(msg, dst, n, degree)
            return F.softplus(self.fc_self(x) + self.bn(agg))
        w = self.fc_full.weight
        node_self = x @ w[:, :F_].T  # v_i W_a, once per atom
        node_nbr = x @ w[:, F_ : 2 * F_].T  # v_j W_b, once per atom
        # index_select (backward: index_add) is several times faster on CPU than x[idx]
        gated = torch.addmm(self.fc_full.bias, edge_attr, w[:, 2 * F_ :].T) + node_nbr.index_select(0, src)
        if degree is None:
            gated = gated + node_self.index_select(0, dst)
        else:
            gated = (gated.view(n, degree, 2 * F_) + node_self.unsqueeze(1)).view(-1, 2 * F_)
        gated = self.bn1(gated)
        filt, core = gated.chunk(2, dim=1)
        msg = torch.sigmoid(filt) * F.softplus(core)
        summed = self._sum_at_centre(msg, dst, n, degree)
        return F.softplus(x + self.bn2(summed))

    @staticmethod
    def _sum_at_centre(msg: Tensor, dst: Tensor, n: int, degree: int | None) -> Tensor:
        if degree is not None:
            return msg.view(n, degree, -1).sum(dim=1)
        return msg.new_zeros(n, msg.shape[1]).index_add_(0, dst, msg)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, edge_dim={self.edge_dim}, shared={self.shared})"


@register_model("cgcnn", CGCNNConfig, "Crystal Graph Convolutional Neural Network (Xie & Grossman 2018)")
class CGCNN(CrystalModel):
    r"""Crystal Graph Convolutional Neural Network.

    .. math::
        v_i^{(0)} = x_i W_e + b_e, \quad v^{(t+1)} = \mathrm{Conv}(v^{(t)}),\quad
        v_c = \frac{1}{|V|}\sum_i v_i^{(R)}, \quad
        \hat y = W_o\, g(\ldots g(W_1 g(v_c) + b_1) \ldots) + b_o

    with :math:`x_i` the fixed element features (92-dim one-hot table), ``Conv`` the layer
    :class:`CGConvLayer` and :math:`g` softplus.

    Args:
        config: hyper-parameters.
        atom_table: (max_Z + 1, 92) atom feature table (rows of unsupported elements are NaN).
        out_dim: regression targets, or classes for classification.
        task: ``"regression"`` or ``"classification"``.

    Shapes:
        batch with ``z`` (|V|,), ``edge_index`` (2, |E|), ``edge_dist`` (|E|,), ``batch`` (|V|,)
        -> (B, out_dim) (regression values, or class logits)
    """

    config: CGCNNConfig

    def build(self, config: CGCNNConfig) -> None:
        self.expansion = GaussianExpansion(0.0, config.radius, config.step)
        n_edge = self.expansion.num_features
        self.embedding = nn.Linear(self.atom_features.num_features, config.atom_fea_len)
        self.convs = nn.ModuleList(
            CGConvLayer(config.atom_fea_len, n_edge, shared=config.conv == "shared") for _ in range(config.n_conv)
        )
        self.conv_to_fc = nn.Linear(config.atom_fea_len, config.h_fea_len)
        self.fcs = nn.ModuleList(nn.Linear(config.h_fea_len, config.h_fea_len) for _ in range(config.n_h - 1))
        self.dropout = nn.Dropout(config.dropout if self.task == "classification" else 0.0)
        self.fc_out = nn.Linear(config.h_fea_len, self.out_dim)

    def reset_parameters(self) -> None:
        for m in (self.embedding, self.conv_to_fc, self.fc_out, *self.convs, *self.fcs):
            m.reset_parameters()

    def node_embeddings(self, batch: Batch) -> Tensor:
        """Atom features after the convolutions, before pooling: (|V|, atom_fea_len)."""
        x = self.embedding(self.atom_features(batch.z))
        edge_attr = self.expansion(batch.edge_dist)
        degree = uniform_degree(batch.edge_index[1], x.shape[0])
        for conv in self.convs:
            x = conv(x, batch.edge_index, edge_attr, degree)
        return x

    def head(self, pooled: Tensor) -> Tensor:
        """The post-pooling network (``conv_to_fc`` -> hidden layers -> ``fc_out``)."""
        h = F.softplus(self.conv_to_fc(F.softplus(pooled)))
        h = self.dropout(h)
        for fc in self.fcs:
            h = F.softplus(fc(h))
        return self.fc_out(h)

    def forward(self, batch: Batch) -> Tensor:
        x = self.node_embeddings(batch)
        pooled = global_mean_pool(x, batch.batch, size=batch.num_graphs)
        return self.head(pooled)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"CGCNN(atom_fea_len={c.atom_fea_len}, h_fea_len={c.h_fea_len}, n_conv={c.n_conv}, "
            f"n_h={c.n_h}, conv={c.conv}, out_dim={self.out_dim}, task={self.task})"
        )
