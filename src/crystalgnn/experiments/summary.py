"""Benchmark reports: mean ± std per model x target as a table, Markdown and a figure.

``summary.csv``/``summary.md`` (:func:`summarize`, :func:`summary_markdown`) and
``benchmark.png`` (:func:`benchmark_figure`: grouped bars with error bars, Fig. 14 style), all
written by :func:`write_reports` from the results table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.experiments.results import CLASSIFICATION_METRICS, REGRESSION_METRICS


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@dataclass
class BenchmarkResult:
    """What :func:`~crystalgnn.experiments.orchestration.run_benchmark` returns."""

    out: Path
    results: Any  # pandas DataFrame, one row per run
    summary: Any  # pandas DataFrame, mean and std per model x target
    summary_markdown: str
    figure: Path | None
    n_run: int = 0
    n_skipped: int = 0
    files: dict[str, Path] = field(default_factory=dict)


METRIC_LABELS = {
    "mae": "MAE", "rmse": "RMSE", "r2": "R²", "train_time_s": "training time (s)",
    "roc_auc": "ROC-AUC", "accuracy": "accuracy", "f1": "F1", "precision": "precision", "recall": "recall",
    "n_parameters": "parameters", "model_bytes": "model bytes",
}  # fmt: skip


def summarize(
    results: Any,
    models: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    by: Sequence[str] = ("model", "target"),
) -> Any:
    """Mean, standard deviation (ddof 1) and count of every numeric column per group."""
    import pandas as pd

    if len(results) == 0:
        return pd.DataFrame()
    df = results.copy()
    numeric = [
        *REGRESSION_METRICS,
        *CLASSIFICATION_METRICS,
        "train_time_s",
        "feature_time_s",
        "n_parameters",
        "model_bytes",
        "n_train",
        "n_test",
    ]
    numeric = [c for c in numeric if c in df]
    for c in numeric:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    g = df.groupby(list(by), sort=False)
    rows = []
    for key, part in g:
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        row["task"] = part["task"].iloc[0] if "task" in part else ""
        row["unit"] = part["unit"].iloc[0] if "unit" in part and isinstance(part["unit"].iloc[0], str) else ""
        row["n_runs"] = len(part)
        for c in numeric:
            vals = part[c].dropna()
            row[f"{c}_mean"] = float(vals.mean()) if len(vals) else math.nan
            row[f"{c}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else (0.0 if len(vals) else math.nan)
        rows.append(row)
    out = pd.DataFrame(rows)
    if models is not None and "model" in out:
        order = {m: i for i, m in enumerate(models)}
        out["_m"] = out["model"].map(order)
        out["_t"] = out["target"].map({t: i for i, t in enumerate(targets or [])}) if targets else 0
        out = out.sort_values(["_t", "_m"]).drop(columns=["_m", "_t"]).reset_index(drop=True)
    return out


def _fmt(mean: float, std: float, n: int) -> str:
    if not np.isfinite(mean):
        return "–"
    digits = 3 if abs(mean) < 100 else 1
    if abs(mean) < 0.01 and mean != 0:
        return f"{mean:.2e}" + (f" ± {std:.1e}" if n > 1 else "")
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if n > 1 else "")


def summary_markdown(summary: Any, title: str = "Benchmark") -> str:
    """One Markdown table per target: mean ± std over repeats."""
    if len(summary) == 0:
        return f"# {title}\n\n(no finished runs)\n"
    lines = [f"# {title}", "", "Mean ± standard deviation over repeats (test set of each split).", ""]
    for target, part in summary.groupby("target", sort=False):
        task = part["task"].iloc[0]
        unit = part["unit"].iloc[0] or ""
        u = f" ({unit})" if unit else ""
        metrics = list(CLASSIFICATION_METRICS[:3]) if task == "classification" else ["mae", "rmse", "r2"]
        head = [
            "model",
            "runs",
            *[METRIC_LABELS[m] + (u if m in ("mae", "rmse") else "") for m in metrics],
            "train time (s)",
            "parameters",
            "model bytes",
        ]
        lines += [f"## {target}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for _, r in part.iterrows():
            n = int(r["n_runs"])
            cells = [str(r["model"]), str(n)]
            cells += [_fmt(r[f"{m}_mean"], r[f"{m}_std"], n) for m in metrics]
            cells.append(_fmt(r["train_time_s_mean"], r["train_time_s_std"], n))
            cells.append(f"{r['n_parameters_mean']:,.0f}" if np.isfinite(r["n_parameters_mean"]) else "–")
            cells.append(f"{r['model_bytes_mean']:,.0f}" if np.isfinite(r["model_bytes_mean"]) else "–")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "Training time: fit only (SOAP features and graph building excluded; SOAP time is in "
        "results.csv as feature_time_s). Model bytes: pickled size for the baselines, the best "
        "checkpoint (weights + optimiser state) for the networks."
    )
    return "\n".join(lines) + "\n"


def benchmark_figure(summary: Any, path: str | Path, models: Sequence[str] | None = None) -> Path | None:
    """Grouped bars with error bars (one row per target, one panel per metric; Fig. 14 style)."""
    if len(summary) == 0:
        return None
    plt = pyplot()
    targets = list(dict.fromkeys(summary["target"]))
    models = [m for m in (models or list(dict.fromkeys(summary["model"]))) if m in set(summary["model"])]
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    ncol = 4
    fig, axes = plt.subplots(len(targets), ncol, figsize=(3.3 * ncol, 2.9 * len(targets) + 0.5), dpi=130, squeeze=False)
    for row, target in enumerate(targets):
        part = summary[summary["target"] == target].set_index("model")
        task = part["task"].iloc[0]
        unit = part["unit"].iloc[0] or ""
        metrics = (
            ["roc_auc", "accuracy", "f1", "train_time_s"]
            if task == "classification"
            else ["mae", "rmse", "r2", "train_time_s"]
        )
        present = [m for m in models if m in part.index]
        x = np.arange(len(present))
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            mean = np.array([part.loc[m, f"{metric}_mean"] for m in present], dtype=float)
            std = np.array([part.loc[m, f"{metric}_std"] for m in present], dtype=float)
            std = np.nan_to_num(std)
            ax.bar(
                x,
                np.nan_to_num(mean),
                yerr=std,
                capsize=3,
                color=[colors[m] for m in present],
                edgecolor="k",
                linewidth=0.4,
            )
            ax.set_xticks(x)
            ax.set_xticklabels(present, rotation=35, ha="right", fontsize=7)
            label = METRIC_LABELS[metric] + (f" ({unit})" if metric in ("mae", "rmse") and unit else "")
            ax.set_title(f"{target}: {label}" if col == 0 else label, fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
            if metric == "train_time_s":
                pos = mean[np.isfinite(mean) & (mean > 0)]
                if len(pos) and pos.max() / max(pos.min(), 1e-9) > 100:
                    ax.set_yscale("log")
            if metric == "r2":
                ax.axhline(0, color="k", lw=0.6)
                lo = float(np.nanmin(mean - std)) if len(mean) else 0.0
                ax.set_ylim(max(min(lo - 0.05, 0.0), -1.0), 1.0)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_reports(
    out: str | Path, results: Any, models: Sequence[str], targets: Sequence[str], *, n_run: int = 0, n_skipped: int = 0
) -> BenchmarkResult:
    """``summary.csv``, ``summary.md`` and ``benchmark.png`` from the results table."""
    out = Path(out)
    summary = summarize(results, models, targets)
    md = summary_markdown(summary, title=f"Benchmark: {out.name}")
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(md)
    fig = benchmark_figure(summary, out / "benchmark.png", models)
    files = {"results": out / "results.csv", "summary_csv": out / "summary.csv", "summary_md": out / "summary.md"}
    if fig:
        files["figure"] = fig
    return BenchmarkResult(out, results, summary, md, fig, n_run=n_run, n_skipped=n_skipped, files=files)


__all__ = [
    "METRIC_LABELS",
    "BenchmarkResult",
    "benchmark_figure",
    "pyplot",
    "summarize",
    "summary_markdown",
    "write_reports",
]
