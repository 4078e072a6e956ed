"""Figures: parity plot (2-D histogram, CGCNN paper Fig. 2c), ROC curve, learning curves.

matplotlib keeps its configuration and font cache in ``MPLCONFIGDIR`` (by default under the home
folder): :func:`isolate_matplotlib` points it into crystalgnn's cache folder before matplotlib
is first imported (Lightning's torchmetrics imports it too, so the CLI calls it before Lightning).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def isolate_matplotlib(cache_dir: str | Path | None = None) -> Path | None:
    """Set ``MPLCONFIGDIR`` to ``<cache_dir>/matplotlib`` when it is not set (``cache_dir``
    defaults to :func:`crystalgnn.graphs.cache.default_cache_dir`: ``$CRYSTALGNN_CACHE_DIR`` or
    ``~/.cache/crystalgnn``); returns the folder set, or None when ``MPLCONFIGDIR`` was already set.
    Has no effect once matplotlib is imported.
    """
    if os.environ.get("MPLCONFIGDIR"):
        return None
    if cache_dir is None:
        from crystalgnn.graphs.cache import default_cache_dir

        cache_dir = default_cache_dir()
    folder = Path(cache_dir) / "matplotlib"
    os.environ["MPLCONFIGDIR"] = str(folder)
    return folder


def _plt():  # type: ignore[no-untyped-def]
    isolate_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parity_plot(y_true: np.ndarray, y_pred: np.ndarray, path: str | Path, *, label: str = "", unit: str = "") -> Path:
    """Predicted vs true values as a log-density 2-D histogram, with y = x and the MAE."""
    plt = _plt()
    from matplotlib.colors import LogNorm

    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=130)
    lo, hi = (float(min(t.min(), p.min())), float(max(t.max(), p.max()))) if len(t) else (0.0, 1.0)
    pad = 0.03 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    if len(t) > 50:
        h = ax.hist2d(t, p, bins=80, range=[[lo, hi], [lo, hi]], norm=LogNorm(), cmap="viridis")
        fig.colorbar(h[3], ax=ax, label="count")
    else:
        ax.scatter(t, p, s=12, alpha=0.8)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    u = f" ({unit})" if unit else ""
    ax.set_xlabel(f"DFT {label}{u}")
    ax.set_ylabel(f"predicted {label}{u}")
    if len(t):
        ax.set_title(f"MAE {np.abs(t - p).mean():.4g}{(' ' + unit) if unit else ''}  (n={len(t)})", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def roc_plot(y_true: np.ndarray, prob: np.ndarray, path: str | Path, *, label: str = "") -> Path:
    """ROC curve with its AUC."""
    plt = _plt()
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(prob, dtype=float).ravel()
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=130)
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, lw=1.5, label=f"AUC = {roc_auc_score(y, p):.3f}")
        ax.legend(loc="lower right")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC {label}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def training_curve_plot(metrics_csv: str | Path, path: str | Path) -> Path | None:
    """Training and validation loss (normalised units, log scale) and the validation MAE (or
    ROC-AUC) per epoch from Lightning's CSV log; both axes labelled, one legend.
    """
    import pandas as pd

    df = pd.read_csv(metrics_csv)
    if "epoch" not in df:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.4, 3.6), dpi=130)
    lines = []
    for col, label in (
        ("train_loss", "training loss"),
        ("train_loss_epoch", "training loss"),
        ("val_loss", "validation loss"),
    ):
        if col in df:
            d = df[["epoch", col]].dropna()
            if len(d):
                lines += ax.plot(d["epoch"] + 1, d[col], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (normalised targets)")
    ax2 = ax.twinx()
    for col, label in (("val_mae", "validation MAE"), ("val_auc", "validation ROC-AUC")):
        if col in df:
            d = df[["epoch", col]].dropna()
            if len(d):
                lines += ax2.plot(d["epoch"] + 1, d[col], "C3", label=label)
                ax2.set_ylabel(label)
    if lines:
        ax.legend(lines, [ln.get_label() for ln in lines], loc="upper right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
