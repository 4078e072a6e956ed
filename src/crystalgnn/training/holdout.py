"""Predictions and metrics of a trained task on held-out entries (a run's test split)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.metrics import (
    classification_metrics,
    per_element_metrics,
    regression_metrics,
    site_metrics,
    unit_columns,
)
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
    """``predictions.csv`` of the entries ``idx`` and their metrics (``{"test": ...}``)."""
    import pandas as pd

    spec = task.spec
    values = predict_inputs(task, inputs)
    ids = [ds.ids[int(i)] for i in idx]
    if spec.level == "site":
        name = spec.names[0]
        truth = ds.site_targets[name]
        rows = {"id": [], "site_index": [], "element": [], "target": [], "prediction": []}  # type: dict[str, list[Any]]
        for i, v in zip(idx, values, strict=True):
            s = ds.structures[int(i)]
            t = truth[int(i)]
            rows["id"] += [ds.ids[int(i)]] * len(v)
            rows["site_index"] += list(range(len(v)))
            rows["element"] += [site.specie.symbol for site in s]
            rows["target"] += list(np.full(len(v), np.nan) if t is None else np.asarray(t, dtype=float))
            rows["prediction"] += list(v)
        df = pd.DataFrame(rows)
        unit_columns(df, spec.names, spec.units).to_csv(run_dir / "predictions.csv", index=False)
        table = per_element_metrics(df)
        table.to_csv(run_dir / "per_element.csv", index=False)
        per_el = {
            r["element"]: {"mae": r["mae"], "rmse": r["rmse"], "r2": r["r2"], "n": int(r["n"])}
            for _, r in table.iterrows()
        }
        return {"test": site_metrics(df), "test_per_element": per_el}
    df = pd.DataFrame({"id": ids})
    if spec.kind == "classification":
        y = ds.targets[spec.names[0]][np.asarray(idx, dtype=int)]
        df["target"], df["prediction"] = y, values
        unit_columns(df, spec.names, spec.units).to_csv(run_dir / "predictions.csv", index=False)
        return {"test": classification_metrics(y, values)}
    per = {}
    for k, name in enumerate(spec.names):
        y = ds.targets[name][np.asarray(idx, dtype=int)]
        sfx = "" if len(spec.names) == 1 else f"_{name}"
        df["target" + sfx], df["prediction" + sfx] = y, values[:, k]
        per[name] = regression_metrics(y, values[:, k])
    unit_columns(df, spec.names, spec.units).to_csv(run_dir / "predictions.csv", index=False)
    return {"test": per[spec.names[0]] if len(per) == 1 else per}
