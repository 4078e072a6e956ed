"""iCGCNN and OGCNN against CGCNN on the perovskites (heat_all), on the original CGCNN split.

Every model trains with its recipe (CGCNN's main.py settings for all three: SGD, lr 0.01,
momentum 0.9, batch 256), at equal epochs (``--epochs``) and, with ``--budget MINUTES``, at equal
wall-clock time (each run stops at the epoch end before the budget is spent). One thread per run;
runs one after another. Writes ``results.csv`` (test MAE, epochs, seconds per epoch, parameters)
and prints it::

    python benchmarks/original_split.py perovskites benchmarks/out/original_split.json
    python benchmarks/family_perovskites.py --split-file benchmarks/out/original_split.json \
        --epochs 10 --out benchmarks/out/family
    python benchmarks/family_perovskites.py --split-file benchmarks/out/original_split.json \
        --models cgcnn --epochs 30 --out benchmarks/out/family
    # mp-36k formation energy, a seeded 10k subset, random 80/10/10, equal budget
    python benchmarks/family_perovskites.py --source mp-36k --target formation_energy_per_atom \
        --subset 10000 --budget 15 --out benchmarks/out/family-mp36k

Finished runs (a ``metrics.json`` in their folder) are skipped, so the line can be re-run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

import crystalgnn
from crystalgnn.training.config import TrainConfig


def run_one(args: argparse.Namespace, model: str) -> Path:
    tag = f"{model}-{args.epochs}ep" if args.budget is None else f"{model}-{args.budget:g}min"
    out = Path(args.out) / f"{tag}-s{args.seed}"
    if (out / "metrics.json").is_file():
        return out
    flags: dict[str, object] = {
        "source": args.source,
        "targets": [args.target],
        "model": model,
        "seed": args.seed,
        "epochs": args.epochs if args.budget is None else 100_000,
        "out": str(out),
        "num_threads": args.threads,
        "n_jobs": 1,
        "progress": False,
    }
    if args.split_file:
        flags["split_file"] = args.split_file
    else:  # e.g. mp-36k: a seeded subset and a random split
        flags["subset"] = args.subset
        flags["split"] = args.split
    if args.budget is not None:
        flags["max_time_minutes"] = args.budget
    cfg = TrainConfig.resolve(flags)
    cfg.early_stopping_patience = None  # equal epochs / equal budget, nothing else
    crystalgnn.train(config=cfg, figures=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="perovskites")
    ap.add_argument("--target", default="heat_all")
    ap.add_argument("--models", default="cgcnn,icgcnn,ogcnn")
    ap.add_argument("--split-file", default=None, help="from benchmarks/original_split.py")
    ap.add_argument("--subset", type=int, default=None, help="without --split-file: a seeded subset")
    ap.add_argument("--split", default="0.8,0.1,0.1", help="without --split-file: train,val,test fractions")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--budget", type=float, default=None, help="minutes per run (equal wall clock)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/out/family")
    args = ap.parse_args()
    rows = []
    for model in args.models.split(","):
        run = run_one(args, model)
        m = json.loads((run / "metrics.json").read_text())
        test = m["test"].get(args.target, m["test"])
        rows.append(
            {
                "run": run.name,
                "model": model,
                "epochs": m.get("epochs_run"),
                "test_mae": test["mae"],
                "test_rmse": test["rmse"],
                "test_r2": test["r2"],
                "s_per_epoch": m.get("time_per_epoch_s"),
                "train_s": m.get("train_time_s"),
                "parameters": m.get("n_parameters"),
            }
        )
    table = pd.DataFrame(rows)
    path = Path(args.out) / "results.csv"
    if path.is_file():  # keep the rows of earlier invocations (other models, epochs, budgets)
        table = pd.concat([pd.read_csv(path), table]).drop_duplicates("run", keep="last")
    table.to_csv(path, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
