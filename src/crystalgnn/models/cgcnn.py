"""CGCNN: Crystal Graph Convolutional Neural Network (Xie & Grossman, PRL 120, 145301, 2018).

Encoder: embedding -> R graph convolutions; graph readout: mean pooling -> L2 hidden layers ->
output. Same layer names, initialisation and batch-norm placement as the reference implementation
(``txie-93/cgcnn``), so its checkpoints map one to one (see :mod:`crystalgnn.models.cgcnn_import`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing, global_mean_pool

from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.models.base import Encoder, Encoding, GraphReadout, ModelConfig, explain_edge_mask
from crystalgnn.models.basis import GaussianBasis
from crystalgnn.models.readouts import SoftplusMLP


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
        max_neighbors: neighbours kept per atom (12; the reference's ``max_num_nbr``).
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
    max_neighbors: int = 12
    step: float = 0.2
    pad_to_max_neighbors: bool = False
    dropout: float = 0.5

    def graph_config(self) -> GraphConfig:
        return GraphConfig(
            radius=self.radius, max_neighbors=self.max_neighbors, pad_to_max_neighbors=self.pad_to_max_neighbors
        )


class CGConvLayer(MessagePassing):  # type: ignore[misc]  # PyG is untyped
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

    In evaluation without gradients (prediction) the gated layer folds ``BN_1``'s running
    statistics into ``W`` and ``b`` (:meth:`folded_weights`) and lets the matrix product
    accumulate into the gathered neighbour terms, which removes three passes over the
    per-edge tensor; the numbers agree with the training-time formula to float rounding.

    With ``shared=True`` (Eq. 4) there is no gate: :math:`v_i' = g(v_i W_s +
    \mathrm{BN}(\sum_j (v_j \oplus u_{ij}) W_c) + b)`.

    A :class:`~torch_geometric.nn.MessagePassing` that keeps its own forward: under PyG's
    explain protocol each message (:math:`\sigma(f_{ij}) \odot g(s_{ij})`, or :math:`(v_j
    \oplus u_{ij}) W_c` for Eq. 4) is multiplied by the edge mask before the sum, where
    ``propagate`` would (:func:`~crystalgnn.models.base.explain_edge_mask`).

    Args:
        channels: atom feature size F.
        edge_dim: edge feature size G.
        shared: use Eq. 4 instead of Eq. 5.

    Shapes:
        x (|V|, F), edge_index (2, |E|), edge_attr (|E|, G) -> (|V|, F)
    """

    def __init__(self, channels: int, edge_dim: int, shared: bool = False) -> None:
        super().__init__(aggr="add")
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
            m.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, degree: int | None = None) -> Tensor:
        """``degree=k`` declares that the edges are sorted by centre atom with exactly ``k`` per
        atom (:func:`uniform_degree`); the centre terms are then
        broadcast and the sum over neighbours is a dense reduction instead of a scatter (same
        numbers, faster).
        """
        src, dst = edge_index
        n, F_ = x.shape[0], self.channels
        if self.shared:
            w = self.fc_nbr.weight
            msg = (x @ w[:, :F_].T).index_select(0, src) + torch.addmm(self.fc_nbr.bias, edge_attr, w[:, F_:].T)
            mask = explain_edge_mask(self, msg.shape[0])
            if mask is not None:
                msg = msg * mask
            agg = self._sum_at_centre(msg, dst, n, degree)
            return F.softplus(self.fc_self(x) + self.bn(agg))
        if not (self.training or torch.is_grad_enabled() or self.explain):
            return self._predict(x, src, dst, edge_attr, degree)
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
        mask = explain_edge_mask(self, msg.shape[0])
        if mask is not None:
            msg = msg * mask
        summed = self._sum_at_centre(msg, dst, n, degree)
        return F.softplus(x + self.bn2(summed))

    def folded_weights(self) -> tuple[Tensor, Tensor]:
        """``fc_full`` with ``bn1`` (evaluation mode) folded in: ``BN_1(z W^T + b) = z W'^T + b'``
        with ``s = gamma / sqrt(var + eps)``, ``W' = s W`` (per output row), ``b' = s (b - mean) + beta``.
        """
        bn = self.bn1
        assert bn.running_mean is not None and bn.running_var is not None
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        bias = (self.fc_full.bias - bn.running_mean) * scale
        if bn.bias is not None:
            bias = bias + bn.bias
        return self.fc_full.weight * scale.unsqueeze(1), bias

    def _predict(self, x: Tensor, src: Tensor, dst: Tensor, edge_attr: Tensor, degree: int | None) -> Tensor:
        """The gated layer in evaluation mode without gradients (same numbers as ``forward``)."""
        F_, n = self.channels, x.shape[0]
        w, b = self.folded_weights()
        node_self = x @ w[:, :F_].T
        node_nbr = torch.addmm(b, x, w[:, F_ : 2 * F_].T)  # the bias once per atom
        # the GEMM accumulates into the gathered neighbour terms (beta = 1)
        gated = torch.addmm(node_nbr.index_select(0, src), edge_attr, w[:, 2 * F_ :].T)
        if degree is None:
            gated.add_(node_self.index_select(0, dst))
        else:
            gated.view(n, degree, 2 * F_).add_(node_self.unsqueeze(1))
        filt, core = gated.chunk(2, dim=1)
        msg = torch.sigmoid(filt).mul_(F.softplus(core))
        summed = self._sum_at_centre(msg, dst, n, degree)
        return F.softplus(x + self.bn2(summed))

    @staticmethod
    def _sum_at_centre(msg: Tensor, dst: Tensor, n: int, degree: int | None) -> Tensor:
        if degree is not None:
            return msg.view(n, degree, -1).sum(dim=1)
        return msg.new_zeros(n, msg.shape[1]).index_add_(0, dst, msg)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, edge_dim={self.edge_dim}, shared={self.shared})"


