"""Summaries of XGNN explanations, as the thesis' figures: node labels per class (histograms),
label-pair bond counts per class (heatmaps), and the counts behind its chemical claims.

- :func:`label_histogram`, :func:`edge_counts`: atoms per label and bonds per label pair over
  the kept explanations of one class (duplicates counted: the generator's distribution).
- :func:`explanation_statistics`: the fractions the thesis' claims are about: atoms of metal
  groups (1-12, :data:`~crystalgnn.explain.xgnn_labels.METAL_GROUPS`) and metal-metal bonds
  (group labels); period-2 atoms (period labels); bonds between group 16-17 atoms and metals.
- :func:`write_summary`: the explanations (JSON), counts (CSV) and figures (PNG) of a run.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.explain.xgnn import XGNNResult
from crystalgnn.explain.xgnn_labels import METAL_GROUPS, N_LABELS, label_names

#: names of the classes of a median-split classifier
CLASS_NAMES = {0: "low", 1: "high"}


def label_histogram(result: XGNNResult) -> np.ndarray:
    """(L,) atoms per label over the kept explanations."""
    labels = [v for e in result.explanations for v in e.labels]
    return np.bincount(np.asarray(labels, dtype=int), minlength=N_LABELS[result.kind])


def edge_counts(result: XGNNResult) -> np.ndarray:
    """(L, L) symmetric bonds per label pair over the kept explanations (a bond between two
    atoms of the same label counts once, on the diagonal).
    """
    n = N_LABELS[result.kind]
    out = np.zeros((n, n), dtype=int)
    for e in result.explanations:
        for i, j in e.edges:
            a, b = e.labels[i], e.labels[j]
            out[a, b] += 1
            if a != b:
                out[b, a] += 1
    return out


def explanation_statistics(result: XGNNResult) -> dict[str, Any]:
    """Counts and fractions of one class's explanations used by the thesis' claims.

    Always: ``graphs``, ``distinct_graphs``, ``atoms``, ``bonds``, ``n_sampled``,
    ``kept_fraction``, ``mean_prob``. Group labels add ``metal_atoms`` (groups 1-12),
    ``metal_metal_bonds``, ``chalcogen_halogen_metal_bonds`` (group 16 or 17 with a metal) and
    their fractions (of atoms or bonds). Period labels add ``period2_atoms`` and its fraction.
    """
    hist, pairs = label_histogram(result), edge_counts(result)
    n_atoms = int(hist.sum())
    n_bonds = int(sum(len(e.edges) for e in result.explanations))
    probs = [e.prob for e in result.explanations]
    out: dict[str, Any] = {
        "graphs": len(result.explanations),
        "distinct_graphs": result.n_distinct,
        "n_sampled": result.n_sampled,
        "kept_fraction": result.kept_fraction,
        "mean_prob": float(np.mean(probs)) if probs else float("nan"),
        "atoms": n_atoms,
        "bonds": n_bonds,
    }

    def frac(k: int, n: int) -> float:
        return k / n if n else float("nan")

    if result.kind == "group":
        metal = np.array([g + 1 in METAL_GROUPS for g in range(18)])
        upper = np.triu(np.ones_like(pairs, dtype=bool))
        mm = int(pairs[np.ix_(metal, metal)][upper[np.ix_(metal, metal)]].sum())
        xm = int(pairs[np.ix_(np.array([15, 16]), np.flatnonzero(metal))].sum())  # groups 16-17 x metals
        out |= {
            "metal_atoms": int(hist[metal].sum()),
            "metal_atom_fraction": frac(int(hist[metal].sum()), n_atoms),
            "metal_metal_bonds": mm,
            "metal_metal_bond_fraction": frac(mm, n_bonds),
            "group16_17_atoms": int(hist[[15, 16]].sum()),
            "group16_17_atom_fraction": frac(int(hist[[15, 16]].sum()), n_atoms),
            "chalcogen_halogen_metal_bonds": xm,
            "chalcogen_halogen_metal_bond_fraction": frac(xm, n_bonds),
        }
    else:
        out |= {"period2_atoms": int(hist[1]), "period2_atom_fraction": frac(int(hist[1]), n_atoms)}
    return out


def _plot_histograms(results: Mapping[int, XGNNResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind = next(iter(results.values())).kind
    names = [n.split()[1] for n in label_names(kind)]
    x = np.arange(len(names))
    width = 0.8 / max(len(results), 1)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for k, (cls, res) in enumerate(sorted(results.items())):
        hist = label_histogram(res)
        ax.bar(x + (k - (len(results) - 1) / 2) * width, hist / max(hist.sum(), 1), width,
               label=f"{CLASS_NAMES.get(cls, cls)} ({len(res.explanations)} graphs)")  # fmt: skip
    ax.set_xticks(x, names)
    ax.set_xlabel(kind)
    ax.set_ylabel("fraction of atoms")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_heatmaps(results: Mapping[int, XGNNResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind = next(iter(results.values())).kind
    names = [n.split()[1] for n in label_names(kind)]
    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.6), squeeze=False)
    for ax, (cls, res) in zip(axes[0], sorted(results.items()), strict=True):
        counts = edge_counts(res)
        im = ax.imshow(counts, cmap="viridis")
        ax.set_xticks(range(len(names)), names, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel(kind)
        ax.set_ylabel(kind)
        ax.set_title(f"{CLASS_NAMES.get(cls, cls)}: bonds per {kind} pair", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_summary(results: Mapping[int, XGNNResult], out_dir: str | Path, title: str = "") -> dict[str, Path]:
    """Write the explanations and their summaries of each explained class into ``out_dir``.

    Files: ``explanations_<class>.json`` (graphs with label names, bonds, probabilities, the
    elements and bond lengths fed to the classifier, the training curve), ``label_counts.csv``
    (atoms per label and class), ``edge_counts.csv`` (bonds per label pair and class),
    ``statistics.json`` (:func:`explanation_statistics` per class), ``label_histogram.png`` and
    ``edge_heatmaps.png``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for cls, res in sorted(results.items()):
        p = out / f"explanations_{CLASS_NAMES.get(cls, cls)}.json"
        p.write_text(json.dumps(res.to_dict(), indent=1))
        paths[f"explanations_{cls}"] = p
    kind = next(iter(results.values())).kind
    names = label_names(kind)
    with open(out / "label_counts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "label", "atoms", "fraction"])
        for cls, res in sorted(results.items()):
            hist = label_histogram(res)
            for name, c in zip(names, hist, strict=True):
                w.writerow([CLASS_NAMES.get(cls, cls), name, int(c), round(float(c) / max(int(hist.sum()), 1), 4)])
    with open(out / "edge_counts.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "label_a", "label_b", "bonds"])
        for cls, res in sorted(results.items()):
            counts = edge_counts(res)
            for a in range(len(names)):
                for b in range(a, len(names)):
                    if counts[a, b]:
                        w.writerow([CLASS_NAMES.get(cls, cls), names[a], names[b], int(counts[a, b])])
    stats = {CLASS_NAMES.get(cls, str(cls)): explanation_statistics(res) for cls, res in sorted(results.items())}
    (out / "statistics.json").write_text(json.dumps(stats, indent=1))
    paths |= {"label_counts": out / "label_counts.csv", "edge_counts": out / "edge_counts.csv",
              "statistics": out / "statistics.json"}  # fmt: skip
    if any(res.explanations for res in results.values()):
        _plot_histograms(results, out / "label_histogram.png", title)
        _plot_heatmaps(results, out / "edge_heatmaps.png", title)
        paths |= {"label_histogram": out / "label_histogram.png", "edge_heatmaps": out / "edge_heatmaps.png"}
    return paths
