r"""Training time: the epoch clock carried through checkpoints, the time budget and the
learning-rate schedules that follow the budget instead of the epoch count.

A time budget ``B`` (``--time-budget MINUTES``) counts training time only (the epochs with their
validation, across every process of a resumed run; reading data and building graphs are not
counted). After each epoch, with ``t`` the training time so far and ``t_e`` the last epoch's
duration, the run stops when

.. math::
    t + t_e > B

i.e. when the next epoch would not end inside the budget; the run therefore ends within one
epoch of the budget. A run killed before its budget is spent resumes from ``last.ckpt`` with the
time already spent restored, so it gets only the remainder.

Schedules over a budget. With a budget, the ``cosine`` and ``onecycle`` schedules are driven by
the fraction of the budget spent, :math:`p = t / B` (read at every optimiser step), instead of the
epoch or step count, so the learning rate anneals over the epochs that fit whatever their number:

.. math::
    \eta_{\cos}(p) = \tfrac{\eta_0}{2}\,(1 + \cos \pi p)

and one-cycle (Smith & Topin 2019, PyTorch's ``OneCycleLR`` shape: a cosine warm-up from
:math:`\eta_0/25` to :math:`\eta_0` over the first 30 % of the budget, then a cosine decay to
:math:`\eta_0/(25 \cdot 10^4)`). Under a budget a run is not bit-for-bit repeatable (the learning
rate depends on the machine's speed); without one nothing changes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

#: one-cycle shape (PyTorch's OneCycleLR defaults)
ONECYCLE_WARMUP = 0.3
ONECYCLE_DIV = 25.0
ONECYCLE_FINAL_DIV = 1e4


class EpochTimer(Callback):
    """Wall-clock training time, carried through checkpoints so resumed runs report the total.

    An epoch is timed from its start to its end, validation included. A checkpoint written
    while an epoch is finishing (after its validation) counts that epoch as done.
    """

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.epoch_times: list[float] = []
        self._t0: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._t0 is None:
            return
        dt = time.perf_counter() - self._t0
        self.elapsed += dt
        self.epoch_times.append(dt)
        self._t0 = None
        pl_module.log("epoch_time_s", dt, on_epoch=True, on_step=False)  # a column of log/metrics.csv

    def now(self) -> float:
        """Training time so far (s), the running epoch included."""
        running = time.perf_counter() - self._t0 if self._t0 is not None else 0.0
        return self.elapsed + running

    def state_dict(self) -> dict[str, Any]:
        if self._t0 is None:
            return {"elapsed": self.elapsed, "epoch_times": list(self.epoch_times)}
        dt = time.perf_counter() - self._t0  # saved after this epoch's validation: count it
        return {"elapsed": self.elapsed + dt, "epoch_times": [*self.epoch_times, dt]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.elapsed = float(state.get("elapsed", 0.0))
        self.epoch_times = list(state.get("epoch_times", []))


class TimeBudget(Callback):
    """Stop training when the next epoch would end past ``minutes`` of training time.

    Args:
        minutes: the budget :math:`B`.
        timer: the run's :class:`EpochTimer` (its time survives resumes).
    """

    def __init__(self, minutes: float, timer: EpochTimer) -> None:
        if not minutes > 0:
            raise ValueError(f"the time budget must be > 0 minutes (got {minutes})")
        self.seconds = 60.0 * minutes
        self.timer = timer
        self.stopped = False

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.spent(self.timer.elapsed, self.timer.epoch_times[-1:]):
            self.stopped = True
            trainer.should_stop = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a resumed run whose budget is already spent trains no further epoch
        if self.timer.epoch_times and self.spent(self.timer.elapsed, self.timer.epoch_times[-1:]):
            self.stopped = True
            trainer.should_stop = True

    def spent(self, elapsed: float, last_epoch: list[float]) -> bool:
        """``True`` when an epoch as long as the last one would end past the budget."""
        return elapsed + (last_epoch[0] if last_epoch else 0.0) > self.seconds

    def progress(self) -> float:
        """The fraction of the budget spent, :math:`p = t/B` in [0, 1]."""
        return min(1.0, self.timer.now() / self.seconds)


def cosine_factor(p: float) -> float:
    r"""Cosine annealing to zero over the budget: :math:`(1 + \cos \pi p)/2`."""
    return 0.5 * (1.0 + math.cos(math.pi * min(max(p, 0.0), 1.0)))


def onecycle_factor(p: float) -> float:
    r"""One-cycle over the budget: cosine warm-up from 1/25 to 1 (first 30 %), then cosine decay
    to :math:`1/(25 \cdot 10^4)`.
    """
    p = min(max(p, 0.0), 1.0)
    start, end = 1.0 / ONECYCLE_DIV, 1.0 / (ONECYCLE_DIV * ONECYCLE_FINAL_DIV)
    if p < ONECYCLE_WARMUP:
        q = p / ONECYCLE_WARMUP
        return 1.0 + (start - 1.0) * 0.5 * (1.0 + math.cos(math.pi * q))
    q = (p - ONECYCLE_WARMUP) / (1.0 - ONECYCLE_WARMUP)
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * q))


BUDGET_SCHEDULES: dict[str, Callable[[float], float]] = {"cosine": cosine_factor, "onecycle": onecycle_factor}
"""Schedules that follow the budget (others keep their epoch-based form under a budget)."""


def find_budget(trainer: Any) -> TimeBudget | None:
    """The trainer's :class:`TimeBudget` callback, if it has one."""
    for cb in getattr(trainer, "callbacks", None) or []:
        if isinstance(cb, TimeBudget):
            return cb
    return None


__all__ = ["BUDGET_SCHEDULES", "EpochTimer", "TimeBudget", "cosine_factor", "find_budget", "onecycle_factor"]
