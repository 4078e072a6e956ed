"""ALIGNN: Atomistic Line Graph Neural Network (Choudhary & DeCost, npj Comput. Mater. 7, 185, 2021).

Edge-gated graph convolutions alternate between the atom graph (atoms, bonds) and its line graph
(bonds, bond angles), so bond features are updated from the angles they make. Architecture,
sizes, BatchNorm placement and the radial bases follow the published reference
(``usnistgov/alignn``, ``alignn/models/alignn.py``: ``ALIGNNConfig`` defaults, 4 ALIGNN + 4
gated-GCN layers, hidden 256, average pooling).

The graph is the 12-nearest-neighbour graph within 8 Å of :mod:`crystalgnn.graphs.crystal_graph`
(ties at the 12th neighbour broken deterministically; the reference keeps the whole tied shell),
made undirected inside the forward pass as the reference's ``build_undirected_edgedata`` does.
The line graph, with the immediate backtracks that DGL's ``line_graph`` keeps, is built from
the batch in the forward pass (:mod:`crystalgnn.graphs.line_graph`, vectorised), so the graph
cache is shared with CGCNN and nothing model-specific is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing, global_mean_pool

from crystalgnn.graphs.line_graph import bond_cosines, line_graph, symmetrize_edges
from crystalgnn.models.base import Encoder, Encoding, GraphReadout, ModelConfig, explain_edge_mask
from crystalgnn.models.basis import GaussianBasis


@dataclass(frozen=True)
class ALIGNNConfig(ModelConfig):
    """ALIGNN hyper-parameters; names and defaults as the reference ``ALIGNNConfig``.

    Args:
        radius: neighbour search radius (Å) (8).
        max_neighbors: neighbours per atom k (12).
        undirected: add the reverse of every bond (the reference graph is undirected).
        backtracking: keep the triplets k -> j -> k (the reference's DGL line graph does).
        alignn_layers: ALIGNN layers (atom-graph then line-graph update) (4).
        gcn_layers: gated-GCN layers on the atom graph alone (4).
        edge_input_features: RBF centres for bond lengths in [0, 8] Å (80).
        triplet_input_features: RBF centres for cos(theta) in [-1, 1] (40).
        embedding_features: size after the first bond/angle MLP layer (64).
        hidden_features: hidden size everywhere else (256).
        rbf_max: last bond-length centre (8 Å).
    """

    radius: float = 8.0
    max_neighbors: int = 12
    undirected: bool = True
    backtracking: bool = True
    alignn_layers: int = 4
    gcn_layers: int = 4
    edge_input_features: int = 80
    triplet_input_features: int = 40
    embedding_features: int = 64
    hidden_features: int = 256
    rbf_max: float = 8.0


def rbf_expansion(vmin: float, vmax: float, bins: int) -> GaussianBasis:
    r"""ALIGNN's radial basis: ``bins`` centres on [vmin, vmax], :math:`\gamma = 1/\Delta\mu`
    (the reference's ``lengthscale`` default: the inverse spacing, not its square).
    """
    return GaussianBasis.linspace(vmin, vmax, bins, gamma=float((bins - 1) / (vmax - vmin)))


class MLPLayer(nn.Sequential):
    """Linear -> BatchNorm1d -> SiLU (the reference ``MLPLayer``)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(nn.Linear(in_features, out_features), nn.BatchNorm1d(out_features), nn.SiLU())

    def reset_parameters(self) -> None:
        self[0].reset_parameters()  # type: ignore[operator]
        self[1].reset_parameters()  # type: ignore[operator]


class EdgeGatedGraphConv(MessagePassing):  # type: ignore[misc]  # PyG is untyped
    r"""Edge-gated graph convolution (Bresson & Laurent 2017; ALIGNN Eqs. 1-3).

    .. math::
        \mathbf m_{ji} &= A\mathbf h_j + B\mathbf h_i + C\mathbf e_{ji}, \qquad
        \sigma_{ji} = \mathrm{sigmoid}(\mathbf m_{ji}) \\
        \mathbf h_i' &= \mathbf h_i + \mathrm{SiLU}\Big(\mathrm{BN}\Big(U\mathbf h_i +
            \frac{\sum_{j} \sigma_{ji} \odot V\mathbf h_j}{\sum_j \sigma_{ji} + 10^{-6}}\Big)\Big) \\
        \mathbf e_{ji}' &= \mathbf e_{ji} + \mathrm{SiLU}(\mathrm{BN}(\mathbf m_{ji}))

    for messages ``j = edge_index[0] -> i = edge_index[1]``. The concatenated weight of
    :math:`[\mathbf h_j, \mathbf h_i, \mathbf e_{ji}]` is split so node terms are computed once
    per node. On the line graph, "nodes" are bonds and "edges" are bond pairs.

    Under PyG's explain protocol (:func:`~crystalgnn.models.base.explain_edge_mask`) the edge
    mask :math:`\mu_{ji}` multiplies the gate, :math:`\sigma_{ji} \to \mu_{ji}\sigma_{ji}`, in
    the numerator and the normalising denominator, so a zero mask removes the message exactly;
    the edge update :math:`\mathbf e_{ji}'` is not masked.

    Args:
        channels: node and edge feature size.
        residual: add the input (the reference uses residuals in every layer).
        edge_output: compute the updated edge features (the last layer of a stack whose edge
            features are not read again skips them, so it has no parameters without gradient;
            it then returns its input edge features).

    Shapes:
        x (N, C), edge_index (2, M), e (M, C) -> ((N, C), (M, C))
    """

    def __init__(self, channels: int, residual: bool = True, edge_output: bool = True) -> None:
        super().__init__(aggr="add")
        self.channels, self.residual, self.edge_output = channels, residual, edge_output
        self.gate_src = nn.Linear(channels, channels)
        self.gate_dst = nn.Linear(channels, channels)
        self.gate_edge = nn.Linear(channels, channels)
        self.update_self = nn.Linear(channels, channels)
        self.update_nbr = nn.Linear(channels, channels)
        self.bn_nodes = nn.BatchNorm1d(channels)
        self.bn_edges = nn.BatchNorm1d(channels) if edge_output else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.children():
            m.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        src, dst = edge_index
        m = self.gate_src(x)[src] + self.gate_dst(x)[dst] + self.gate_edge(e)
        sigma = torch.sigmoid(m)
        mask = explain_edge_mask(self, sigma.shape[0])
        if mask is not None:
            sigma = sigma * mask
        num = x.new_zeros(x.shape[0], self.channels).index_add_(0, dst, sigma * self.update_nbr(x)[src])
        den = x.new_zeros(x.shape[0], self.channels).index_add_(0, dst, sigma)
        h = self.update_self(x) + num / (den + 1e-6)
        x_new = F.silu(self.bn_nodes(h))
        if self.residual:
            x_new = x + x_new
        if self.bn_edges is None:
            return x_new, e
        e_new = F.silu(self.bn_edges(m))
        return x_new, e + e_new if self.residual else e_new

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, residual={self.residual}, edge_output={self.edge_output})"


class ALIGNNConv(nn.Module):
    r"""One ALIGNN layer: a gated convolution on the atom graph, then on the line graph.

    .. math::
        (\mathbf h', \mathbf m) = \mathrm{EGGC}_{g}(\mathbf h, \mathbf e), \qquad
        (\mathbf e', \mathbf t') = \mathrm{EGGC}_{L(g)}(\mathbf m, \mathbf t)

    with :math:`\mathbf t` the bond-pair (angle) features. Edge masks of PyG's explain protocol
    are per bond, so only the atom-graph convolution receives them: the line-graph convolution
    (its edges are bond pairs, a different count) has ``explain = False``, which
    :func:`~torch_geometric.explain.algorithm.utils.set_masks` skips. A masked bond still
    exchanges angle information with its neighbouring bonds; its message to its atom is removed.

    Shapes:
        x (N, C), e (E, C), t (T, C), edge_index (2, E), line_index (2, T) -> same shapes
    """

    def __init__(self, channels: int, angle_output: bool = True) -> None:
        super().__init__()
        self.node_update = EdgeGatedGraphConv(channels)
        self.edge_update = EdgeGatedGraphConv(channels, edge_output=angle_output)
        self.edge_update.explain = False  # line graph: edges are bond pairs, not bonds

    def reset_parameters(self) -> None:
        self.node_update.reset_parameters()
        self.edge_update.reset_parameters()

    def forward(
        self, x: Tensor, e: Tensor, t: Tensor, edge_index: Tensor, line_index: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        x, m = self.node_update(x, edge_index, e)
        e, t = self.edge_update(m, line_index, t)
        return x, e, t


class ALIGNNEncoder(Encoder):
    r"""ALIGNN's encoder: embeddings, ALIGNN layers (atom graph then line graph), gated-GCN layers.

    .. math::
        \mathbf h^{(0)} = \mathrm{MLP}(\mathbf x_{Z}), \quad
        \mathbf e^{(0)} = \mathrm{MLP}_2(\mathrm{MLP}_1(\mathrm{RBF}(d))), \quad
        \mathbf t^{(0)} = \mathrm{MLP}_2(\mathrm{MLP}_1(\mathrm{RBF}(\cos\theta)))

        4 \times \mathrm{ALIGNNConv} \to 4 \times \mathrm{EGGC}

    with :math:`\mathbf x_Z` the fixed atom features (the 92-dim CGCNN table: 92 -> 256 in one
    MLP layer as the reference), bond RBF 80 -> 64 -> 256 and angle RBF 40 -> 64 -> 256.

    Shapes:
        batch with ``z``, ``edge_index``, ``edge_vec``, ``edge_shift``, ``batch`` ->
        x (|V|, hidden), edge_attr (2|E|, hidden) on the undirected edges
    """

    config: ALIGNNConfig

    def build(self, c: ALIGNNConfig) -> None:
        self.atom_embedding = MLPLayer(self.atom_features.num_features, c.hidden_features)
        self.edge_rbf = rbf_expansion(0.0, c.rbf_max, c.edge_input_features)
        self.edge_embedding = nn.Sequential(
            MLPLayer(c.edge_input_features, c.embedding_features),
            MLPLayer(c.embedding_features, c.hidden_features),
        )
        self.angle_rbf = rbf_expansion(-1.0, 1.0, c.triplet_input_features)
        self.angle_embedding = nn.Sequential(
            MLPLayer(c.triplet_input_features, c.embedding_features),
            MLPLayer(c.embedding_features, c.hidden_features),
        )
        # the angle features after the last ALIGNN layer and the bond features after the last
        # gated GCN are never read: those layers do not compute them (no unused parameters)
        n_a, n_g = c.alignn_layers, c.gcn_layers
        self.alignn_layers = nn.ModuleList(ALIGNNConv(c.hidden_features, angle_output=k < n_a - 1) for k in range(n_a))
        self.gcn_layers = nn.ModuleList(
            EdgeGatedGraphConv(c.hidden_features, edge_output=k < n_g - 1) for k in range(n_g)
        )
        self.out_channels = c.hidden_features

    def reset_parameters(self) -> None:
        self.atom_embedding.reset_parameters()
        for seq in (self.edge_embedding, self.angle_embedding):
            for m in seq:
                m.reset_parameters()  # type: ignore[operator]
        for layer in (*self.alignn_layers, *self.gcn_layers):
            layer.reset_parameters()

    def graphs(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(edge_index, edge_vec, line_index, cos_theta) of the batch, as the model sees them."""
        edge_index, shift, vec = batch.edge_index, batch.edge_shift, batch.edge_vec
        if self.config.undirected:
            edge_index, shift, vec = symmetrize_edges(edge_index, shift, vec)
        line_index = line_graph(edge_index, batch.num_nodes, edge_shift=shift, backtracking=self.config.backtracking)
        return edge_index, vec, line_index, bond_cosines(vec, line_index)

    def atom_embedding_module(self) -> nn.Module:
        return self.atom_embedding

    def explain_edge_index(self, batch: Batch) -> Tensor:
        """The undirected bonds the atom-graph convolutions see (edge masks follow them)."""
        return self.graphs(batch)[0]

    def forward(self, batch: Batch) -> Encoding:
        edge_index, vec, line_index, cos = self.graphs(batch)
        x = self.atom_embedding(self.atom_features(batch.z))
        e = self.edge_embedding(self.edge_rbf(vec.norm(dim=-1)))
        t = self.angle_embedding(self.angle_rbf(cos))
        for layer in self.alignn_layers:
            x, e, t = layer(x, e, t, edge_index, line_index)
        for gcn in self.gcn_layers:
            x, e = gcn(x, edge_index, e)
        return Encoding(x=x, edge_index=edge_index, edge_attr=e)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"ALIGNNEncoder(alignn_layers={c.alignn_layers}, gcn_layers={c.gcn_layers}, hidden={c.hidden_features}, "
            f"embedding={c.embedding_features}, k={c.max_neighbors}, radius={c.radius}, undirected={c.undirected})"
        )


class ALIGNNReadout(GraphReadout):
    r"""ALIGNN's graph readout: :math:`\hat y = W \tfrac{1}{|V|}\sum_i \mathbf h_i + b`.

    Shapes:
        encoding with x (|V|, hidden) -> (B, out_dim)
    """

    def build(self, c: ALIGNNConfig) -> None:
        self.fc = nn.Linear(self.in_channels, self.out_dim)

    def reset_parameters(self) -> None:
        self.fc.reset_parameters()

    def forward(self, enc: Encoding, batch: Batch) -> Tensor:
        return self.fc(global_mean_pool(enc.x, batch.batch, size=batch.num_graphs))  # type: ignore[no-any-return]


__all__ = [
    "ALIGNNConfig", "ALIGNNConv", "ALIGNNEncoder", "ALIGNNReadout", "EdgeGatedGraphConv", "MLPLayer", "rbf_expansion",
]  # fmt: skip
