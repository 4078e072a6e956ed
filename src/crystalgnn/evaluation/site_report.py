"""Reports for per-site predictions: metrics overall and per element, and their figures.

Input is one table with a row per site: ``id, site_index, element, target, prediction`` (what
:meth:`~crystalgnn.prediction.results.SitePredictions.to_frame` returns). Sites whose label is
missing (NaN) are excluded from every metric and counted as ``n_unlabelled``.

Figures: parity over sites (:func:`~crystalgnn.evaluation.plots.parity_plot`), a periodic-table
heatmap of the per-element MAE, and true vs predicted distributions per 3d transition metal
(Sc..Zn), as in Fig. 2a of Karaguesian et al. (NeurIPS ML4PS 2021).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.metrics import per_element_metrics, site_report_metrics, unit_columns

ELEMENTS_3D = ("Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn")


def _table_position(symbol: str) -> tuple[int, int] | None:
    """(row, column) of an element in an 18-column periodic table; f-block in rows 8-9."""
    from pymatgen.core.periodic_table import Element

    try:
        el = Element(symbol)
    except ValueError:
        return None
    z = el.Z
    if 57 <= z <= 71:
        return 8, 2 + (z - 57)
    if 89 <= z <= 103:
        return 9, 2 + (z - 89)
    return int(el.row), int(el.group)


def periodic_table_heatmap(
    values: dict[str, float], path: str | Path, *, label: str = "", counts: dict[str, int] | None = None
) -> Path:
    """A periodic-table grid coloured by ``values`` (e.g. per-element MAE); grey = no data."""
    from crystalgnn.evaluation.plots import _plt

    plt = _plt()
    from matplotlib import cm
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle
    from pymatgen.core.periodic_table import Element

    finite = [v for v in values.values() if np.isfinite(v)]
    norm = Normalize(vmin=min(finite) if finite else 0.0, vmax=max(finite) if finite else 1.0)
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(11, 6.2), dpi=120)
    for z in range(1, 104):
        sym = Element.from_Z(z).symbol
        pos = _table_position(sym)
        if pos is None:
            continue
        r, c = pos
        y = -(r + (0.5 if r >= 8 else 0.0))
        v = values.get(sym, float("nan"))
        color = cmap(norm(v)) if np.isfinite(v) else (0.92, 0.92, 0.92, 1.0)
        ax.add_patch(Rectangle((c - 0.5, y - 0.5), 0.95, 0.95, facecolor=color, edgecolor="white"))
        dark = np.isfinite(v) and norm(v) < 0.6
        txt_color = "white" if dark else "black"
        ax.text(c - 0.02, y + 0.12, sym, ha="center", va="center", fontsize=8, color=txt_color, weight="bold")
        if np.isfinite(v):
            ax.text(c - 0.02, y - 0.2, f"{v:.2g}", ha="center", va="center", fontsize=6, color=txt_color)
        if counts and sym in counts:
            ax.text(c + 0.38, y + 0.36, str(counts[sym]), ha="right", va="top", fontsize=4.5, color=txt_color)
    ax.set_xlim(0.4, 18.6)
    ax.set_ylim(-10.2, -0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, label=label)
    if label:
        ax.set_title(label, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def distributions_3d(
    df: Any, path: str | Path, *, label: str = "|m|", unit: str = "μB", absolute: bool = True
) -> Path | None:
    """True vs predicted distributions of the per-site value for each 3d metal (Sc..Zn).

    With ``absolute=True`` magnitudes are compared (|m|, the paper's Fig. 2a). Returns ``None``
    when the table holds no 3d-metal site.
    """
    from crystalgnn.evaluation.plots import _plt

    present = [el for el in ELEMENTS_3D if (df["element"] == el).any()]
    if not present:
        return None
    plt = _plt()
    ncol = 5
    nrow = int(np.ceil(len(present) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.2 * nrow), dpi=120, squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for ax, el in zip(axes.ravel(), present, strict=False):
        ax.set_visible(True)
        g = df[df["element"] == el]
        t = g["target"].to_numpy(dtype=float)
        p = g["prediction"].to_numpy(dtype=float)
        ok = np.isfinite(t) & np.isfinite(p)
        t, p = t[ok], p[ok]
        if absolute:
            t, p = np.abs(t), np.abs(p)
        if len(t) == 0:
            ax.set_title(f"{el} (no labels)", fontsize=9)
            continue
        hi = max(float(t.max()), float(p.max()), 0.5)
        lo = min(float(t.min()), float(p.min()), 0.0)
        bins = np.linspace(lo, hi, 31)
        ax.hist(t, bins=bins, alpha=0.55, label="DFT", color="C0")
        ax.hist(p, bins=bins, alpha=0.55, label="predicted", color="C1")
        ax.set_title(f"{el}  n={len(t)}  MAE {np.abs(t - p).mean():.2f}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(f"{label} ({unit})" if unit else label, fontsize=7)
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_site_report(
    out_dir: str | Path,
    df: Any,
    *,
    target: str,
    unit: str = "",
    prefix: str = "test",
) -> dict[str, Any]:
    """Write predictions.csv, per_element.csv and the figures (:func:`site_figures`); return
    ``{prefix: overall metrics, prefix + "_per_element": {...}}``.

    A table without a ``target`` column (unlabelled inputs) only gets predictions.csv.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    unit_columns(df, [target], {target: unit}).to_csv(out_dir / "predictions.csv", index=False)
    if "target" not in df:
        return {}
    metrics, table = site_report_metrics(df, prefix)
    if table is not None:
        table.to_csv(out_dir / "per_element.csv", index=False)
    site_figures(out_dir, df, target=target, unit=unit)
    return metrics


def site_figures(out_dir: str | Path, df: Any, *, target: str, unit: str = "") -> list[Path]:
    """parity.png over labelled sites, per_element_mae.png (periodic table) and, for 3d metals,
    distributions_3d.png; a figure that fails is skipped.
    """
    from crystalgnn.evaluation.plots import parity_plot

    out_dir = Path(out_dir)
    t = df["target"].to_numpy(dtype=float)
    p = df["prediction"].to_numpy(dtype=float)
    made: list[Path] = []
    table = per_element_metrics(df) if "element" in df else None
    label = target if not target.startswith("abs_") else f"|{target[4:]}|"
    plots: list[Callable[[], Path | None]] = [
        lambda: parity_plot(t, p, out_dir / "parity.png", label=f"{target} (per site)", unit=unit)
    ]
    if table is not None:
        plots += [
            lambda: periodic_table_heatmap(
                {r["element"]: r["mae"] for _, r in table.iterrows()},
                out_dir / "per_element_mae.png",
                label=f"{target}: per-element MAE" + (f" ({unit})" if unit else ""),
                counts={r["element"]: int(r["n"]) for _, r in table.iterrows()},
            ),
            lambda: distributions_3d(df, out_dir / "distributions_3d.png", label=label, unit=unit),
        ]
    for plot in plots:
        try:
            path = plot()
            if path is not None:
                made.append(path)
        except Exception:  # a figure must never fail a finished run
            pass
    return made
