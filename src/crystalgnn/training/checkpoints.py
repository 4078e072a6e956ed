"""Checkpoints: reading them safely, rebuilding the task they hold, writing them.

Files are read with ``torch.load(weights_only=True)``: never an arbitrary pickle. Layouts of older
releases are brought up to date by :mod:`crystalgnn.training.migration`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from crystalgnn._version import __version__
from crystalgnn.training.migration import FORMAT_VERSION, CheckpointError, format_version, migrate, v1_graph_key
from crystalgnn.training.task import CrystalTask

__all__ = ["CheckpointError", "format_version", "load_task", "migrate", "read_checkpoint", "save_task",
           "task_from_checkpoint", "v1_graph_key"]  # fmt: skip


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load`` restricted to tensors and plain containers, checked for a crystalgnn layout."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable crystalgnn checkpoint ({msg})") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path}: not a crystalgnn checkpoint (no state_dict and hyper_parameters)")
    return ckpt


def task_from_checkpoint(ckpt: dict[str, Any], source: str | Path = "checkpoint") -> CrystalTask:
    """Rebuild a :class:`~crystalgnn.training.task.CrystalTask` (any format) with strict weight loading."""
    ckpt = migrate(ckpt)
    hp = dict(ckpt["hyper_parameters"])
    state = ckpt["state_dict"]
    table = state.get("model.encoder.atom_features.table")
    if table is None:
        raise CheckpointError(f"{source}: no atom-feature table in the weights (not a crystalgnn model)")
    try:
        task = CrystalTask(**hp, atom_table=table)
        task.load_state_dict(state, strict=True)
    except (TypeError, KeyError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{source}: weights or settings do not fit the model ({first})") from exc
    return task.eval()


def load_task(path: str | Path) -> CrystalTask:
    """:func:`read_checkpoint` then :func:`task_from_checkpoint`."""
    return task_from_checkpoint(read_checkpoint(path), source=path)


def save_task(task: CrystalTask, path: str | Path) -> Path:
    """Write the weights and hyper-parameters (no optimiser state) in this release's format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": task.state_dict(),
            "hyper_parameters": dict(task.hparams),
            "crystalgnn_format_version": FORMAT_VERSION,
            "crystalgnn_version": __version__,
        },
        str(path),
    )
    return path
