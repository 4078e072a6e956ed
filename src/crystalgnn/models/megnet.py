"""MEGNet: MatErials Graph Network (Chen, Ye, Zuo, Zheng & Ong, Chem. Mater. 31, 3564, 2019).

A graph network with atom, bond *and* global-state attributes: each block updates bonds from
their two atoms and the state, atoms from their mean incoming bond and the state, and the state
from the mean bond and mean atom (Eqs. 1-6 of the paper). Sizes, activations, the placement of
the dense pre-blocks and skip connections, and the Set2Set readout follow the reference Keras
implementation (``materialsvirtuallab/megnet``, ``megnet/models/megnet.py`` and
``megnet/layers/graph/megnet.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing, Set2Set
from torch_geometric.nn.models.schnet import ShiftedSoftplus
from torch_geometric.utils import scatter

from crystalgnn.models.base import Encoder, Encoding, GraphReadout, ModelConfig, explain_edge_mask
from crystalgnn.models.basis import GaussianBasis


@dataclass(frozen=True)
class MEGNetConfig(ModelConfig):
    r"""MEGNet hyper-parameters; names and defaults as the reference ``MEGNetModel``.

    Args:
        radius: bond cutoff (Å); every pair within it is a bond (no neighbour cap). The paper
            uses 5 Å for crystals; the reference code's default converter uses 4 Å.
        max_neighbors: optional cap (``None``: all pairs within ``radius``, as the reference).
        n_gaussians: Gaussian bond features (100).
        gaussian_min / gaussian_max: first and last centre (0 and 5 Å, ``np.linspace``).
        gaussian_width: width ``w`` in ``exp(-(d - mu)^2 / w^2)`` (0.5 Å).
        embedding_dim: learned element embedding (16; vocabulary = rows of the atom table).
        state_dim: global state size; without a ``state`` on the batch it is zeros (the
            reference default ``[0, 0]``).
        nblocks: MEGNet blocks (3).
        n1, n2, n3: hidden sizes (64, 32, 16): dense pre-blocks n1 -> n2, block MLPs
            n1 -> n1 -> n2, Set2Set hidden n3, readout n2 -> n3.
        npass: Set2Set processing steps (3).
        dropout: dropout after each block and before the readout (reference default: none).
        block_last_activation: shifted softplus after the last layer of each update function
            (the Keras reference: no; matgl: yes).
        set2set_projection: project the features to ``n3`` before the Set2Set readouts (the
            Keras reference: yes; matgl: no, so its readout reads ``2 * n2`` per Set2Set).
        init: ``"keras"`` (the reference's: Glorot weights, zero biases, embeddings in +-0.05)
            or ``"torch"`` (PyTorch's defaults, as matgl).

    matgl 4's ``MEGNet`` (``configs/megnet-matgl.yaml``) differs from the reference in: 4 Å
    bonds, Gaussians :math:`\exp(-0.5 (d - \mu)^2)` (``gaussian_width`` :math:`\sqrt 2`), the
    last activation in the update functions, Set2Set with 2 steps on the unprojected features.
    """

    radius: float = 5.0
    max_neighbors: int | None = None
    n_gaussians: int = 100
    gaussian_min: float = 0.0
    gaussian_max: float = 5.0
    gaussian_width: float = 0.5
    embedding_dim: int = 16
    state_dim: int = 2
    nblocks: int = 3
    n1: int = 64
    n2: int = 32
    n3: int = 16
    npass: int = 3
    dropout: float = 0.0
    block_last_activation: bool = False
    set2set_projection: bool = True
    init: str = "keras"

    def __post_init__(self) -> None:
        if self.init not in ("keras", "torch"):
            raise ValueError(f"megnet init {self.init!r}: choose keras or torch")


class DenseStack(nn.Module):
    r"""Dense layers :math:`h \leftarrow g(hW_k + b_k)` with the shifted softplus
    :math:`g(x) = \ln(1 + e^x) - \ln 2` of MEGNet (``softplus2``).

    Args:
        sizes: ``[in, h_1, ..., h_K]``.
        last_activation: apply :math:`g` after the last layer too (the reference's ``ff``
            pre-blocks and readout do; the update functions inside a block do not).

    Weights are Glorot-uniform with zero biases, as Keras initialises them.
    """

    def __init__(self, sizes: list[int], last_activation: bool = True) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.last_activation = last_activation
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.act = ShiftedSoftplus()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in cast("Iterable[nn.Linear]", self.layers):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor) -> Tensor:
        n = len(self.layers)
        for k, lin in enumerate(self.layers):
            x = lin(x)
            if k < n - 1 or self.last_activation:
                x = self.act(x)
        return x

    def forward_gathered(self, parts: Sequence[tuple[Tensor, Tensor | None]]) -> Tensor:
        r"""The stack on the row-wise concatenation :math:`[a_1[s_1] \oplus a_2[s_2] \oplus \dots]`
        of gathered inputs, without materialising it.

        Gathering rows commutes with a right matrix product, so the first layer is
        :math:`b + \sum_p (a_p W_p^\top)[s_p]` with :math:`W_p` the columns of :math:`W` that
        part :math:`p` feeds: each product runs over the rows of :math:`a_p` (atoms, structures)
        instead of one row per edge. Equal to ``forward(torch.cat([a[s] ...], -1))`` up to
        float round-off (tested). ``parts``: ``(features, row index or None)`` in input order.
        """
        layers = cast("list[nn.Linear]", list(self.layers))
        first = layers[0]
        weights = torch.split(first.weight, [a.shape[-1] for a, _ in parts], dim=1)
        out: Tensor = first.bias
        for (a, index), w in zip(parts, weights, strict=True):
            out = torch.addmm(out, a, w.t()) if index is None else out + (a @ w.t())[index]
        n = len(layers)
        if n > 1 or self.last_activation:
            out = self.act(out)
        for k in range(1, n):
            out = layers[k](out)
            if k < n - 1 or self.last_activation:
                out = self.act(out)
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({'-'.join(map(str, self.sizes))}, last_activation={self.last_activation})"


class MEGNetBlock(MessagePassing):  # type: ignore[misc]  # PyG is untyped
    r"""One MEGNet graph-network update (the reference ``MEGNetLayer``, Eqs. 1-6).

    .. math::
        \mathbf e_k' &= \phi_e(\mathbf v_{i_k} \oplus \mathbf v_{j_k} \oplus \mathbf e_k
            \oplus \mathbf u) \\
        \mathbf v_i' &= \phi_v\Big(\tfrac{1}{|E_i|}\textstyle\sum_{k \in E_i} \mathbf e_k'
            \oplus \mathbf v_i \oplus \mathbf u\Big) \\
        \mathbf u' &= \phi_u\Big(\tfrac{1}{|E|}\textstyle\sum_k \mathbf e_k' \oplus
            \tfrac{1}{|V|}\textstyle\sum_i \mathbf v_i' \oplus \mathbf u\Big)

    with :math:`i_k` the atom bond :math:`k` points to (``edge_index[1]``), :math:`E_i` its
    bonds, and each :math:`\phi` a dense stack ``units`` (shifted softplus after all layers but
    the last, as in the reference ``_mlp``). Means are per structure in a batch.

    Under PyG's explain protocol (:func:`~crystalgnn.models.base.explain_edge_mask`) the
    updated bonds are multiplied by the edge mask where they are aggregated (the mean into
    their atom and the mean into the state); the bond features themselves (residual, bond
    Set2Set of the readout) are not masked.

    Args:
        node_dim, edge_dim, state_dim: input sizes.
        units: hidden sizes of each update function (reference: ``[n1, n1, n2]``).
        last_activation: shifted softplus after each update function's last layer too (matgl).

    Shapes:
        x (|V|, node_dim), e (|E|, edge_dim), u (B, state_dim), edge_index (2, |E|),
        batch (|V|,) -> ((|V|, units[-1]), (|E|, units[-1]), (B, units[-1]))
    """

    def __init__(
        self, node_dim: int, edge_dim: int, state_dim: int, units: list[int], last_activation: bool = False
    ) -> None:
        super().__init__(aggr="mean")
        self.node_dim, self.edge_dim, self.state_dim, self.units = node_dim, edge_dim, state_dim, list(units)
        out = units[-1]
        self.phi_e = DenseStack([2 * node_dim + edge_dim + state_dim, *units], last_activation=last_activation)
        self.phi_v = DenseStack([out + node_dim + state_dim, *units], last_activation=last_activation)
        self.phi_u = DenseStack([out + out + state_dim, *units], last_activation=last_activation)

    def drop_state_update(self) -> None:
        r"""Remove :math:`\phi_u` (the last block of an encoder whose state is not read: per-site
        readouts); the block then returns its input state.
        """
        self.phi_u = None  # type: ignore[assignment]

    def reset_parameters(self) -> None:
        for phi in (self.phi_e, self.phi_v, self.phi_u):
            if phi is not None:
                phi.reset_parameters()

    def forward(
        self, x: Tensor, e: Tensor, u: Tensor, edge_index: Tensor, batch: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        src, dst = edge_index
        n_graphs = u.shape[0]
        edge_batch = batch[dst]
        # phi_e(x[dst] + x[src] + e + u[edge_batch]) without the (|E|, 2n + e + u) concatenation
        e_new = self.phi_e.forward_gathered([(x, dst), (x, src), (e, None), (u, edge_batch)])
        mask = explain_edge_mask(self, e_new.shape[0])
        msg = e_new if mask is None else e_new * mask
        b_ev = scatter(msg, dst, dim=0, dim_size=x.shape[0], reduce="mean")
        x_new = self.phi_v.forward_gathered([(b_ev, None), (x, None), (u, batch)])
        if self.phi_u is None:
            return x_new, e_new, u
        b_eu = scatter(msg, edge_batch, dim=0, dim_size=n_graphs, reduce="mean")
        b_vu = scatter(x_new, batch, dim=0, dim_size=n_graphs, reduce="mean")
        u_new = self.phi_u(torch.cat((b_eu, b_vu, u), dim=-1))
        return x_new, e_new, u_new

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(node={self.node_dim}, edge={self.edge_dim}, "
            f"state={self.state_dim}, units={self.units})"
        )


class ProjectedSet2Set(nn.Module):
    r"""Set2Set readout (Vinyals et al. 2016) on a linear projection, as MEGNet's ``Set2Set``.

    .. math::
        \mathbf m_i = \mathbf x_i W + \mathbf b, \quad
        \mathbf q_t = \mathrm{LSTM}(\mathbf q^*_{t-1}), \quad
        a_{i,t} = \mathrm{softmax}_i(\mathbf m_i \cdot \mathbf q_t), \quad
        \mathbf r_t = \textstyle\sum_i a_{i,t} \mathbf m_i, \quad
        \mathbf q^*_t = \mathbf q_t \oplus \mathbf r_t

    The reference projects the features to ``n_hidden`` before the attention (``hidden=None``:
    no projection, as matgl); the recurrence is :class:`torch_geometric.nn.Set2Set` (a standard
    LSTM cell, where the Keras code uses a hard-sigmoid gate).

    Shapes:
        x (N, in), index (N,) -> (B, 2 * hidden)
    """

    def __init__(self, in_channels: int, hidden: int | None, steps: int) -> None:
        super().__init__()
        self.proj = nn.Identity() if hidden is None else nn.Linear(in_channels, hidden)
        self.set2set = Set2Set(in_channels if hidden is None else hidden, processing_steps=steps)
        self.reset_parameters()

    @property
    def out_channels(self) -> int:
        return int(self.set2set.out_channels)

    def reset_parameters(self) -> None:
        if isinstance(self.proj, nn.Linear):
            nn.init.xavier_uniform_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)
        self.set2set.reset_parameters()

    def forward(self, x: Tensor, index: Tensor, dim_size: int) -> Tensor:
        out: Tensor = self.set2set(self.proj(x), index, dim_size=dim_size)
        return out


def _torch_default_init(module: nn.Module) -> None:
    """PyTorch's default initialisation of every dense layer and embedding in ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Embedding):
            m.reset_parameters()


