r"""The neighbour-list MLP: a per-site baseline with no message passing.

Each atom is described by a fixed-size vector: its own element features, then, for its ``k``
nearest neighbours sorted by distance, the neighbour's element features and the Gaussian
expansion of the distance (the CGCNN graph's edges, CGCNN's expansion):

.. math::
    \mathbf f_i = x_i \oplus \big(x_{j_1} \oplus u(d_{i j_1})\big) \oplus \cdots
        \oplus \big(x_{j_k} \oplus u(d_{i j_k})\big), \qquad d_{i j_1} \le \cdots \le d_{i j_k}

with :math:`x` the fixed atom-feature table (CGCNN's 92-dim one-hot table), :math:`u` the
Gaussians :math:`\exp(-(d - \mu_m)^2 / \sigma^2)` on :math:`\mu_m = 0, 0.2, \ldots, 8` Å
(:meth:`~crystalgnn.models.basis.GaussianBasis.cgcnn`, 41 features), and zeros in the slots of
an atom with fewer than ``k`` neighbours. Equal distances keep the graph's edge order. The
width is :math:`F_a + k (F_a + F_u)` (1,688 for the defaults).

The encoder then applies ``n_layers`` dense layers with softplus :math:`g`,

.. math::
    \mathbf v_i = g(W_L \cdots g(W_1 \mathbf f_i + b_1) \cdots + b_L),

and a per-site readout (``--readout site``, :class:`~crystalgnn.models.readouts.SiteReadout`)
maps :math:`\mathbf v_i` to the prediction. The model therefore differs from the per-site CGCNN
only in its encoder (a fixed neighbour list instead of graph convolutions) and shares its head.

Difference from the former hand-written baseline (``NeighbourMLP`` in
``crystalgnn.baselines.site_baselines``, ``f -> [Linear, softplus] x n_layers -> Linear(1)``):
the last layer is now the per-site head, ``softplus -> Linear(hidden, head width) -> softplus
-> Linear(1)``, i.e. one more hidden layer (16.5k more parameters at the defaults) and a second
softplus after the encoder (CGCNN's head applies softplus to its input). ``n_layers=0`` gives
the head the raw features ``f_i`` (the former network's depth at ``site_head_layers=n_layers``,
apart from that input softplus). Training also differs: batches hold whole structures (about
``batch_size`` sites) instead of sites drawn at random from all training structures. On
``site-magmoms`` |m| (60/20/20 by structure, 40 epochs, no early stopping, seeds 0/1/2) the
test site MAE is 0.0773 / 0.0753 / 0.0723 μB (mean 0.0750) against the former baseline's
0.0761 / 0.0752 / 0.0737 (mean 0.0750). Its validation MAE plateaus more often, so with early
stopping at patience 8 (``benchmarks/site_magmoms.py``) it stopped at epochs 20 and 26 on seeds
0 and 1 (test 0.0854, 0.0796), where the former baseline ran all 40 epochs. Graph-level readouts do not apply (``--readout site``, or ``site-linear`` for a
graph-level target that is a sum or mean of site contributions).

Features are built from the batch with array operations only: the edges are ordered by
(centre, distance, edge position) with two stable sorts (skipped when the graph builder already
left them in that order, as it does for its k-nearest-neighbour graphs), each edge's rank within
its centre is its position minus the centre's first position, and the ``k`` lowest ranks are
scattered into an (N, k, F) block of zeros.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crystalgnn.models.base import Encoder, Encoding, GraphReadout, ModelConfig
from crystalgnn.models.basis import GaussianBasis


@dataclass(frozen=True)
class NeighbourMLPConfig(ModelConfig):
    """Hyper-parameters of the neighbour-list MLP (the former baseline's defaults).

    Args:
        radius: neighbour cutoff (Å) of the graph; also the last Gaussian centre (8.0).
        max_neighbors: ``k``, the neighbours described per atom (12, as the CGCNN graph).
        step: Gaussian centre spacing and width (0.2 Å -> 41 features).
        hidden: width of the encoder's dense layers (128).
        n_layers: dense layers with softplus after the features (2; 0 passes the raw features).
    """

    radius: float = 8.0
    max_neighbors: int = 12
    step: float = 0.2
    hidden: int = 128
    n_layers: int = 2

    def __post_init__(self) -> None:
        if self.max_neighbors is None or int(self.max_neighbors) < 1:
            raise ValueError("neighbour-mlp needs max_neighbors >= 1 (the neighbours described per atom)")
        if self.n_layers < 0 or self.hidden < 1:
            raise ValueError("neighbour-mlp needs n_layers >= 0 and hidden >= 1")


def neighbour_slots(centre: Tensor, dist: Tensor, num_nodes: int, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """The ``k`` nearest edges of every centre atom and their slots.

    Edges are ranked within their centre by distance, ties by edge position (a stable order).

    Args:
        centre: (E,) centre atom of each edge (``edge_index[1]``).
        dist: (E,) edge lengths.
        num_nodes: atoms N.
        k: slots per atom.

    Returns:
        (edge ids (K,), their centre atoms (K,), their ranks (K,) in ``0 .. k-1``), K <= N k.
    """
    e = centre.numel()
    if e == 0:
        empty = centre.new_zeros(0)
        return empty, empty, empty
    same = centre[1:] == centre[:-1]
    in_order = bool(((centre[1:] > centre[:-1]) | (same & (dist[1:] >= dist[:-1]))).all())
    if in_order:  # already sorted by (centre, distance): the stable order is the identity
        order = torch.arange(e, device=centre.device)
    else:
        order = torch.sort(dist, stable=True).indices
        order = order[torch.sort(centre[order], stable=True).indices]
    c = centre[order]
    counts = torch.bincount(c, minlength=num_nodes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(e, device=centre.device) - starts[c]
    keep = rank < k
    return order[keep], c[keep], rank[keep]


class NeighbourListEncoder(Encoder):
    r"""Per-atom neighbour-list features :math:`\mathbf f_i`, then ``n_layers`` softplus layers.

    Args:
        config: hyper-parameters.
        atom_table: (max_Z + 1, F_a) atom-feature table (rows of unsupported elements are NaN;
            a neighbour's NaN features count as zeros, as in the former baseline).

    Shapes:
        batch with ``z`` (|V|,), ``edge_index`` (2, |E|), ``edge_dist`` (|E|,) -> x (|V|, hidden),
        or (|V|, F_a + k (F_a + F_u)) with ``n_layers=0``
    """

    config: NeighbourMLPConfig

    def build(self, config: NeighbourMLPConfig) -> None:
        self.k = int(config.max_neighbors)
        self.expansion = GaussianBasis.cgcnn(0.0, config.radius, config.step)
        fa, fu = self.atom_features.num_features, self.expansion.num_features
        self.feature_dim = fa + self.k * (fa + fu)
        dims = [self.feature_dim] + [config.hidden] * config.n_layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.out_channels = dims[-1]

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()  # type: ignore[operator]

    def features(self, batch: Any) -> Tensor:
        r"""The fixed features :math:`\mathbf f_i` (|V|, F_a + k (F_a + F_u)) of every atom."""
        z = batch.z
        n = int(z.shape[0])
        src, dst = batch.edge_index
        own = self.atom_features(z)
        edges, rows, slots = neighbour_slots(dst, batch.edge_dist, n, self.k)
        pair = torch.cat(
            [torch.nan_to_num(self.atom_features(z[src[edges]])), self.expansion(batch.edge_dist[edges])], dim=-1
        )
        block = own.new_zeros(n, self.k, pair.shape[-1])
        block[rows, slots] = pair
        return torch.cat([own, block.flatten(1)], dim=-1)

    def forward(self, batch: Any) -> Encoding:
        h = self.features(batch)
        for layer in self.layers:
            h = F.softplus(layer(h))
        return Encoding(x=h)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"NeighbourListEncoder(k={self.k}, features={self.feature_dim}, hidden={c.hidden}, n_layers={c.n_layers})"
        )


class NeighbourMLPGraphReadout(GraphReadout):
    """Stands in for a graph-level readout: the neighbour-list MLP predicts per-site values."""

    def build(self, config: NeighbourMLPConfig) -> None:
        raise ValueError(
            "neighbour-mlp predicts per-site values: use --readout site "
            "(or --readout site-linear for a graph-level target made of site contributions)"
        )


__all__ = ["NeighbourListEncoder", "NeighbourMLPConfig", "NeighbourMLPGraphReadout", "neighbour_slots"]
