"""Merge several ``zoo_budget.py`` output folders (runs made side by side) into one table and
one figure of validation MAE against training wall-clock time.

    python benchmarks/zoo_budget_merge.py benchmarks/out/zoo-budget-a benchmarks/out/zoo-budget-b \
        --title "perovskites heat_all, 30 min per model" --out benchmarks/figures/zoo_budget_perovskites.png \
        --peer "matgl MEGNet=benchmarks/out/zoo-peer-budget/matgl/val_curve.csv"

``--peer LABEL=CSV`` adds a peer's curve (``zoo_peer_budget.py``'s ``val_curve.csv``: columns
``train_s`` and ``val_mae``) as a dashed line; ``--run LABEL=RUN_FOLDER`` a ``crystalgnn train``
run (an ensemble's folder: each member). Folders are optional when runs or peers are given:

    python benchmarks/zoo_budget_merge.py --out benchmarks/figures/megnet_vs_matgl.png \
        --run "MEGNet x2 (1 core each)=benchmarks/out/zoo-budget-megnet-ens2" \
        --peer "matgl MEGNet=benchmarks/out/zoo-peer-budget/matgl/val_curve.csv"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from zoo_budget import curve, summarize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--title", default="")
    ap.add_argument("--ylabel", default="validation MAE")
    ap.add_argument("--out", required=True, help="figure path (.png)")
    ap.add_argument("--peer", action="append", default=[], metavar="LABEL=CSV", help="a peer's val_curve.csv")
    ap.add_argument("--run", action="append", default=[], metavar="LABEL=FOLDER", help="a crystalgnn run folder")
    args = ap.parse_args()
    if args.folders:
        results = pd.concat([pd.read_csv(Path(f) / "results.csv") for f in args.folders], ignore_index=True)
        print(summarize(results).to_markdown(floatfmt=".4f"))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    runs = [
        r for f in args.folders for r in sorted(p for p in Path(f).iterdir() if (p / "log" / "metrics.csv").is_file())
    ]
    names = [r.name for r in runs]
    for run in runs:  # a run name found in two folders is labelled with its folder
        c = curve(run)
        label = run.name if names.count(run.name) == 1 else f"{run.name} ({run.parent.name})"
        ax.plot(c["time_s"] / 60, c["val_mae"], label=label, lw=1.2)
    for spec in args.run:
        label, folder = spec.split("=", 1)
        members = sorted(p for p in Path(folder).glob("member-*") if (p / "log" / "metrics.csv").is_file())
        for run in members or [Path(folder)]:
            c = curve(run)
            ax.plot(c["time_s"] / 60, c["val_mae"], label=f"{label}, {run.name}" if members else label, lw=1.2)
    for spec in args.peer:
        label, path = spec.split("=", 1)
        c = pd.read_csv(path)
        ax.plot(c["train_s"] / 60, c["val_mae"], label=f"{label} (peer)", lw=1.2, ls="--", color="0.3")
    ax.set_xlabel("training wall-clock time (min)")
    ax.set_ylabel(args.ylabel)
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title(args.title)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)


if __name__ == "__main__":
    main()
