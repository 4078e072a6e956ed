"""Regression losses over labelled entries only (NaN labels are masked, never dropped silently).

``mse`` (the CGCNN paper's, the default) makes a network predict the conditional mean; ``l1``
(mean absolute error, as ALIGNN and matgl train) the conditional median, which is what a test
MAE rewards when a label is ambiguous given the structure (e.g. the sign of a moment in an
antiferromagnet); ``huber`` (``smooth_l1`` with beta 1 on normalised targets) sits in between.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

LossName = Literal["mse", "l1", "huber"]
LOSSES: tuple[str, ...] = ("mse", "l1", "huber")


def check_loss(name: str) -> str:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return name


def masked_regression_loss(pred: Tensor, target: Tensor, loss: str = "mse") -> tuple[Tensor, Tensor]:
    """Mean ``loss`` over the finite entries of ``target``; returns (loss, number of labels used)."""
    check_loss(loss)
    mask = torch.isfinite(target)
    safe = torch.nan_to_num(target)
    if loss == "mse":
        per = (pred - safe) ** 2
    elif loss == "l1":
        per = (pred - safe).abs()
    else:  # huber
        per = F.smooth_l1_loss(pred, safe, reduction="none", beta=1.0)
    n = mask.sum()
    return torch.where(mask, per, torch.zeros_like(per)).sum() / n.clamp(min=1), n
