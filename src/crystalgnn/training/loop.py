"""The Lightning fit every run kind shares: callbacks, trainer, resume, log merge, timing.

A run folder's ``checkpoints/best.ckpt`` is the best validation epoch and ``checkpoints/last.ckpt``
the last completed epoch (the resume point); ``log/metrics.csv`` keeps the rows of an interrupted
process in front of the resumed ones. Data order and dropout are seeded per epoch, so a run
killed and resumed ends with the same weights as one that went straight through.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger

from crystalgnn.training.clock import EpochTimer, TimeBudget
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.quiet import quiet_lightning


class EpochProgressBar(TQDMProgressBar):
    """Lightning's progress bar with epochs counted as people count them: ``Epoch 1/30`` for the
    first of 30 (Lightning shows ``Epoch 0`` and no total).
    """

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(epoch_label(trainer.current_epoch, trainer.max_epochs))


def epoch_label(current_epoch: int, max_epochs: int | None) -> str:
    """``Epoch k/N`` for Lightning's zero-based ``current_epoch`` (``Epoch k`` without a limit)."""
    total = f"/{max_epochs}" if max_epochs is not None and max_epochs > 0 else ""
    return f"Epoch {current_epoch + 1}{total}"


@dataclass
class FitResult:
    """What :func:`fit` leaves: the finished trainer, its epoch timer and the best checkpoint."""

    trainer: L.Trainer
    timer: EpochTimer
    best_path: Path
    budget: TimeBudget | None = None
    early_stopping: EarlyStopping | None = None

    @property
    def stopped_by(self) -> str:
        """Why training ended: ``time_budget``, ``early_stopping`` or ``epochs``."""
        if self.budget is not None and self.budget.stopped:
            return "time_budget"
        if self.early_stopping is not None and self.early_stopping.stopped_epoch > 0:
            return "early_stopping"
        return "epochs"

    def summary(self, module: Any, t_start: float, seed: int, data_time_s: float | None = None) -> dict[str, Any]:
        """The training entries of ``metrics.json``, in the file's order.

        ``epochs_run``, ``train_time_s`` (all processes of a resumed run), ``time_per_epoch_s``
        (mean), ``data_time_s`` (when given), ``wall_time_this_process_s`` (since ``t_start``),
        ``n_parameters``, ``checkpoint_bytes`` (of ``best.ckpt``) and ``seed``; with a time
        budget also ``time_budget_s``; ``stopped_by`` (``epochs``, ``early_stopping`` or
        ``time_budget``).
        """
        times = self.timer.epoch_times
        out: dict[str, Any] = {
            "epochs_run": int(self.trainer.current_epoch),
            "train_time_s": round(self.timer.elapsed, 3),
            "time_per_epoch_s": round(float(np.mean(times)) if times else float("nan"), 4),
            "stopped_by": self.stopped_by,
        }
        if self.budget is not None:
            out["time_budget_s"] = round(self.budget.seconds, 3)
        if data_time_s is not None:
            out["data_time_s"] = round(data_time_s, 3)
        out["wall_time_this_process_s"] = round(time.perf_counter() - t_start, 3)
        out["n_parameters"] = module.n_parameters()
        out["checkpoint_bytes"] = self.best_path.stat().st_size if self.best_path.is_file() else None
        out["seed"] = seed
        return out


def fit(
    module: L.LightningModule,
    train_loader: Any,
    val_loader: Any,
    run_dir: Path,
    cfg: TrainConfig,
    monitor: str = "val_mae",
    mode: str = "min",
    callbacks: list[Callback] | None = None,
) -> FitResult:
    """Lightning fit into ``run_dir``, resuming from ``checkpoints/last.ckpt`` when it exists.

    Callbacks: ``ModelCheckpoint`` (``best.ckpt`` by ``monitor``/``mode``; ``last.ckpt`` after every epoch),
    :class:`~crystalgnn.training.clock.EpochTimer`, ``EarlyStopping`` when
    ``cfg.early_stopping_patience`` is set and :class:`~crystalgnn.training.clock.TimeBudget`
    when ``cfg.max_time_minutes`` (``--time-budget``) is;
    the per-epoch log goes to ``log/metrics.csv`` (rows of an interrupted process are kept in
    front of the resumed ones). Trainer settings from ``cfg``: ``epochs``, ``accelerator``,
    ``devices``, ``num_nodes``, ``strategy``, ``progress``, ``max_time_minutes``; ``compile_model``
    (``--compile``) compiles the model in place with ``torch.compile(dynamic=True)``. ``callbacks``
    are added to these (e.g. the tuner's pruning callback).
    """
    quiet_lightning()
    ckpt_dir = run_dir / "checkpoints"
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode=mode, enable_version_counter=False)
    # a second, unmonitored checkpoint rewritten after every epoch: the resume point
    last_ckpt = ModelCheckpoint(
        dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1, enable_version_counter=False
    )
    timer = EpochTimer()
    extra = list(callbacks or [])
    callbacks = [best, last_ckpt, timer]
    if cfg.progress:
        callbacks.append(EpochProgressBar())
    early = None
    if cfg.early_stopping_patience:
        early = EarlyStopping(monitor=monitor, mode=mode, patience=cfg.early_stopping_patience)
        callbacks.append(early)
    budget = TimeBudget(cfg.max_time_minutes, timer) if cfg.max_time_minutes else None
    if budget is not None:
        callbacks.append(budget)
    callbacks.extend(extra)
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        callbacks=callbacks,
        logger=CSVLogger(str(run_dir), name="log", version=""),
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        deterministic=True,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
    )
    model = getattr(module, "model", None)
    if cfg.compile_model and isinstance(model, torch.nn.Module):
        model.compile(dynamic=True)  # in place: parameter names and checkpoints unchanged
    last = ckpt_dir / "last.ckpt"
    log_csv = run_dir / "log" / "metrics.csv"
    # Lightning's CSV logger deletes an existing metrics.csv: keep the epochs logged before an
    # interruption and put them back in front of the resumed run's rows.
    old_log = log_csv.read_bytes() if last.is_file() and log_csv.is_file() else None
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if last.is_file() else None)
    if old_log is not None:
        _merge_resumed_log(old_log, log_csv)
    return FitResult(trainer, timer, ckpt_dir / "best.ckpt", budget, early)


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN and infinities as ``None`` and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def finish_run(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Write ``metrics.json`` (strict JSON: NaN as null), which marks the run finished."""
    (run_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2, allow_nan=False))


def _merge_resumed_log(old_log: bytes, log_csv: Path) -> None:
    """Rows of the interrupted process for epochs before the resumed ones, then the new rows."""
    import io

    import pandas as pd

    try:
        old = pd.read_csv(io.BytesIO(old_log))
    except (ValueError, pd.errors.EmptyDataError):
        return
    new = pd.read_csv(log_csv) if log_csv.is_file() else pd.DataFrame()
    if "epoch" in old and "epoch" in new and len(new):
        old = old[old["epoch"] < new["epoch"].min()]
    merged = pd.concat([old, new], ignore_index=True)
    log_csv.parent.mkdir(parents=True, exist_ok=True)
    merged.to_csv(log_csv, index=False)
