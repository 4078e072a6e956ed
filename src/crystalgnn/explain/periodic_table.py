"""Periodic-table heatmaps: one value per element drawn on the 18-column table (matplotlib).

The layout is the IUPAC 18-column table: row = period, column = group (pymatgen ``Element.row``
and ``Element.group``), with the lanthanides (La-Lu) and actinides (Ac-Lr) in two rows of their own
below the main table (columns 3-17), as in the CGCNN paper's Fig. 4 maps of site energies.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

#: display row of the lanthanide / actinide strips (below the 7 periods, one row gap)
_F_ROWS = {57: 8.5, 89: 9.5}


def element_position(symbol: str) -> tuple[float, int]:
    """(display row, column) of an element: period and group (1-18), f-block in rows 8.5 / 9.5."""
    from pymatgen.core import Element

    el = Element(symbol)
    z = int(el.Z)
    for start, row in _F_ROWS.items():
        if start <= z <= start + 14:
            return row, 3 + (z - start)
    return float(el.row), int(el.group)


def periodic_table_heatmap(
    values: Mapping[str, float],
    path: str | Path,
    *,
    title: str = "",
    label: str = "",
    counts: Mapping[str, int] | None = None,
    cmap: str = "coolwarm",
    center: float | None = None,
) -> Path:
    """Draw ``values`` (element symbol -> value) on the periodic table and save a PNG.

    Elements without a value are drawn as empty grey boxes. ``counts`` (element -> number of
    sites averaged) is printed under each value. ``center``: a value for the middle of the colour
    map (a diverging map centred on it, e.g. the mean prediction), else the data's range.
    """
    from crystalgnn.evaluation.plots import isolate_matplotlib

    isolate_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize, TwoSlopeNorm
    from matplotlib.patches import Rectangle
    from pymatgen.core import Element

    finite = {k: float(v) for k, v in values.items() if np.isfinite(v)}
    lo, hi = (min(finite.values()), max(finite.values())) if finite else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    norm: Normalize = (
        TwoSlopeNorm(vcenter=center, vmin=min(lo, center - 1e-9), vmax=max(hi, center + 1e-9))
        if center is not None
        else Normalize(lo, hi)
    )
    colours = plt.get_cmap(cmap)
    fig, ax = plt.subplots(figsize=(13, 7.2), dpi=110)
    for z in range(1, 104):
        sym = Element.from_Z(z).symbol
        row, col = element_position(sym)
        v = finite.get(sym)
        face = colours(norm(v)) if v is not None else (0.94, 0.94, 0.94, 1.0)
        ax.add_patch(Rectangle((col - 0.5, row - 0.5), 0.96, 0.96, facecolor=face, edgecolor="0.6", lw=0.5))
        dark = v is not None and abs(float(norm(v)) - 0.5) > 0.35
        ink = "white" if dark else "black"
        ax.text(col - 0.02, row - 0.22, sym, ha="center", va="center", fontsize=8.5, weight="bold", color=ink)
        if v is not None:
            ax.text(col - 0.02, row + 0.08, f"{v:.2f}", ha="center", va="center", fontsize=6.5, color=ink)
            if counts is not None and sym in counts:
                ax.text(col - 0.02, row + 0.3, f"n={counts[sym]}", ha="center", va="center", fontsize=5, color=ink)
    ax.set_xlim(0.4, 18.6)
    ax.set_ylim(10.1, 0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=colours)
    fig.colorbar(sm, ax=ax, fraction=0.025, pad=0.01, label=label)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
