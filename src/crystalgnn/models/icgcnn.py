r"""iCGCNN: the improved CGCNN of Park & Wolverton (Phys. Rev. Mater. 4, 063801, 2020).

Three changes to CGCNN (:mod:`crystalgnn.models.cgcnn`), as summarised by the reviews (their
Eqs. 5-7):

1. the crystal graph joins atoms whose Voronoi cells share a face
   (``GraphConfig(neighbors="voronoi")``, :mod:`crystalgnn.graphs.voronoi`), and a bond's
   features hold the face's solid angle next to its length;
2. an explicit three-body term: every pair of bonds :math:`(j \to i, l \to i)` of an atom sends a
   gated message built from both neighbours and both bonds;
3. the bond features are updated in every layer, from the atoms they join.

Encoder: embedding -> R :class:`ICGConvLayer`; readout: CGCNN's (mean pooling, softplus MLP).
Sizes follow CGCNN's defaults; ``max_neighbors`` keeps each atom's 12 largest Voronoi faces
(the three-body term costs :math:`k(k-1)` messages per atom: 132 for k = 12).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch

from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.models.base import Encoder, Encoding, ModelConfig
from crystalgnn.models.basis import GaussianBasis
from crystalgnn.models.cgcnn import CGCNNReadout


@dataclass(frozen=True)
class ICGCNNConfig(ModelConfig):
    """iCGCNN hyper-parameters (CGCNN's names and defaults where they apply).

    Args:
        atom_fea_len: hidden atom feature size F (64).
        h_fea_len: hidden size after pooling (128).
        n_conv: convolution layers R (3).
        n_h: hidden layers after pooling (1).
        radius: bound of the periodic-image search for the Voronoi cells (Å); also the last
            Gaussian centre of the bond lengths.
        max_neighbors: Voronoi faces kept per atom, largest solid angle first (12; ``None``: all).
        step: Gaussian spacing and width of the bond lengths (0.2 Å).
        angle_bins: Gaussian centres on [0, 1] for the solid angle relative to the atom's
            largest face (10).
        three_body: include the three-body term (Eq. 5's second sum).
        dropout: dropout before the hidden layers, classification only (0.5).
    """

    atom_fea_len: int = 64
    h_fea_len: int = 128
    n_conv: int = 3
    n_h: int = 1
    radius: float = 8.0
    max_neighbors: int | None = 12
    step: float = 0.2
    angle_bins: int = 10
    three_body: bool = True
    dropout: float = 0.5

    def graph_config(self) -> GraphConfig:
        return GraphConfig(radius=self.radius, max_neighbors=self.max_neighbors, neighbors="voronoi")


def star_triplets(centre: Tensor, num_nodes: int) -> Tensor:
    r"""Every ordered pair of distinct bonds that end at the same atom, ``(e_1, e_2)`` with
    ``centre[e_1] == centre[e_2]`` (the bonds :math:`j \to i` and :math:`l \to i`), vectorised.

    Shapes:
        centre (E,) -> (2, T), :math:`T = \sum_i d_i (d_i - 1)`
    """
    order = torch.argsort(centre, stable=True)
    deg = torch.bincount(centre, minlength=num_nodes)
    start = torch.cumsum(deg, 0) - deg
    counts = deg[centre]  # bond e1 pairs with every bond of its centre (itself removed below)
    total = int(counts.sum())
    e1 = torch.repeat_interleave(torch.arange(centre.numel(), device=centre.device), counts, output_size=total)
    block = torch.cumsum(counts, 0) - counts
    rank = torch.arange(total, device=centre.device) - torch.repeat_interleave(block, counts, output_size=total)
    e2 = order[start[centre[e1]] + rank]
    keep = e1 != e2
    return torch.stack((e1[keep], e2[keep]))


class ICGConvLayer(nn.Module):
    r"""The iCGCNN convolution: CGCNN's gated two-body sum, a gated three-body sum and a bond
    update (Park & Wolverton 2020; the reviews' Eqs. 5-7).

    .. math::
        z_{ij} = v_i \oplus v_j \oplus u_{ij}, \qquad
        z_{ijl} = v_i \oplus v_j \oplus v_l \oplus u_{ij} \oplus u_{il}

        v_i' = g\Big(v_i + \mathrm{BN}\big(\textstyle\sum_j \sigma(z_{ij}W_1 + b_1) \odot
            g(z_{ij}W_2 + b_2) + \sum_{j \ne l} \sigma(z_{ijl}W_3 + b_3) \odot g(z_{ijl}W_4 +
            b_4)\big)\Big)

        u_{ij}' = u_{ij} + \sigma(z_{ij}W_5 + b_5) \odot g(z_{ij}W_6 + b_6)

    with :math:`\sigma` the sigmoid, :math:`g` softplus and batch norms on the pre-activations as
    in CGCNN. Every product with a concatenation is evaluated term by term (atom terms once per
    atom, bond terms once per bond, then gathered per bond or triplet), so a triplet costs a few
    additions, not a matrix product.

    Args:
        channels: atom feature size F.
        edge_dim: bond feature size G.
        three_body: include the three-body sum.
        edge_output: compute :math:`u'` (the last layer of a stack skips it: nothing reads it,
            and its weights would get no gradient); then the input bonds are returned.

    Shapes:
        x (|V|, F), edge_index (2, |E|), edge_attr (|E|, G), triplets (2, T) ->
        ((|V|, F), (|E|, G))
    """

    def __init__(self, channels: int, edge_dim: int, three_body: bool = True, edge_output: bool = True) -> None:
        super().__init__()
        self.channels, self.edge_dim, self.three_body, self.edge_output = channels, edge_dim, three_body, edge_output
        self.fc_pair = nn.Linear(2 * channels + edge_dim, 2 * channels)
        self.bn_pair = nn.BatchNorm1d(2 * channels)
        if edge_output:
            self.fc_edge = nn.Linear(2 * channels + edge_dim, 2 * edge_dim)
            self.bn_edge = nn.BatchNorm1d(2 * edge_dim)
        if three_body:
            self.fc_triplet = nn.Linear(3 * channels + 2 * edge_dim, 2 * channels)
            self.bn_triplet = nn.BatchNorm1d(2 * channels)
        self.bn_sum = nn.BatchNorm1d(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.children():
            m.reset_parameters()  # type: ignore[operator]

    @staticmethod
    def _gate(pre: Tensor) -> Tensor:
        filt, core = pre.chunk(2, dim=1)
        return torch.sigmoid(filt) * F.softplus(core)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, triplets: Tensor) -> tuple[Tensor, Tensor]:
        src, dst = edge_index
        F_, G = self.channels, self.edge_dim
        w = self.fc_pair.weight
        pair = torch.addmm(self.fc_pair.bias, edge_attr, w[:, 2 * F_ :].T)
        pair = pair + (x @ w[:, :F_].T).index_select(0, dst) + (x @ w[:, F_ : 2 * F_].T).index_select(0, src)
        msg = self._gate(self.bn_pair(pair))
        summed = x.new_zeros(x.shape[0], F_).index_add_(0, dst, msg)
        if self.three_body and triplets.shape[1] > 0:
            e1, e2 = triplets
            wt = self.fc_triplet.weight
            centre_term = (x @ wt[:, :F_].T).index_select(0, dst)  # v_i, per bond (i = dst[e1] = dst[e2])
            first = (x @ wt[:, F_ : 2 * F_].T).index_select(0, src) + edge_attr @ wt[:, 3 * F_ : 3 * F_ + G].T
            second = (x @ wt[:, 2 * F_ : 3 * F_].T).index_select(0, src) + edge_attr @ wt[:, 3 * F_ + G :].T
            tri = (centre_term + first).index_select(0, e1) + second.index_select(0, e2) + self.fc_triplet.bias
            tmsg = self._gate(self.bn_triplet(tri))
            summed = summed.index_add(0, dst.index_select(0, e1), tmsg)
        x_new = F.softplus(x + self.bn_sum(summed))
        if not self.edge_output:
            return x_new, edge_attr
        we = self.fc_edge.weight
        edge_pre = torch.addmm(self.fc_edge.bias, edge_attr, we[:, 2 * F_ :].T)
        edge_pre = edge_pre + (x @ we[:, :F_].T).index_select(0, dst) + (x @ we[:, F_ : 2 * F_].T).index_select(0, src)
        edge_new = edge_attr + self._gate(self.bn_edge(edge_pre))
        return x_new, edge_new

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.channels}, edge_dim={self.edge_dim}, three_body={self.three_body}, "
            f"edge_output={self.edge_output})"
        )


class ICGCNNEncoder(Encoder):
    r"""The iCGCNN encoder: an embedding of the fixed element features, then R
    :class:`ICGConvLayer` on the Voronoi graph.

    .. math::
        v_i^{(0)} = x_i W_e + b_e, \qquad
        u_{ij}^{(0)} = \mathrm{G}_{0.2}(r_{ij}) \oplus \mathrm{G}_{0.1}(\Omega_{ij}/\max_k
            \Omega_{ik})

    (Gaussian expansions of the bond length and of the solid angle relative to the atom's
    largest face).

    Shapes:
        batch with ``z``, ``edge_index``, ``edge_dist``, ``edge_weight`` -> x (|V|, F),
        edge_attr (|E|, G)
    """

    config: ICGCNNConfig

    def build(self, c: ICGCNNConfig) -> None:
        self.distance_basis = GaussianBasis.cgcnn(0.0, c.radius, c.step)
        self.angle_basis = GaussianBasis.linspace(0.0, 1.0, c.angle_bins, gamma=float((c.angle_bins - 1) ** 2))
        edge_dim = self.distance_basis.num_features + c.angle_bins
        self.embedding = nn.Linear(self.atom_features.num_features, c.atom_fea_len)
        self.convs = nn.ModuleList(
            ICGConvLayer(c.atom_fea_len, edge_dim, c.three_body, edge_output=k < c.n_conv - 1) for k in range(c.n_conv)
        )
        self.out_channels = c.atom_fea_len

    def reset_parameters(self) -> None:
        for m in (self.embedding, *self.convs):
            m.reset_parameters()

    def edge_features(self, batch: Batch) -> Tensor:
        """:math:`u^{(0)}` of every bond (needs the Voronoi graph's ``edge_weight``)."""
        weight = getattr(batch, "edge_weight", None)
        if weight is None:
            raise ValueError("icgcnn reads Voronoi graphs (GraphConfig(neighbors='voronoi')): no edge_weight")
        dst = batch.edge_index[1]
        top = weight.new_zeros(batch.num_nodes).scatter_reduce(0, dst, weight, reduce="amax", include_self=False)
        relative = weight / top[dst].clamp(min=1e-12)
        return torch.cat((self.distance_basis(batch.edge_dist), self.angle_basis(relative)), dim=1)

    def forward(self, batch: Batch) -> Encoding:
        x = self.embedding(self.atom_features(batch.z))
        e = self.edge_features(batch)
        triplets = (
            star_triplets(batch.edge_index[1], x.shape[0])
            if self.config.three_body
            else batch.edge_index.new_zeros(2, 0)
        )
        for conv in self.convs:
            x, e = conv(x, batch.edge_index, e, triplets)
        return Encoding(x=x, edge_index=batch.edge_index, edge_attr=e)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"ICGCNNEncoder(atom_fea_len={c.atom_fea_len}, n_conv={c.n_conv}, max_neighbors={c.max_neighbors}, "
            f"three_body={c.three_body})"
        )


class ICGCNNReadout(CGCNNReadout):
    """CGCNN's readout (mean pooling, softplus MLP), as iCGCNN keeps it."""


__all__ = ["ICGCNNConfig", "ICGCNNEncoder", "ICGCNNReadout", "ICGConvLayer", "star_triplets"]
