"""Architecture-independent readouts: per-site predictions and site-linear contributions.

* :class:`SoftplusMLP` is CGCNN's post-pooling network (Xie & Grossman 2018), the one MLP that
  the CGCNN head, the per-site head and SOAP -> MLP share.
* :class:`SiteReadout` applies it to every atom: one prediction per site (the per-site CGCNN of
  Karaguesian et al., NeurIPS ML4PS 2021).
* :class:`SiteLinearReadout` predicts one scalar per atom and pools them (mean for intensive,
  sum for extensive targets): the prediction is exactly the mean (or sum) of the atoms'
  contributions, the linear site-energy readout the CGCNN paper uses to explain perovskites.
"""

from __future__ import annotations

from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter

from crystalgnn.models.base import Encoding

ReadoutKind = Literal["graph", "site", "site-linear"]
READOUT_KINDS: tuple[str, ...] = ("graph", "site", "site-linear")


class SoftplusMLP(nn.Module):
    r"""CGCNN's post-pooling network: :math:`W_o\, g(\ldots g(W_1\, g(x) + b_1) \ldots) + b_o`.

    :math:`g` is softplus. Layer names are the reference code's (``conv_to_fc`` ->
    ``n_h - 1`` hidden ``fcs`` -> ``fc_out``), so original CGCNN checkpoints map one to one.

    Args:
        in_dim: input width.
        hidden: hidden width (CGCNN ``h_fea_len``, 128).
        n_h: hidden layers, ``conv_to_fc`` included (CGCNN ``n_h``, 1).
        out_dim: outputs.
        dropout: dropout after ``conv_to_fc`` (CGCNN uses 0.5 for classification only).
        input_activation: apply :math:`g` to the input first (CGCNN does to its pooled vector).

    Shapes:
        (N, in_dim) -> (N, out_dim)
    """

    def __init__(
        self, in_dim: int, hidden: int = 128, n_h: int = 1, out_dim: int = 1, *, dropout: float = 0.0,
        input_activation: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        if n_h < 1:
            raise ValueError("n_h (hidden layers) must be >= 1")
        self.input_activation = input_activation
        self.conv_to_fc = nn.Linear(in_dim, hidden)
        self.fcs = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(n_h - 1))
        self.dropout = nn.Dropout(dropout)
        self.fc_out = nn.Linear(hidden, out_dim)

    def reset_parameters(self) -> None:
        for m in (self.conv_to_fc, *self.fcs, self.fc_out):
            m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if self.input_activation:
            x = F.softplus(x)
        h = self.dropout(F.softplus(self.conv_to_fc(x)))
        for fc in self.fcs:
            h = F.softplus(fc(h))
        return self.fc_out(h)  # type: ignore[no-any-return]


class SiteReadout(nn.Module):
    r"""One prediction per atom: :math:`\hat y_i = \mathrm{MLP}(\mathbf v_i)` (:class:`SoftplusMLP`).

    Shapes:
        encoding with x (|V|, in_dim) -> (|V|, out_dim)
    """

    level = "site"

    def __init__(self, in_dim: int, hidden: int = 128, n_h: int = 1, out_dim: int = 1) -> None:
        super().__init__()
        self.mlp = SoftplusMLP(in_dim, hidden, n_h, out_dim)

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()

    def forward(self, enc: Encoding, batch: Any = None) -> Tensor:
        return self.mlp(enc.x)  # type: ignore[no-any-return]


class SiteLinearReadout(nn.Module):
    r"""A per-atom contribution pooled into the prediction (the CGCNN paper's linear readout).

    .. math::
        c_i = \mathrm{MLP}(\mathbf v_i), \qquad
        \hat y = \frac{1}{|V|}\sum_i c_i \ \text{(mean)} \quad\text{or}\quad \hat y = \sum_i c_i \ \text{(sum)}

    Args:
        in_dim: width of the encoder's per-atom features.
        hidden, n_h: the per-atom :class:`SoftplusMLP`.
        out_dim: outputs per structure.
        reduce: ``"mean"`` (intensive targets) or ``"sum"`` (extensive ones).

    Shapes:
        encoding with x (|V|, in_dim), batch with ``batch`` (|V|,) -> (B, out_dim)
    """

    level = "graph"

    def __init__(
        self, in_dim: int, hidden: int = 128, n_h: int = 1, out_dim: int = 1, reduce: Literal["mean", "sum"] = "mean"
    ) -> None:
        super().__init__()
        if reduce not in ("mean", "sum"):
            raise ValueError(f"reduce must be mean or sum, got {reduce!r}")
        self.reduce = reduce
        self.mlp = SoftplusMLP(in_dim, hidden, n_h, out_dim)

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()

    def contributions(self, enc: Encoding) -> Tensor:
        """The per-atom terms :math:`c_i` (|V|, out_dim)."""
        return self.mlp(enc.x)  # type: ignore[no-any-return]

    def forward(self, enc: Encoding, batch: Any) -> Tensor:
        c = self.contributions(enc)
        pooled: Tensor = scatter(c, batch.batch, dim=0, dim_size=batch.num_graphs, reduce=self.reduce)
        return pooled

    def extra_repr(self) -> str:
        return f"reduce={self.reduce!r}"


def site_readout(
    kind: str, in_dim: int, *, out_dim: int, hidden: int = 128, n_h: int = 1, reduce: str = "mean"
) -> nn.Module:
    """The architecture-independent readout ``kind`` (``site`` or ``site-linear``)."""
    if kind == "site":
        return SiteReadout(in_dim, hidden, n_h, out_dim)
    if kind == "site-linear":
        return SiteLinearReadout(in_dim, hidden, n_h, out_dim, reduce=reduce)  # type: ignore[arg-type]
    raise ValueError(f"unknown readout {kind!r}; choose one of {', '.join(READOUT_KINDS)}")