def uniform_degree(centre: Tensor, num_nodes: int) -> int | None:
    """``k`` when the edges are grouped by centre atom in order ``0, 1, ..`` with exactly ``k``
    per atom (CGCNN's k-nearest-neighbour graphs, ``centre = edge_index[1]``), else ``None``.

    Such edges can be viewed as a dense (N, k, C) block (the reference CGCNN's padded layout),
    which turns per-edge gathers and scatters of centre atoms into broadcasts and sums.
    """
    e = centre.numel()
    if num_nodes == 0 or e == 0 or e % num_nodes:
        return None
    k = e // num_nodes
    expected = torch.arange(num_nodes, device=centre.device).repeat_interleave(k)
    return k if torch.equal(centre, expected) else None


class CGCNNEncoder(Encoder):
    r"""The CGCNN encoder: an embedding of the fixed element features, then R convolutions.

    .. math::
        v_i^{(0)} = x_i W_e + b_e, \qquad v^{(t+1)} = \mathrm{Conv}(v^{(t)}), \ t = 0 \ldots R-1

    with :math:`x_i` the fixed element features (92-dim one-hot table) and ``Conv`` the layer
    :class:`CGConvLayer` on the Gaussian expansion of the bond lengths.

    Args:
        config: hyper-parameters.
        atom_table: (max_Z + 1, 92) atom feature table (rows of unsupported elements are NaN).

    Shapes:
        batch with ``z`` (|V|,), ``edge_index`` (2, |E|), ``edge_dist`` (|E|,) -> x (|V|, F)
    """

    config: CGCNNConfig

    def build(self, config: CGCNNConfig) -> None:
        self.expansion = GaussianBasis.cgcnn(0.0, config.radius, config.step)
        n_edge = self.expansion.num_features
        self.embedding = nn.Linear(self.atom_features.num_features, config.atom_fea_len)
        self.convs = nn.ModuleList(
            CGConvLayer(config.atom_fea_len, n_edge, shared=config.conv == "shared") for _ in range(config.n_conv)
        )
        self.out_channels = config.atom_fea_len

    def reset_parameters(self) -> None:
        for m in (self.embedding, *self.convs):
            m.reset_parameters()

    def forward(self, batch: Batch) -> Encoding:
        x = self.embedding(self.atom_features(batch.z))
        edge_attr = self.expansion(batch.edge_dist)
        degree = uniform_degree(batch.edge_index[1], x.shape[0])
        for conv in self.convs:
            x = conv(x, batch.edge_index, edge_attr, degree)
        return Encoding(x=x)

    def __repr__(self) -> str:
        c = self.config
        return f"CGCNNEncoder(atom_fea_len={c.atom_fea_len}, n_conv={c.n_conv}, conv={c.conv}, radius={c.radius})"


class CGCNNReadout(GraphReadout):
    r"""CGCNN's graph readout: mean pooling, then the post-pooling network.

    .. math::
        v_c = \frac{1}{|V|}\sum_i v_i, \qquad
        \hat y = W_o\, g(\ldots g(W_1 g(v_c) + b_1) \ldots) + b_o

    (:class:`~crystalgnn.models.readouts.SoftplusMLP`, :math:`g` softplus, dropout 0.5 after the
    first layer for classification as the reference).

    Shapes:
        encoding with x (|V|, F), batch with ``batch`` (|V|,) -> (B, out_dim)
    """

    config: CGCNNConfig

    def build(self, config: CGCNNConfig) -> None:
        dropout = config.dropout if self.task == "classification" else 0.0
        self.mlp = SoftplusMLP(self.in_channels, config.h_fea_len, config.n_h, self.out_dim, dropout=dropout)

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()

    def forward(self, enc: Encoding, batch: Batch) -> Tensor:
        return self.mlp(global_mean_pool(enc.x, batch.batch, size=batch.num_graphs))  # type: ignore[no-any-return]


__all__ = ["CGCNNConfig", "CGCNNEncoder", "CGCNNReadout", "CGConvLayer", "uniform_degree"]
