"""Optimisers (SGD with momentum, Adam, AdamW) and schedules (MultiStepLR, cosine, one-cycle).

Fine-tuning (:func:`param_groups`): the encoder may learn at a fraction of the head's learning
rate (discriminative learning rates, Howard & Ruder, ACL 2018, Sec. 3.2; as TL-CGCNN's
fine-tuning, Lee & Asahi, Comput. Mater. Sci. 190, 110314, 2021). With a time budget, ``cosine`` and ``onecycle`` follow the fraction of the budget spent
(:mod:`crystalgnn.training.clock`) instead of the epoch or step count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def param_groups(model: torch.nn.Module, optim: dict[str, Any]) -> list[dict[str, Any]]:
    """The trainable parameters of a ``CrystalModel`` as optimiser groups: the encoder's at
    ``encoder_lr_factor`` x ``lr`` (when the factor is not 1), every other one at ``lr``.
    """
    factor = float(optim.get("encoder_lr_factor", 1.0))
    encoder = getattr(model, "encoder", None)
    own = {id(p) for p in encoder.parameters()} if encoder is not None and factor != 1.0 else set()
    trainable = [p for p in model.parameters() if p.requires_grad]
    head = [p for p in trainable if id(p) not in own]
    groups: list[dict[str, Any]] = [{"params": head}] if head else []
    if own:
        lr = float(optim.get("lr", 0.01))
        groups.append({"params": [p for p in trainable if id(p) in own], "lr": lr * factor, "name": "encoder"})
    return groups


def make_optimizer(
    params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]], optim: dict[str, Any], trainer: Any = None
) -> Any:
    """Build the optimiser and scheduler described by ``optim`` (keys of ``TrainConfig``).

    ``params``: parameters, or groups of them (:func:`param_groups`) whose own ``lr`` the
    schedules scale in the same proportion as the main one.
    """
    name = str(optim.get("optimizer", "sgd")).lower()
    lr = float(optim.get("lr", 0.01))
    wd = float(optim.get("weight_decay", 0.0))
    opt: torch.optim.Optimizer
    if name == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=float(optim.get("momentum", 0.9)), weight_decay=wd)
    elif name == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=wd)
    elif name == "adamw":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    else:
        raise ValueError(f"unknown optimizer {name!r}; use sgd, adam or adamw")
    sched = str(optim.get("scheduler", "multistep")).lower()
    epochs = int(optim.get("epochs", 30))
    if sched in ("none", "constant"):
        return opt
    from crystalgnn.training.clock import BUDGET_SCHEDULES, find_budget

    budget = find_budget(trainer)
    if budget is not None and sched in BUDGET_SCHEDULES:
        factor = BUDGET_SCHEDULES[sched]
        follow = torch.optim.lr_scheduler.LambdaLR(opt, lambda _step: factor(budget.progress()))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": follow, "interval": "step"}}
    s: torch.optim.lr_scheduler.LRScheduler
    if sched == "multistep":
        milestones = list(optim.get("lr_milestones", [100]))
        s = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": s, "interval": "epoch"}}
    if sched == "cosine":
        s = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": s, "interval": "epoch"}}
    if sched == "onecycle":
        steps = int(trainer.estimated_stepping_batches) if trainer is not None else epochs * 100
        peaks = [float(g["lr"]) for g in opt.param_groups]
        s = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peaks, total_steps=max(1, steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": s, "interval": "step"}}
    raise ValueError(f"unknown scheduler {sched!r}; use multistep, cosine, onecycle or none")
