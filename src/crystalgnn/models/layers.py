"""Pieces shared by the models: distance expansions, the atom-feature lookup, and the base
classes behind the registry interface (:class:`ModelConfig` for the config dataclasses,
:class:`CrystalModel` for the models' common constructor)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from crystalgnn.graphs.crystal_graph import GraphConfig


_EXP_FLOOR = -87.0  # exp(-87) = 1.6e-38, just above float32's smallest normal number


def gaussian_basis(dist: Tensor, centres: Tensor, coeff: float) -> Tensor:
    r""":math:`\exp(-c\,(d - \mu_k)^2)` for every distance and centre: (E,) -> (E, K).

    The Gaussian distance features of CGCNN, MEGNet and ALIGNN. Exponents below -87 are raised
    to -87: exp's vectorised CPU kernel takes a slow path for results under float32's smallest
    normal number (~1.2e-38), and most exponents are far below it (down to -1600 for CGCNN's
    8 Å edges), which made this the costliest elementwise step of a CGCNN step; with the floor
    it is ~6x faster and the features change by less than 2e-38.
    """
    if dist.requires_grad:
        return torch.exp((-coeff * (dist.unsqueeze(-1) - centres) ** 2).clamp(min=_EXP_FLOOR))
    d = dist.unsqueeze(-1) - centres  # one new (E, K) tensor, then in place
    return d.square_().mul_(-coeff).clamp_(min=_EXP_FLOOR).exp_()


class GaussianExpansion(nn.Module):
    r"""Gaussian basis of a distance (CGCNN, Xie & Grossman 2018, Eq. 2 of the SI).

    .. math::
        u_k(d) = \exp\left(-\frac{(d - \mu_k)^2}{\sigma^2}\right), \quad
        \mu_k = d_{min} + k \, \Delta, \ k = 0..K-1

    with centres ``numpy.arange(dmin, dmax + step, step)`` (dmin to dmax inclusive) and width ``var``
    (CGCNN: dmin 0, dmax = radius 8, step 0.2, var = step -> K = 41).

    Args:
        dmin: first centre (Å).
        dmax: last centre (Å).
        step: spacing of centres (Å).
        var: width sigma (Å); defaults to ``step``.

    Shapes:
        input (E,) -> output (E, K)
    """

    def __init__(self, dmin: float = 0.0, dmax: float = 8.0, step: float = 0.2, var: float | None = None) -> None:
        super().__init__()
        if dmin >= dmax or step <= 0:
            raise ValueError("need dmin < dmax and step > 0")
        # same centres as numpy.arange(dmin, dmax + step, step) in the reference code (which
        # holds one centre beyond dmax when (dmax - dmin) / step is not a whole number)
        n = len(np.arange(dmin, dmax + step, step))
        centres = torch.arange(n, dtype=torch.float64) * step + dmin
        self.register_buffer("centres", centres.float())
        self.var = float(var if var is not None else step)

    @property
    def num_features(self) -> int:
        return int(self.centres.numel())

    def forward(self, dist: Tensor) -> Tensor:
        return gaussian_basis(dist, self.centres, 1.0 / self.var**2)

    def extra_repr(self) -> str:
        return f"centres={self.num_features}, var={self.var}"


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


class AtomFeatureTable(nn.Module):
    """Looks up fixed per-element feature vectors (e.g. CGCNN's 92-dim one-hot table) by Z.

    The table is a buffer, so it is saved in the model's ``state_dict`` and a checkpoint needs
    nothing else to featurise new structures.

    Shapes:
        input (N,) atomic numbers -> output (N, F)
    """

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))

    @property
    def num_features(self) -> int:
        return int(self.table.shape[1])

    def supported_elements(self) -> list[int]:
        return [int(z) for z in torch.nonzero(~torch.isnan(self.table).any(dim=1)).flatten()]

    def forward(self, z: Tensor) -> Tensor:
        return self.table[z]


class ModelConfig:
    """Base of the model config dataclasses (``@dataclass(frozen=True)`` subclasses).

    ``to_dict()`` gives the fields (what checkpoints and ``config.yaml`` store);
    ``graph_config()`` the graph the model reads: every neighbour within ``radius``, at most
    ``max_neighbors`` per atom (a config with other field names or graph options overrides it).
    """

    def graph_config(self) -> GraphConfig:
        return GraphConfig(radius=self.radius, max_neighbors=self.max_neighbors)  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


class CrystalModel(nn.Module):
    """Base of the registered models: the registry's constructor ``(config, atom_table, *, out_dim, task)``.

    Keeps ``config``, ``out_dim`` and ``task`` and the atom-feature table
    (:class:`AtomFeatureTable`, ``self.atom_features``: a buffer, so a checkpoint carries the
    features and the supported elements), then builds the model's own layers with
    :meth:`build` and initialises them with :meth:`reset_parameters`.

    Args:
        config: the model's hyper-parameters (its :class:`ModelConfig` dataclass).
        atom_table: (max_Z + 1, F) atom-feature table (rows of unsupported elements are NaN).
        out_dim: regression targets, or classes for classification (logits).
        task: ``"regression"`` or ``"classification"``.
    """

    def __init__(
        self,
        config: Any,
        atom_table: Tensor,
        *,
        out_dim: int = 1,
        task: Literal["regression", "classification"] = "regression",
    ) -> None:
        super().__init__()
        self.config, self.out_dim, self.task = config, out_dim, task
        self.atom_features = AtomFeatureTable(atom_table)
        self.build(config)
        self.reset_parameters()

    def build(self, config: Any) -> None:
        """Create the model's layers (called once by the constructor, before ``reset_parameters``)."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """Initialise the layers (default: keep PyTorch's initialisation)."""
