"""Predictions and metrics of a trained task on held-out entries (a run's test split)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.metrics import graph_prediction_table, site_frame, site_report_metrics, unit_columns
from crystalgnn.training.loaders import make_loader
from crystalgnn.training.task import CrystalTask


@torch.no_grad()
def predict_inputs(task: CrystalTask, inputs: Any, batch_size: int = 256) -> Any:
    """Predictions of ``task`` for a list of inputs: (N, T) regression values, (N,) P(class 1),
    or one (n_sites,) array per structure for per-site models.
    """
    if task.spec.level == "site":
        out: list[np.ndarray] = []
        for b in make_loader(inputs, batch_size):
            pred = task(b)[:, 0].cpu().numpy()
            counts = torch.bincount(b.batch, minlength=b.num_graphs).tolist()
            out += [np.asarray(a, dtype=float) for a in np.split(pred, np.cumsum(counts)[:-1])]
        return out
    if len(inputs) == 0:
        return np.zeros((0,) if task.is_classification else (0, len(task.spec.names)))
    values = torch.cat([task(b) for b in make_loader(inputs, batch_size)]).cpu().numpy()
    return values[:, 1] if task.is_classification else values


def test_report(run_dir: Path, task: CrystalTask, inputs: Any, ds: CrystalDataset, idx: Any) -> dict[str, Any]:
    """``predictions.csv`` of the entries ``idx`` and their metrics (``{"test": ...}``; per-site
    runs also ``per_element.csv`` and ``test_per_element``).
    """
    spec = task.spec
    values = predict_inputs(task, inputs)
    idx = np.asarray(idx, dtype=int)
    ids = [ds.ids[i] for i in idx]
    if spec.level == "site":
        truth = ds.site_targets[spec.names[0]]
        elements = [[site.specie.symbol for site in ds.structures[i]] for i in idx]
        df = site_frame(ids, values, elements, [truth[i] for i in idx])
        unit_columns(df, spec.names, spec.units).to_csv(run_dir / "predictions.csv", index=False)
        metrics, table = site_report_metrics(df, "test")
        table.to_csv(run_dir / "per_element.csv", index=False)
        return metrics
    truths = {t: ds.targets[t][idx] for t in spec.names}
    df, metrics = graph_prediction_table(ids, truths, values, kind=spec.kind, targets=spec.names)
    unit_columns(df, spec.names, spec.units).to_csv(run_dir / "predictions.csv", index=False)
    return {"test": metrics}
