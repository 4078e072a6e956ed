"""Pictures of one instance explanation (matplotlib, Agg backend): the cell with its atoms
coloured by importance and the strongest bonds drawn, and the mean importance per element.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.explain.instance import StructureExplanation


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_atoms(expl: StructureExplanation, path: str | Path, *, top_bonds: int = 10) -> Path:
    """3D scatter of the atoms coloured by importance (labelled with element and site), the
    unit cell edges (when the explanation has its lattice), and the ``top_bonds`` most important
    bonds as lines whose width grows with importance.
    """
    plt = _pyplot()
    fig = plt.figure(figsize=(6, 5))
    ax = fig.add_subplot(projection="3d")
    pos, lattice = expl.positions, expl.lattice
    if lattice is not None:
        corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float) @ lattice
        for a in range(8):
            for b in range(a + 1, 8):
                if bin(a ^ b).count("1") == 1:  # cube edges differ in one fractional coordinate
                    ax.plot(*zip(corners[a], corners[b], strict=True), color="0.7", lw=0.8)
    bonds = expl.bonds().head(top_bonds)
    if len(bonds):
        lo, hi = float(bonds["importance"].min()), float(bonds["importance"].max())
        span = hi - lo if hi > lo else 1.0
        for _, b in bonds.iterrows():
            start = pos[int(b["site_i"])]
            end = start + np.array([b["dx"], b["dy"], b["dz"]], dtype=float)
            ax.plot(*zip(start, end, strict=True), color="tab:red", lw=0.5 + 3.0 * (float(b["importance"]) - lo) / span)
    sc = ax.scatter(pos[:, 0], pos[:, 1], pos[:, 2], c=expl.atom_importance, cmap="viridis", s=120, edgecolors="k")
    for k, (p, el) in enumerate(zip(pos, expl.elements, strict=True)):
        ax.text(p[0], p[1], p[2], f" {el}{k}", fontsize=7)
    fig.colorbar(sc, ax=ax, shrink=0.7, pad=0.12, label=f"atom importance ({expl.method})")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_zlabel("z (Å)")
    ax.set_title(f"{expl.id}: prediction {expl.prediction:.3g}", fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_elements(explanations: list[StructureExplanation], path: str | Path) -> Path:
    """Bar chart of the mean atom importance per element (error bar: standard deviation)."""
    import pandas as pd

    plt = _pyplot()
    df = pd.concat([e.atoms() for e in explanations], ignore_index=True)
    stats = df.groupby("element")["importance"].agg(["mean", "std", "count"]).sort_values("mean", ascending=False)
    fig, ax = plt.subplots(figsize=(max(3.0, 0.5 * len(stats) + 1.5), 3.2))
    ax.bar(stats.index, stats["mean"], yerr=stats["std"].fillna(0.0), color="tab:blue", capsize=3)
    ax.set_ylabel(f"mean atom importance ({explanations[0].method})")
    ax.set_title(f"{len(explanations)} structure(s), {int(stats['count'].sum())} atoms", fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


__all__ = ["plot_atoms", "plot_elements"]
