"""Reports from plain data: metrics, ``predictions.csv`` and figures for a model's predictions on
labelled entries (``crystalgnn evaluate``), and the figures of a finished training run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.evaluation.plots import parity_plot, roc_plot, training_curve_plot
from crystalgnn.metrics import graph_prediction_table, plain_columns, unit_columns


def write_report(
    out_dir: Path,
    ds: CrystalDataset,
    idx: np.ndarray,
    values: np.ndarray,
    *,
    kind: str,
    targets: list[str],
    units: dict[str, str],
    prefix: str = "test",
) -> dict[str, Any]:
    """Metrics + predictions.csv + parity/ROC plot for entries ``idx`` of ``ds``.

    Args:
        values: (N, T) regression values or (N,) P(class 1), one row per entry of ``idx``.
        kind: ``"regression"`` or ``"classification"``.
        targets, units: the predicted targets (labels read from ``ds.targets``) and units.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    truths = {t: ds.targets[t][idx] for t in targets}
    df, table_metrics = graph_prediction_table([ds.ids[i] for i in idx], truths, values, kind=kind, targets=targets)
    metrics: dict[str, Any] = {prefix: table_metrics}
    if kind == "classification":
        roc_plot(truths[targets[0]], values, out_dir / "roc.png", label=targets[0])
    else:
        for k, t in enumerate(targets):
            sfx = "" if len(targets) == 1 else f"_{t}"
            parity_plot(truths[t], values[:, k], out_dir / f"parity{sfx}.png", label=t, unit=units.get(t, ""))
    unit_columns(df, targets, units).to_csv(out_dir / "predictions.csv", index=False)
    return metrics


def run_figures(run_dir: str | Path) -> list[Path]:
    """The figures of a finished run folder, from its ``predictions.csv``, ``metrics.json`` and
    ``log/metrics.csv``: ``training.png``, and ``parity*.png`` / ``roc.png`` (per-site runs: the
    per-site report's figures). A figure that fails is skipped, never failing the run.
    """
    import pandas as pd

    run_dir = Path(run_dir)
    made: list[Path] = []
    metrics = json.loads((run_dir / "metrics.json").read_text())
    units = dict(metrics.get("units") or {})
    targets = list(metrics.get("targets") or [])
    try:
        p = training_curve_plot(run_dir / "log" / "metrics.csv", run_dir / "training.png")
        made += [p] if p else []
    except Exception:  # a figure must never fail a finished run
        pass
    preds = run_dir / "predictions.csv"
    if not preds.is_file() or not targets:
        return made
    df = plain_columns(pd.read_csv(preds), targets, units)
    try:
        if metrics.get("level") == "site":
            from crystalgnn.evaluation.site_report import site_figures

            made += site_figures(run_dir, df, target=targets[0], unit=units.get(targets[0], ""))
        elif metrics.get("task") == "classification":
            made.append(
                roc_plot(df["target"].to_numpy(), df["prediction"].to_numpy(), run_dir / "roc.png", label=targets[0])
            )
        else:
            for t in targets:
                sfx = "" if len(targets) == 1 else f"_{t}"
                made.append(
                    parity_plot(
                        df["target" + sfx].to_numpy(),
                        df["prediction" + sfx].to_numpy(),
                        run_dir / f"parity{sfx}.png",
                        label=t,
                        unit=units.get(t, ""),
                    )
                )
    except Exception:
        pass
    return made