class MEGNetEncoder(Encoder):
    r"""The MEGNet encoder: embeddings, dense pre-blocks and the MEGNet blocks with skip connections.

    .. math::
        \mathbf v^{(0)} = \mathrm{FF}(\mathrm{Emb}(Z)),\ \mathbf e^{(0)} = \mathrm{FF}(G(d)),\
        \mathbf u^{(0)} = \mathrm{FF}(\mathbf u_{in});\quad
        (\mathbf v, \mathbf e, \mathbf u)^{(t+1)} = (\mathbf v, \mathbf e, \mathbf u)^{(t)}
        + \mathrm{Block}_t(\mathrm{FF}_t(\cdot))

    ``FF`` is two dense layers ``n1 -> n2`` with the shifted softplus; the first block has no
    ``FF_t`` (its inputs already went through the pre-blocks), as in the reference. :math:`G(d)`
    is the Gaussian expansion of the bond length. The atom table only sets the vocabulary and
    the supported elements (MEGNet learns its own element embedding).

    Shapes:
        batch with ``z``, ``edge_index``, ``edge_dist``, ``batch`` (and optionally ``state``
        (B, state_dim)) -> x (|V|, n2), edge_attr (|E|, n2), state (B, n2)
    """

    config: MEGNetConfig

    def build(self, c: MEGNetConfig) -> None:
        self.embedding = nn.Embedding(self.atom_features.table.shape[0], c.embedding_dim)
        self.bond_basis = GaussianBasis.linspace(
            c.gaussian_min, c.gaussian_max, c.n_gaussians, gamma=1.0 / c.gaussian_width**2
        )
        self.atom_ff = DenseStack([c.embedding_dim, c.n1, c.n2])
        self.bond_ff = DenseStack([c.n_gaussians, c.n1, c.n2])
        self.state_ff = DenseStack([c.state_dim, c.n1, c.n2])
        units = [c.n1, c.n1, c.n2]
        self.block_ff = nn.ModuleList(
            nn.ModuleList(DenseStack([c.n2, c.n1, c.n2]) for _ in range(3)) for _ in range(max(0, c.nblocks - 1))
        )
        self.blocks = nn.ModuleList(
            MEGNetBlock(c.n2, c.n2, c.n2, units, c.block_last_activation) for _ in range(c.nblocks)
        )
        self.dropout = nn.Dropout(c.dropout)
        self.out_channels = c.n2

    def reset_parameters(self) -> None:
        if self.config.init == "torch":
            _torch_default_init(self)
            return
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)  # Keras Embedding default
        for m in (self.atom_ff, self.bond_ff, self.state_ff, *self.blocks):
            m.reset_parameters()
        for ffs in self.block_ff:
            for ff in cast("Iterable[DenseStack]", ffs):
                ff.reset_parameters()

    def atom_embedding_module(self) -> nn.Module:
        """The atom pre-block (element embedding then dense layers): its output enters the blocks."""
        return self.atom_ff

    def prune_for_site_readout(self) -> None:
        """A per-site readout reads only atom features: the last block's state update goes."""
        self.blocks[-1].drop_state_update()  # type: ignore[operator]

    def _state(self, batch: Batch) -> Tensor:
        state: Tensor | None = getattr(batch, "state", None)
        if state is None:
            return torch.zeros(batch.num_graphs, self.config.state_dim, device=batch.z.device)
        return state.to(torch.float32).view(batch.num_graphs, self.config.state_dim)

    def forward(self, batch: Batch) -> Encoding:
        x = self.atom_ff(self.embedding(batch.z))
        e = self.bond_ff(self.bond_basis(batch.edge_dist))
        u = self.state_ff(self._state(batch))
        for t, block in enumerate(self.blocks):
            if t == 0:
                x1, e1, u1 = x, e, u
            else:
                ff_x, ff_e, ff_u = cast("Sequence[DenseStack]", self.block_ff[t - 1])
                x1, e1, u1 = ff_x(x), ff_e(e), ff_u(u)
            x1, e1, u1 = block(x1, e1, u1, batch.edge_index, batch.batch)
            x = x + self.dropout(x1)
            e = e + self.dropout(e1)
            u = u + self.dropout(u1)
        return Encoding(x=x, edge_index=batch.edge_index, edge_attr=e, state=u)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"MEGNetEncoder(radius={c.radius}, nblocks={c.nblocks}, n1={c.n1}, n2={c.n2}, "
            f"embedding_dim={c.embedding_dim})"
        )


