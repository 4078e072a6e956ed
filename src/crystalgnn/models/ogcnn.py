r"""OGCNN: the orbital graph convolutional neural network of Karamad, Magar, Shi, Siahrostami,
Gates & Barati Farimani (Phys. Rev. Mater. 4, 093801, 2020).

CGCNN (:mod:`crystalgnn.models.cgcnn`) whose atom features also hold each atom's orbital field
matrix (OFM, Pham et al. 2017; :mod:`crystalgnn.graphs.orbital_field_matrix`: valence-shell
one-hot vectors of an atom and its Voronoi neighbours, weighted by solid angle and 1/r), passed
through the paper's encoder-decoder before the convolutions:

.. math::
    h_i = x_{Z_i} \oplus \mathrm{vec}(X_i), \qquad
    v_i^{(0)} = W_2\, g(W_1 h_i + b_1) + b_2

(:math:`x_Z` the 92-dim CGCNN element features, :math:`X_i` the 32 x 32 OFM, :math:`g`
softplus, :math:`W_1` to ``hot_fea_len`` and :math:`W_2` to ``atom_fea_len``), then R gated
convolutions (:class:`~crystalgnn.models.cgcnn.CGConvLayer`, Eq. 5 of CGCNN) on the Gaussian
expansion of the bond lengths, mean pooling and CGCNN's head.

The graph: the OFM needs the Voronoi faces, so OGCNN reads the Voronoi graph
(``GraphConfig(neighbors="voronoi")``, every face kept) and convolves over the same bonds, where
the paper convolves over CGCNN's 12-nearest-neighbour graph (one graph per model here; for
close-packed cells the two coincide: the 12 faces of fcc are its 12 nearest neighbours). The OFM
is computed in the forward pass from the batch (a scatter and an outer product per atom), so
nothing model-specific is cached.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch

from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.graphs.orbital_field_matrix import ORBITAL_LABELS, orbital_field_matrices, valence_table
from crystalgnn.models.base import Encoder, Encoding, ModelConfig
from crystalgnn.models.basis import GaussianBasis
from crystalgnn.models.cgcnn import CGCNNReadout, CGConvLayer

#: elements with a valence one-hot vector (pymatgen's electronic structures)
MAX_OFM_Z = 100


@dataclass(frozen=True)
class OGCNNConfig(ModelConfig):
    """OGCNN hyper-parameters (CGCNN's names and defaults where they apply).

    Args:
        atom_fea_len: hidden atom feature size F (64).
        hot_fea_len: width of the encoder-decoder's middle layer (32).
        h_fea_len: hidden size after pooling (128).
        n_conv: convolution layers R (3).
        n_h: hidden layers after pooling (1).
        radius: bound of the periodic-image search for the Voronoi cells (Å); also the last
            Gaussian centre of the bond lengths.
        max_neighbors: Voronoi faces kept per atom (``None``: all, as the OFM's definition).
        step: Gaussian spacing and width of the bond lengths (0.2 Å).
        use_ofm: include the OFM (``False``: CGCNN on the Voronoi graph, for ablations).
        dropout: dropout before the hidden layers, classification only (0.5).
    """

    atom_fea_len: int = 64
    hot_fea_len: int = 32
    h_fea_len: int = 128
    n_conv: int = 3
    n_h: int = 1
    radius: float = 8.0
    max_neighbors: int | None = None
    step: float = 0.2
    use_ofm: bool = True
    dropout: float = 0.5

    def graph_config(self) -> GraphConfig:
        return GraphConfig(radius=self.radius, max_neighbors=self.max_neighbors, neighbors="voronoi")


class OGCNNEncoder(Encoder):
    r"""The OGCNN encoder: element features and OFM -> encoder-decoder -> R gated convolutions.

    The valence one-hot table is a buffer (saved with the model, like the element table).

    Shapes:
        batch with ``z``, ``edge_index``, ``edge_dist``, ``edge_weight`` -> x (|V|, F)
    """

    config: OGCNNConfig
    valence: Tensor  # registered buffer (max_Z + 1, 32)

    def build(self, c: OGCNNConfig) -> None:
        rows = self.atom_features.table.shape[0]
        table = torch.zeros(rows, len(ORBITAL_LABELS))
        known = min(rows - 1, MAX_OFM_Z)
        table[: known + 1] = torch.from_numpy(valence_table(MAX_OFM_Z)[: known + 1])
        self.register_buffer("valence", table)
        n_in = self.atom_features.num_features + (len(ORBITAL_LABELS) ** 2 if c.use_ofm else 0)
        self.encode = nn.Linear(n_in, c.hot_fea_len)
        self.decode = nn.Linear(c.hot_fea_len, c.atom_fea_len)
        self.expansion = GaussianBasis.cgcnn(0.0, c.radius, c.step)
        self.convs = nn.ModuleList(CGConvLayer(c.atom_fea_len, self.expansion.num_features) for _ in range(c.n_conv))
        self.out_channels = c.atom_fea_len

    def reset_parameters(self) -> None:
        for m in (self.encode, self.decode, *self.convs):
            m.reset_parameters()

    def ofm(self, batch: Batch) -> Tensor:
        """The flattened OFM of every atom of the batch (|V|, 1024)."""
        weight = getattr(batch, "edge_weight", None)
        if weight is None:
            raise ValueError("ogcnn reads Voronoi graphs (GraphConfig(neighbors='voronoi')): no edge_weight")
        return orbital_field_matrices(self.valence[batch.z], batch.edge_index, batch.edge_dist, weight)

    def forward(self, batch: Batch) -> Encoding:
        h = self.atom_features(batch.z)
        if self.config.use_ofm:
            h = torch.cat((h, self.ofm(batch)), dim=1)
        x = self.decode(F.softplus(self.encode(h)))
        edge_attr = self.expansion(batch.edge_dist)
        for conv in self.convs:
            x = conv(x, batch.edge_index, edge_attr)
        return Encoding(x=x)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"OGCNNEncoder(atom_fea_len={c.atom_fea_len}, hot_fea_len={c.hot_fea_len}, n_conv={c.n_conv}, "
            f"use_ofm={c.use_ofm})"
        )


class OGCNNReadout(CGCNNReadout):
    """CGCNN's readout (mean pooling, softplus MLP), as OGCNN keeps it."""


__all__ = ["OGCNNConfig", "OGCNNEncoder", "OGCNNReadout"]
