"""Fidelity of instance explanations (GNNExplainer, Integrated Gradients, Saliency) x models.

For each data set: train CGCNN and SchNet briefly with the CLI (one thread, a time cap), then
explain the first N test structures of the run's split with each explainer and measure the
regression fidelity (prediction change when the top-k % atoms / bonds are masked) against
random masks of the same size (:func:`crystalgnn.explain.fidelity.fidelity_table`).

    PYTHONPATH=src .venv/bin/python benchmarks/explain_fidelity.py --out benchmarks/out/explain-fidelity

Writes OUT/<dataset>_fidelity.csv and prints the tables. Runs already trained in OUT are reused.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

#: name -> (source, target, task, training subset or None, structures explained)
DATASETS = {
    "perovskites": ("perovskites", "heat_all", "regression", None, 60),
    "mp36k-bandgap": ("mp-36k", "band_gap", "regression", 3000, 60),
    "mp36k-metal": ("mp-36k", "is_metal", "classification", 3000, 40),
}
MODELS = {"cgcnn": [], "schnet": ["-m", "num_interactions=3"]}


def train(source: str, target: str, task: str, subset: int | None, model: str, out: Path, minutes: float) -> None:
    args = [sys.executable, "-m", "crystalgnn", "train", source, "-t", target, "--task", task, "--model", model,
            *MODELS[model], "--split", "0.6,0.2,0.2", "--seed", "0", "--epochs", "100", "--batch-size", "64",
            "--max-time-minutes", str(minutes), "--threads", "1", "-j", "1", "--no-progress", "-o", str(out)]  # fmt: skip
    if subset:
        args += ["--subset", str(subset)]
    subprocess.run(args, check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/explain-fidelity"))
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--minutes", type=float, default=3.0, help="training time cap per model")
    p.add_argument("--n-random", type=int, default=10)
    p.add_argument("--epochs", type=int, default=100, help="GNNExplainer steps")
    p.add_argument("--n-explain", type=int, default=None, help="test structures explained (default: per data set)")
    p.add_argument(
        "--max-atoms", type=int, default=None, help="explain only test structures with at most this many atoms"
    )
    p.add_argument("--skip-train", action="store_true")
    a = p.parse_args()

    import pandas as pd
    import torch

    from crystalgnn.data.readers import load_source
    from crystalgnn.explain.fidelity import fidelity_table
    from crystalgnn.graphs.crystal_graph import build_graph
    from crystalgnn.prediction import Predictor

    torch.set_num_threads(1)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    for name in a.datasets.split(","):
        source, target, task, subset, n_explain = DATASETS[name]
        models, graphs, metrics = {}, {}, {}
        ds = load_source(source, show_progress=False)
        for model in MODELS:
            run = a.out / f"{name}-{model}"
            if not a.skip_train and not (run / "metrics.json").is_file():
                t0 = time.time()
                train(source, target, task, subset, model, run, a.minutes)
                print(f"trained {run} in {time.time() - t0:.0f} s", flush=True)
            metrics[model] = json.loads((run / "metrics.json").read_text())
            pred = Predictor.load(run)
            test_ids = json.loads((run / "split.json").read_text())["test"]
            pos = ds.index_of(test_ids)
            if a.max_atoms:
                pos = [k for k in pos if len(ds.structures[k]) <= a.max_atoms]
            pos = pos[: a.n_explain or n_explain]
            models[model] = pred.task.model.eval()
            graphs[model] = [build_graph(ds.structures[k], pred.graph_config) for k in pos]
        t0 = time.time()
        table = fidelity_table(models, graphs, ["gnnexplainer", "ig", "saliency"], n_random=a.n_random, epochs=a.epochs)
        table.insert(0, "dataset", name)
        table.to_csv(a.out / f"{name}_fidelity.csv", index=False)
        n_atoms = sum(g.num_nodes for g in graphs["cgcnn"]) / len(graphs["cgcnn"])
        print(f"\n== {name} ({target}, {task}); explained {len(graphs['cgcnn'])} test structures "
              f"(mean {n_atoms:.1f} atoms) in {time.time() - t0:.0f} s")  # fmt: skip
        for model, m in metrics.items():
            test = {k: v for k, v in m.items() if k.startswith("test")}
            print(f"  {model}: {json.dumps(test)[:300]}")
        print(table.round(4).to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