class MEGNetReadout(GraphReadout):
    r"""MEGNet's graph readout: Set2Set over atoms and over bonds, with the state, then dense layers.

    .. math::
        \hat y = W_o\, g(W_2\, g(W_1 [\mathrm{S2S}(\mathbf v) \oplus \mathrm{S2S}(\mathbf e)
        \oplus \mathbf u] + b_1) + b_2) + b_o

    Shapes:
        encoding with x (|V|, n2), edge_attr (|E|, n2), state (B, n2) -> (B, out_dim)
    """

    config: MEGNetConfig

    def build(self, c: MEGNetConfig) -> None:
        self.dropout = nn.Dropout(c.dropout)
        hidden = c.n3 if c.set2set_projection else None
        self.atom_set2set = ProjectedSet2Set(c.n2, hidden, c.npass)
        self.bond_set2set = ProjectedSet2Set(c.n2, hidden, c.npass)
        self.mlp = DenseStack([2 * self.atom_set2set.out_channels + c.n2, c.n2, c.n3])
        self.fc_out = nn.Linear(c.n3, self.out_dim)

    def reset_parameters(self) -> None:
        for m in (self.atom_set2set, self.bond_set2set, self.mlp):
            m.reset_parameters()
        nn.init.xavier_uniform_(self.fc_out.weight)
        nn.init.zeros_(self.fc_out.bias)
        if self.config.init == "torch":
            _torch_default_init(self)

    def forward(self, enc: Encoding, batch: Batch) -> Tensor:
        assert enc.edge_attr is not None and enc.state is not None and enc.edge_index is not None
        n_graphs = batch.num_graphs
        edge_batch = batch.batch[enc.edge_index[1]]
        pooled = torch.cat(
            (
                self.atom_set2set(enc.x, batch.batch, n_graphs),
                self.bond_set2set(enc.edge_attr, edge_batch, n_graphs),
                enc.state,
            ),
            dim=-1,
        )
        return self.fc_out(self.mlp(self.dropout(pooled)))  # type: ignore[no-any-return]


__all__ = ["DenseStack", "MEGNetBlock", "MEGNetConfig", "MEGNetEncoder", "MEGNetReadout", "ProjectedSet2Set"]
