"""Each zoo model's accuracy at an equal training-time budget (issue 15).

Every model trains with its published recipe (``crystalgnn/training/recipes``) and
``--time-budget MINUTES``: the run stops at the epoch end before the budget is spent, and the
cosine / one-cycle schedules anneal over the budget. Writes ``results.csv`` (test MAE, epochs,
seconds per epoch, per model and seed), ``summary.md`` (mean +- std over seeds) and
``val_curve.png`` (validation MAE against training wall-clock time, one line per run).

    # perovskites, the original CGCNN code's 60/20/20 split, 30 minutes per model
    python benchmarks/original_split.py perovskites benchmarks/out/original_split.json
    python benchmarks/zoo_budget.py perovskites --target heat_all \
        --split-file benchmarks/out/original_split.json --budget 30 --out benchmarks/out/zoo-budget
    # elastic moduli, 3 seeds, random 80/10/10 splits
    python benchmarks/zoo_budget.py mp-elastic --target log10_bulk_modulus_vrh --seeds 0,1,2 \
        --budget 10 --out benchmarks/out/zoo-elastic-K

Runs are resumable: re-running the line skips finished runs and continues interrupted ones
within their remaining budget. Run nothing else on the machine meanwhile (the budget is wall
clock).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

import crystalgnn
from crystalgnn.training.config import TrainConfig

MODELS = ("cgcnn", "megnet", "schnet", "alignn")


def parse_variant(text: str) -> tuple[str, str, dict[str, object]]:
    """``NAME=MODEL:key=value,key=value`` -> (name, model, overrides); values parsed as YAML."""
    import yaml

    name, rest = text.split("=", 1)
    model, _, opts = rest.partition(":")
    overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in opts.split(",") if kv)}
    return name, model, overrides


def run_one(args: argparse.Namespace, name: str, model: str, seed: int, overrides: dict[str, object]) -> Path:
    out = Path(args.out) / f"{name}-s{seed}"
    flags: dict[str, object] = {
        "source": args.source,
        "targets": [args.target],
        "model": model,
        "seed": seed,
        "epochs": 100_000,  # the budget ends every run
        "max_time_minutes": args.budget,
        "out": str(out),
        "num_threads": args.threads,
        "progress": False,
        **overrides,
    }
    if args.subset:
        flags["subset"] = args.subset
    if args.split_file:
        flags["split_file"] = args.split_file
    else:
        flags["split"] = args.split
    cfg = TrainConfig.resolve(flags)
    # the recipes' early stopping would end runs before the budget: the comparison is per budget
    cfg.early_stopping_patience = None
    crystalgnn.train(config=cfg, figures=False)
    return out


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Test MAE mean and std, epochs and seconds per epoch per model over its seeds."""
    return results.groupby("model", sort=False).agg(
        test_mae_mean=("test_mae", "mean"),
        test_mae_std=("test_mae", "std"),
        epochs=("epochs", "mean"),
        s_per_epoch=("time_per_epoch_s", "mean"),
        n=("seed", "count"),
    )


def curve(run: Path) -> pd.DataFrame:
    """Validation MAE against cumulative training time (s) of one run."""
    log = pd.read_csv(run / "log" / "metrics.csv")
    per_epoch = log.groupby("epoch").agg({"val_mae": "last", "epoch_time_s": "last"}).dropna()
    per_epoch["time_s"] = per_epoch["epoch_time_s"].cumsum()
    return per_epoch.reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("--target", required=True)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=MODEL:KEY=VALUE,...",
        help="an extra run with recipe overrides, e.g. cgcnn-adamw=cgcnn:optimizer=adamw,lr=0.001,batch_size=64",
    )
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--budget", type=float, default=30.0, help="minutes of training per run (30)")
    ap.add_argument("--split", default="0.8,0.1,0.1")
    ap.add_argument("--split-file", default=None)
    ap.add_argument("--subset", type=int, default=None, help="a seeded random subset of the source")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/out/zoo-budget")
    args = ap.parse_args()
    rows = []
    curves = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        runs = [(m, m, {}) for m in args.models.split(",") if m] + [parse_variant(v) for v in args.variant]
        for name, model, overrides in runs:
            run = run_one(args, name, model, seed, overrides)
            m = json.loads((run / "metrics.json").read_text())
            test = m["test"].get(args.target, m["test"])  # one target: the metrics themselves
            rows.append(
                {
                    "model": name,
                    "seed": seed,
                    "test_mae": test["mae"],
                    "epochs": m["epochs_run"],
                    "train_time_s": m["train_time_s"],
                    "time_per_epoch_s": m["time_per_epoch_s"],
                    "stopped_by": m.get("stopped_by"),
                    "n_parameters": m["n_parameters"],
                }
            )
            curves[f"{name} s{seed}"] = curve(run)
    out = Path(args.out)
    df = pd.DataFrame(rows)
    df.to_csv(out / "results.csv", index=False)
    summary = summarize(df)
    (out / "summary.md").write_text(
        f"{args.source} {args.target}, {args.budget:g} min per run, seeds {args.seeds}\n\n"
        + summary.to_markdown(floatfmt=".4f")
        + "\n"
    )
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, c in curves.items():
        ax.plot(c["time_s"] / 60, c["val_mae"], label=name, lw=1.2)
    ax.set_xlabel("training wall-clock time (min)")
    ax.set_ylabel(f"validation MAE ({args.target})")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(f"{args.source}: validation MAE at a {args.budget:g}-minute budget")
    fig.tight_layout()
    fig.savefig(out / "val_curve.png", dpi=150)
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
