"""Average voltage of MP insertion electrodes from the discharged structure (issue 17, predictor (a)).

Trains the same network twice on ``electrodes`` (``mp_insertion_electrodes_gatgnn``, 4,148
electrodes, ten working ions), once on a random 80/10/10 split and once on a split that keeps
every framework (the charged end member's formula, ``high_formula``) on one side
(``--split-by high_formula``), and reports the test MAE overall and per working ion.

    python benchmarks/voltage_electrodes.py --out benchmarks/out/voltage --epochs 60 --threads 1

Resumable (each run is an ordinary run folder). Writes ``summary.md`` and ``per_ion.csv``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

import crystalgnn
from crystalgnn.data.readers import load_source
from crystalgnn.training.config import TrainConfig

SPLITS = {"random": {}, "framework": {"split_by": "high_formula"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="cgcnn")
    ap.add_argument("--end-member", default="discharged", choices=("discharged", "charged"))
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--loss", default="mse", choices=("mse", "l1", "huber"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--splits", default="random,framework")
    ap.add_argument("--out", default="benchmarks/out/voltage")
    args = ap.parse_args()
    out = Path(args.out)
    ds = load_source("electrodes")
    ion = {i: m.get("working_ion") for i, m in zip(ds.ids, ds.metadata, strict=True)}
    rows, per_ion = [], []
    for name in args.splits.split(","):
        loss = "" if args.loss == "mse" else f"-{args.loss}"
        run = out / f"{args.model}-{args.end_member}-{name}{loss}-s{args.seed}"
        flags = {
            "source": "electrodes",
            "targets": ["average_voltage"],
            "model": args.model,
            "end_member": args.end_member,
            "seed": args.seed,
            "epochs": args.epochs,
            "optimizer": "adamw",
            "lr": 0.001,
            "weight_decay": 0.0001,
            "scheduler": "cosine",
            "batch_size": 64,
            "loss": args.loss,
            "split": "0.8,0.1,0.1",
            "num_threads": args.threads,
            "out": str(run),
            "progress": False,
            **SPLITS[name],
        }
        res = crystalgnn.train(config=TrainConfig.resolve(flags), figures=False)
        pred = pd.read_csv(run / "predictions.csv", dtype={"id": str})
        pred.columns = ["id", "target", "prediction"]
        pred["ion"] = pred["id"].map(ion)
        pred["abs_err"] = (pred["prediction"] - pred["target"]).abs()
        rows.append(
            {
                "split": name,
                "test_mae_V": res.metrics["test"]["mae"],
                "rmse_V": res.metrics["test"]["rmse"],
                "r2": res.metrics["test"]["r2"],
                "n_test": res.metrics["n_test"],
                "epochs": res.metrics["epochs_run"],
                "train_time_s": res.metrics["train_time_s"],
            }
        )
        g = pred.groupby("ion")["abs_err"].agg(["mean", "count"]).reset_index()
        g.insert(0, "split", name)
        per_ion.append(g.rename(columns={"mean": "mae_V", "count": "n"}))
    summary = pd.DataFrame(rows)
    ions = pd.concat(per_ion)
    ions.to_csv(out / f"per_ion{'' if args.loss == 'mse' else '-' + args.loss}.csv", index=False)
    table = ions.pivot(index="ion", columns="split", values="mae_V").round(3)
    counts = ions.pivot(index="ion", columns="split", values="n")
    text = (
        f"{args.model}, {args.end_member} end member, {args.loss} loss, {args.epochs} epochs, seed {args.seed}\n\n"
        + summary.to_markdown(index=False, floatfmt=".4f")
        + "\n\nTest MAE (V) per working ion (n test entries in brackets):\n\n"
        + table.astype(str).add(" (").add(counts.astype(int).astype(str)).add(")").to_markdown()
        + "\n"
    )
    tag = "" if args.loss == "mse" else f"-{args.loss}"
    (out / f"summary{tag}.md").write_text(text)
    (out / f"summary{tag}.json").write_text(json.dumps(rows, indent=1))
    print(text)


if __name__ == "__main__":
    main()
