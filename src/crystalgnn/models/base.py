r"""What every model is made of: an encoder (atoms -> per-atom features, and per-bond features
and a global state where the architecture has them) followed by a readout (per-atom features ->
predictions), composed by :class:`CrystalModel`.

.. math::
    \hat y = \mathrm{Readout}\big(\mathrm{Encoder}(G)\big)

The encoder is one architecture's message passing (CGCNN, MEGNet, SchNet, ALIGNN, ...); the
readout is either that architecture's published pooling and head (a graph-level readout in the
model's own module) or one of the architecture-independent readouts of
:mod:`crystalgnn.models.readouts` (per-site head, site-linear contributions). Splitting the two
is what per-site models, site-contribution explanations and fine-tuning with a new head need.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from crystalgnn.graphs.crystal_graph import GraphConfig

TaskKind = Literal["regression", "classification"]


class AtomFeatureTable(nn.Module):
    """Looks up fixed per-element feature vectors (e.g. CGCNN's 92-dim one-hot table) by Z.

    The table is a buffer, so it is saved in the model's ``state_dict`` and a checkpoint needs
    nothing else to featurise new structures; rows of unsupported elements are NaN.

    Shapes:
        input (N,) atomic numbers -> output (N, F)
    """

    table: Tensor  # registered buffer

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))

    @property
    def num_features(self) -> int:
        return int(self.table.shape[1])

    def supported_elements(self) -> list[int]:
        """Atomic numbers whose feature row is complete."""
        return [int(z) for z in torch.nonzero(~torch.isnan(self.table).any(dim=1)).flatten()]

    def forward(self, z: Tensor) -> Tensor:
        return self.table[z]


def explain_edge_mask(conv: MessagePassing, num_edges: int) -> Tensor | None:
    r"""The per-edge mask PyG's explain protocol put on ``conv``, as a (|E|, 1) column, or ``None``.

    :func:`torch_geometric.explain.algorithm.utils.set_masks` sets ``explain``, ``_edge_mask``
    and ``_apply_sigmoid`` on every :class:`~torch_geometric.nn.MessagePassing` module;
    ``MessagePassing.propagate`` then multiplies each message by the (sigmoid of the) mask
    before aggregation (``explain_message``). Our convolutions keep their own fast forward and
    call this at the same place: message :math:`m_{ij} \to \mu_{ij} m_{ij}`, then aggregate.
    A layer whose ``explain`` is ``False`` never receives a mask (ALIGNN's line-graph layers).
    """
    if not conv.explain:
        return None
    mask: Tensor | None = conv._edge_mask
    if mask is None:
        raise ValueError(f"{type(conv).__name__}: explain is on but no edge mask was set (set_masks)")
    if conv._apply_sigmoid:
        mask = mask.sigmoid()
    if mask.numel() != num_edges:
        raise ValueError(f"{type(conv).__name__}: edge mask has {mask.numel()} entries for {num_edges} edges")
    return mask.view(-1, 1)


class ModelConfig:
    """Base of the model config dataclasses (``@dataclass(frozen=True)`` subclasses).

    Every graph model spells its graph the same way: ``radius`` (neighbour cutoff, Å) and
    ``max_neighbors`` (cap per atom, ``None`` for all); :meth:`graph_config` turns them into the
    graph builder's :class:`~crystalgnn.graphs.crystal_graph.GraphConfig`. ``to_dict()`` gives
    the fields (what checkpoints and ``config.yaml`` store).
    """

    def graph_config(self) -> GraphConfig:
        return GraphConfig(radius=self.radius, max_neighbors=self.max_neighbors)  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(cast(Any, self))  # the subclasses are dataclasses


@dataclass
class Encoding:
    """An encoder's output for a batch of B structures.

    Attributes:
        x: per-atom features (|V|, F).
        edge_index: the bonds ``edge_attr`` belongs to (2, |E|) (ALIGNN's are the undirected
            copies of the batch's bonds), or ``None``.
        edge_attr: per-bond features (|E|, F_e), or ``None`` for models without them.
        state: global state per structure (B, F_u) (MEGNet), or ``None``.
    """

    x: Tensor
    edge_index: Tensor | None = None
    edge_attr: Tensor | None = None
    state: Tensor | None = None


class Encoder(nn.Module):
    """Base of the encoders: keeps the config and the atom-feature table, then builds the
    architecture's layers with :meth:`build` and initialises them with :meth:`reset_parameters`.

    Args:
        config: the model's hyper-parameters (its :class:`ModelConfig` dataclass).
        atom_table: (max_Z + 1, F) atom-feature table (rows of unsupported elements are NaN).

    Subclasses set ``out_channels`` (the width of ``Encoding.x``) in :meth:`build`.
    """

    out_channels: int

    def __init__(self, config: Any, atom_table: Tensor, *, reset: bool = True) -> None:
        super().__init__()
        self.config = config
        self.atom_features = AtomFeatureTable(atom_table)
        self.build(config)
        if reset:  # the registry resets a whole model once, in the architecture's order
            self.reset_parameters()

    def build(self, config: Any) -> None:
        """Create the layers (called once by the constructor, before ``reset_parameters``)."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Initialise the layers (default: keep PyTorch's initialisation)."""

    def forward(self, batch: Any) -> Encoding:
        raise NotImplementedError

    def atom_embedding_module(self) -> nn.Module:
        """The module whose output is the embedded atom features, the input of the first
        convolution (node masks of :mod:`crystalgnn.explain` scale its output; default
        ``self.embedding``).
        """
        module = self.embedding
        assert isinstance(module, nn.Module)
        return module

    def explain_edge_index(self, batch: Any) -> Tensor:
        """The bonds the convolutions pass messages along, in the order edge masks follow
        (default: the batch's ``edge_index``).
        """
        edge_index: Tensor = batch.edge_index
        return edge_index

    def prune_for_site_readout(self) -> None:
        """Remove layers whose output only a graph-level readout reads (called by the registry
        when a per-site readout is attached), so no parameter is left without a gradient.
        """


class GraphReadout(nn.Module):
    """Base of the architectures' own graph-level readouts (their published pooling and head).

    Args:
        config: the model's hyper-parameters.
        in_channels: width of the encoder's per-atom features.
        out_dim: regression targets, or classes for classification (logits).
        task: ``"regression"`` or ``"classification"`` (some heads use dropout only for
            classification, as their reference code).
    """

    level = "graph"

    def __init__(
        self, config: Any, in_channels: int, *, out_dim: int, task: TaskKind = "regression", reset: bool = True
    ) -> None:
        super().__init__()
        self.config, self.in_channels, self.out_dim, self.task = config, in_channels, out_dim, task
        self.build(config)
        if reset:
            self.reset_parameters()

    def build(self, config: Any) -> None:
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Initialise the layers (default: keep PyTorch's initialisation)."""

    def forward(self, enc: Encoding, batch: Any) -> Tensor:
        raise NotImplementedError


class CrystalModel(nn.Module):
    """An encoder followed by a readout: ``forward(batch) = readout(encoder(batch), batch)``.

    Args:
        name: registry name of the architecture (``cgcnn``, ``megnet``, ...).
        encoder: the architecture's :class:`Encoder`.
        readout: a graph-level readout (B, out_dim) or a per-site one (|V|, out_dim); its
            ``level`` attribute says which.
        task: ``"regression"`` or ``"classification"``.

    Shapes:
        batch -> (B, out_dim) for graph-level readouts, (|V|, out_dim) for per-site ones
    """

    def __init__(self, name: str, encoder: Encoder, readout: nn.Module, *, task: TaskKind = "regression") -> None:
        super().__init__()
        self.name, self.task = name, task
        self.encoder = encoder
        self.readout = readout

    @property
    def config(self) -> Any:
        return self.encoder.config

    @property
    def atom_features(self) -> AtomFeatureTable:
        return self.encoder.atom_features

    @property
    def level(self) -> str:
        """``"graph"`` (one output per structure) or ``"site"`` (one per atom)."""
        return str(getattr(self.readout, "level", "graph"))

    def forward(self, batch: Any) -> Tensor:
        return self.readout(self.encoder(batch), batch)  # type: ignore[no-any-return]

    def node_embeddings(self, batch: Any) -> Tensor:
        """The encoder's per-atom features (|V|, F)."""
        enc: Encoding = self.encoder(batch)
        return enc.x

    def reset_parameters(self) -> None:
        """Re-initialise the encoder, then the readout."""
        self.encoder.reset_parameters()
        self.readout.reset_parameters()  # type: ignore[operator]

    def replace_readout(self, readout: nn.Module) -> None:
        """Put a new readout on the encoder (fine-tuning on a new target)."""
        self.readout = readout

    def n_parameters(self) -> int:
        """Trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, task={self.task!r}, level={self.level!r}"
