"""Metrics: MAE, RMSE, R^2 for regression; accuracy, ROC-AUC, precision, recall, F1 for classes;
per-site metrics overall and per element (tables with a row per site).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R^2 over the finite pairs (NaN labels are ignored and counted)."""
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    t, p = y_true[ok], y_pred[ok]
    if len(t) == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "r2": float("nan"), "n": 0}
    err = p - t
    ss_tot = float(((t - t.mean()) ** 2).sum())
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": float(1.0 - (err**2).sum() / ss_tot) if ss_tot > 0 else float("nan"),
        "n": len(t),
    }


def classification_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, ROC-AUC, precision, recall and F1 for binary labels and P(class 1)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    y_true = np.asarray(y_true).ravel()
    prob = np.asarray(prob, dtype=float).ravel()
    ok = np.isfinite(y_true.astype(float)) & np.isfinite(prob)
    y, p = y_true[ok].astype(int), prob[ok]
    pred = (p >= threshold).astype(int)
    out = {
        "accuracy": float(accuracy_score(y, pred)) if len(y) else float("nan"),
        "precision": float(precision_score(y, pred, zero_division=0)) if len(y) else float("nan"),
        "recall": float(recall_score(y, pred, zero_division=0)) if len(y) else float("nan"),
        "f1": float(f1_score(y, pred, zero_division=0)) if len(y) else float("nan"),
        "n": len(y),
    }
    out["roc_auc"] = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return out


def site_metrics(df: Any) -> dict[str, Any]:
    """MAE/RMSE/R² over labelled sites, with the number of unlabelled sites and structures."""
    t = df["target"].to_numpy(dtype=float)
    m: dict[str, Any] = regression_metrics(t, df["prediction"].to_numpy(dtype=float))
    m["n_sites"] = len(df)
    m["n_unlabelled"] = int((~np.isfinite(t)).sum())
    m["n_structures"] = int(df["id"].nunique())
    return m


def per_element_metrics(df: Any) -> Any:
    """A table (one row per element, most sites first): element, n, n_unlabelled, mae, rmse, r2,
    mean_target, mean_prediction.
    """
    import pandas as pd

    rows = []
    for el, g in df.groupby("element", sort=False):
        t = g["target"].to_numpy(dtype=float)
        p = g["prediction"].to_numpy(dtype=float)
        m = regression_metrics(t, p)
        ok = np.isfinite(t)
        rows.append(
            {
                "element": el,
                "n": m["n"],
                "n_unlabelled": int((~ok).sum()),
                "mae": m["mae"],
                "rmse": m["rmse"],
                "r2": m["r2"],
                "mean_target": float(t[ok].mean()) if ok.any() else float("nan"),
                "mean_prediction": float(p[ok].mean()) if ok.any() else float("nan"),
            }
        )
    cols = ["element", "n", "n_unlabelled", "mae", "rmse", "r2", "mean_target", "mean_prediction"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["n", "element"], ascending=[False, True]).reset_index(drop=True)


def _named(target: str, unit: str) -> tuple[str, str]:
    label = f"{target} ({unit})" if unit else target
    return label, f"predicted {label}"


def unit_columns(df: Any, targets: Any, units: dict[str, str]) -> Any:
    """A predictions table with headers that name the target and unit: ``target`` / ``prediction``
    (one target) or ``target_<t>`` / ``prediction_<t>`` become ``<t> (<unit>)`` and
    ``predicted <t> (<unit>)`` (what every ``predictions.csv`` is written with).
    """
    targets = list(targets)
    mapping = {}
    for t in targets:
        sfx = "" if len(targets) == 1 else f"_{t}"
        label, pred = _named(t, units.get(t, ""))
        mapping["target" + sfx], mapping["prediction" + sfx] = label, pred
    return df.rename(columns=mapping)


def plain_columns(df: Any, targets: Any, units: dict[str, str]) -> Any:
    """The inverse of :func:`unit_columns` (a written table back to ``target`` / ``prediction``)."""
    targets = list(targets)
    mapping = {}
    for t in targets:
        sfx = "" if len(targets) == 1 else f"_{t}"
        label, pred = _named(t, units.get(t, ""))
        mapping[label], mapping[pred] = "target" + sfx, "prediction" + sfx
    return df.rename(columns=mapping)


def graph_prediction_table(
    ids: Sequence[str], truth: dict[str, np.ndarray], values: np.ndarray, *, kind: str, targets: Sequence[str]
) -> tuple[Any, dict[str, Any]]:
    """One row per structure (``id``, ``target[_<t>]``, ``prediction[_<t>]``) and the metrics:
    classification (``values`` = P(class 1)) or regression per target (``values`` (N, T); the
    metrics of a single target directly, of several keyed by target).
    """
    import pandas as pd

    targets = list(targets)
    df = pd.DataFrame({"id": list(ids)})
    if kind == "classification":
        y = truth[targets[0]]
        df["target"], df["prediction"] = y, values
        return df, classification_metrics(y, values)
    per = {}
    for k, t in enumerate(targets):
        sfx = "" if len(targets) == 1 else f"_{t}"
        df["target" + sfx], df["prediction" + sfx] = truth[t], values[:, k]
        per[t] = regression_metrics(truth[t], values[:, k])
    return df, per[targets[0]] if len(per) == 1 else per


def site_frame(
    ids: Sequence[str],
    values: Sequence[np.ndarray],
    elements: Sequence[Sequence[str]] | None = None,
    truths: Sequence[np.ndarray | None] | None = None,
) -> Any:
    """One row per site: ``id``, ``site_index``, ``element`` (when given), ``target`` (when
    given; a structure without labels gets NaN), ``prediction``.
    """
    import pandas as pd

    rows_id: list[str] = []
    rows_k: list[int] = []
    for sid, v in zip(ids, values, strict=True):
        rows_id += [sid] * len(v)
        rows_k += list(range(len(v)))
    df = pd.DataFrame({"id": rows_id, "site_index": rows_k})
    if elements is not None and any(len(e) for e in elements):
        df["element"] = [el for e in elements for el in e]
    if truths is not None:
        parts = [
            np.full(len(v), np.nan) if t is None else np.asarray(t, dtype=float)
            for v, t in zip(values, truths, strict=True)
        ]
        df["target"] = np.concatenate(parts) if parts else np.zeros(0)
    df["prediction"] = np.concatenate(list(values)) if len(values) else np.zeros(0)
    return df


def site_report_metrics(df: Any, prefix: str = "test") -> tuple[dict[str, Any], Any]:
    """``{prefix: overall site metrics, prefix + "_per_element": {element: mae, rmse, r2, n}}``
    and the per-element table (``None`` without an ``element`` column) of a :func:`site_frame`
    with targets.
    """
    metrics: dict[str, Any] = {prefix: site_metrics(df)}
    if "element" not in df:
        return metrics, None
    table = per_element_metrics(df)
    metrics[prefix + "_per_element"] = {
        r["element"]: {"mae": r["mae"], "rmse": r["rmse"], "r2": r["r2"], "n": int(r["n"])} for _, r in table.iterrows()
    }
    return metrics, table
