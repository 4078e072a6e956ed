"""SchNet on periodic crystal graphs (Schütt, Sauceda, Kindermans, Tkatchenko & Müller,
J. Chem. Phys. 148, 241722, 2018; continuous-filter convolutions of NeurIPS 2017).

The interaction blocks are PyG's (:class:`torch_geometric.nn.models.schnet.InteractionBlock`:
filter network on a Gaussian radial basis, cosine cutoff, ``CFConv``), applied to the periodic
edges of the crystal graph (every image within the cutoff is its own edge), so no molecular
``radius_graph`` is built and cells smaller than the cutoff are handled exactly.

Defaults are the paper's Materials Project setting: 64 atom features and filters, 6 interaction
blocks, a 5 Å cosine cutoff over all neighbours in it, Gaussians every 0.1 Å. PyG's molecular
defaults (128 features, 50 Gaussians up to 10 Å, at most 32 neighbours) are one option away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn.models.schnet import InteractionBlock, ShiftedSoftplus
from torch_geometric.utils import scatter

from crystalgnn.models.base import Encoder, Encoding, GraphReadout, ModelConfig
from crystalgnn.models.basis import GaussianBasis


@dataclass(frozen=True)
class SchNetConfig(ModelConfig):
    """SchNet hyper-parameters.

    Args:
        hidden_channels: atom feature size F (64; PyG default 128).
        num_filters: filter size of the continuous-filter convolutions (64).
        num_interactions: interaction blocks T (6).
        num_gaussians: radial basis size; centres evenly spaced in [0, cutoff] (51 = every 0.1 Å
            up to 5 Å, the paper's spacing; width as PyG's ``GaussianSmearing``,
            gamma = 0.5 / spacing^2).
        radius: neighbour cutoff and cosine-cutoff radius (Å) (5; formerly ``cutoff``).
        max_neighbors: optional cap on neighbours per atom (``None``: every neighbour within
            the cutoff, as the paper; a cap makes the model discontinuous when the neighbour
            ranking changes).
        pooling: ``"mean"`` over atoms (intensive targets: per-atom energies, gaps) or
            ``"sum"`` (extensive targets).
    """

    hidden_channels: int = 64
    num_filters: int = 64
    num_interactions: int = 6
    num_gaussians: int = 51
    radius: float = 5.0
    max_neighbors: int | None = None
    pooling: Literal["mean", "sum"] = "mean"


class SchNetEncoder(Encoder):
    r"""SchNet's encoder: an element embedding, then T interaction blocks with residuals.

    .. math::
        \mathbf x_i^{(0)} = \mathbf a_{Z_i}, \qquad
        \mathbf x_i^{(t+1)} = \mathbf x_i^{(t)} + \mathrm{Interaction}_t(\mathbf x^{(t)})_i

        \mathrm{cfconv}: \ \mathbf m_i = \sum_{j} \mathbf x_j W_1 \odot
            \mathrm{FGN}\big(\mathbf e_k(d_{ij})\big)\,\tfrac12\big(\cos(\pi d_{ij}/r_c)+1\big)

    with :math:`\mathbf e_k(d) = \exp(-\gamma (d - \mu_k)^2)` the Gaussian basis, FGN the
    filter-generating network (dense, shifted softplus, dense) and the sum over every periodic
    neighbour image within :math:`r_c`. The atom table only sets the vocabulary.

    Shapes:
        batch with ``z``, ``edge_index``, ``edge_dist``, ``batch`` -> x (|V|, hidden_channels)
    """

    config: SchNetConfig

    def build(self, c: SchNetConfig) -> None:
        self.embedding = nn.Embedding(self.atom_features.table.shape[0], c.hidden_channels)
        centres = torch.linspace(0.0, c.radius, c.num_gaussians)
        self.distance_expansion = GaussianBasis(centres, 0.5 / float(centres[1] - centres[0]) ** 2)
        self.interactions = nn.ModuleList(
            InteractionBlock(c.hidden_channels, c.num_gaussians, c.num_filters, c.radius)
            for _ in range(c.num_interactions)
        )
        self.out_channels = c.hidden_channels

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        for block in self.interactions:
            block.reset_parameters()  # type: ignore[operator]

    def forward(self, batch: Batch) -> Encoding:
        h = self.embedding(batch.z)
        dist = batch.edge_dist
        edge_attr = self.distance_expansion(dist)
        for block in self.interactions:
            h = h + block(h, batch.edge_index, dist, edge_attr)
        return Encoding(x=h)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"SchNetEncoder(hidden_channels={c.hidden_channels}, num_filters={c.num_filters}, "
            f"num_interactions={c.num_interactions}, num_gaussians={c.num_gaussians}, radius={c.radius})"
        )


class SchNetReadout(GraphReadout):
    r"""SchNet's atom-wise output network, pooled: :math:`\hat y = \mathrm{pool}_i\, W_o\, g(W_h \mathbf x_i + b_h) + b_o`.

    F -> F/2 -> out with the shifted softplus :math:`g`; ``pooling`` mean (intensive targets) or
    sum (extensive ones).

    Shapes:
        encoding with x (|V|, F) -> (B, out_dim)
    """

    config: SchNetConfig

    def build(self, c: SchNetConfig) -> None:
        self.lin1 = nn.Linear(self.in_channels, self.in_channels // 2)
        self.act = ShiftedSoftplus()
        self.lin2 = nn.Linear(self.in_channels // 2, self.out_dim)

    def reset_parameters(self) -> None:
        for lin in (self.lin1, self.lin2):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, enc: Encoding, batch: Batch) -> Tensor:
        out = self.lin2(self.act(self.lin1(enc.x)))
        pooled: Tensor = scatter(out, batch.batch, dim=0, dim_size=batch.num_graphs, reduce=self.config.pooling)
        return pooled


__all__ = ["SchNetConfig", "SchNetEncoder", "SchNetReadout"]
