"""Per-site |m| on ``site-magmoms``: per-site CGCNN vs neighbour-list MLP vs per-element average.

Usage::

    CRYSTALGNN_PROGRESS=0 python benchmarks/site_magmoms.py [--epochs 15] [--mlp-epochs 30]
        [--seed 0] [--loss mse|l1] [--threads 1] [--subset N] [--out benchmarks/out/site_magmoms]

One split, 60/20/20 **by structure** (``random_split(n, (0.6, 0.2, 0.2), seed)``, saved in the
CGCNN run folder and reused for the baselines), one seed. The per-site CGCNN is trained with
``crystalgnn.training.run.train`` (the same code as ``crystalgnn train site-magmoms
--site-target abs_magmom``), and so is the neighbour-list MLP (the registered model
``neighbour-mlp`` with a per-site head, through ``NeighbourMLPBaseline``); the baselines are
fitted on the training structures' sites only (the MLP uses the validation structures for early
stopping). Writes ``results.json`` and, per model, a report folder (predictions.csv,
per_element.csv, parity, per-element MAE heatmap, 3d-metal distributions).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default="site-magmoms")
    ap.add_argument("--site-target", default="abs_magmom")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--mlp-epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--loss", default="mse", help="training loss of CGCNN and the MLP: mse | l1 | huber")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--subset", type=int, default=None, help="a seeded random subset of this many structures")
    ap.add_argument("--out", default="benchmarks/out/site_magmoms")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from crystalgnn.baselines.site_baselines import NeighbourMLPBaseline, PerElementSiteBaseline
    from crystalgnn.data.splits import Split
    from crystalgnn.evaluation.site_report import ELEMENTS_3D, write_site_report
    from crystalgnn.prediction.results import SitePredictions
    from crystalgnn.training.config import TrainConfig
    from crystalgnn.training.run import prepare_inputs, train
    from crystalgnn.training.targets import site_label_counts

    name = args.site_target
    cfg = TrainConfig(
        source=args.source,
        site_target=name,
        split="0.6,0.2,0.2",
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer="adam",
        lr=args.lr,
        scheduler="cosine",
        loss=args.loss,
        out=str(out / "cgcnn"),
        num_threads=args.threads,
        progress=False,
        subset=args.subset,
    )
    t0 = time.perf_counter()
    res = train(cfg)
    t_cgcnn = time.perf_counter() - t0
    results: dict[str, dict] = {
        "per-site CGCNN": {
            **res.metrics["test"],
            "per_element": {el: res.metrics["test_per_element"].get(el) for el in ELEMENTS_3D},
            "train_time_s": res.metrics["train_time_s"],
            "epochs": res.metrics["epochs_run"],
            "n_parameters": res.metrics["n_parameters"],
        }
    }
    print(f"per-site CGCNN: test site MAE {res.metrics['test']['mae']:.4f} ({t_cgcnn:.0f} s)")

    # the same data, graphs (from the cache) and split for the baselines
    ds, graphs, *_ = prepare_inputs(cfg, [name], "site")
    split = Split.load(Path(cfg.out) / "split.json", ds.ids)
    labels = ds.site_targets[name]
    unit = ds.units.get(name, "")
    counts = {part: site_label_counts(labels, getattr(split, part)) for part in ("train", "val", "test")}
    test_ids = [ds.ids[i] for i in split.test]

    def report(key: str, folder: str, values: list[np.ndarray], extra: dict) -> None:
        df = SitePredictions(test_ids, values, name, {name: unit}).to_frame(ds)
        m = write_site_report(out / folder, df, target=name, unit=unit, prefix="test")
        results[key] = {
            **m["test"],
            "per_element": {el: m["test_per_element"].get(el) for el in ELEMENTS_3D},
            **extra,
        }
        print(f"{key}: test site MAE {m['test']['mae']:.4f}")

    t0 = time.perf_counter()
    pe = PerElementSiteBaseline().fit([ds.structures[i] for i in split.train], [labels[i] for i in split.train])
    report("per-element average", "per_element_avg", pe.predict([ds.structures[i] for i in split.test]),
           {"fit_time_s": round(time.perf_counter() - t0, 3), "unseen_test_sites": pe.n_unseen_})  # fmt: skip
    t0 = time.perf_counter()
    pm = PerElementSiteBaseline("median").fit([ds.structures[i] for i in split.train], [labels[i] for i in split.train])
    report("per-element median", "per_element_median", pm.predict([ds.structures[i] for i in split.test]),
           {"fit_time_s": round(time.perf_counter() - t0, 3)})  # fmt: skip
    # no early stopping: the best validation epoch is kept anyway, and on the one training path a
    # patience of 8 stops two of three seeds early (0.079 vs 0.075 μB; the old loop never stopped)
    mlp = NeighbourMLPBaseline(epochs=args.mlp_epochs, seed=args.seed, patience=None, loss=args.loss)
    mlp.fit([graphs[i] for i in split.train], [labels[i] for i in split.train],
            [graphs[i] for i in split.val], [labels[i] for i in split.val])  # fmt: skip
    report("neighbour-list MLP", "neighbour_mlp", mlp.predict([graphs[i] for i in split.test]),
           {"train_time_s": round(mlp.train_time_s_, 1), "epochs": len(mlp.history_),
            "n_parameters": mlp.n_parameters()})  # fmt: skip

    summary = {
        "source": args.source,
        "site_target": name,
        "unit": unit,
        "split": "0.6/0.2/0.2 by structure",
        "seed": args.seed,
        "loss": args.loss,
        "structures": {p: c["structures"] for p, c in counts.items()},
        "sites": counts,
        "results": results,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"\n{'model':<22} {'site MAE':>9} {'RMSE':>8} {'R2':>7}   ({unit}, {counts['test']['labelled']} test sites)")
    for key, r in results.items():
        print(f"{key:<22} {r['mae']:>9.4f} {r['rmse']:>8.4f} {r['r2']:>7.3f}")
    print("\nper 3d element MAE:")
    print(" " * 22 + "".join(f"{el:>7}" for el in ELEMENTS_3D))
    for key, r in results.items():
        row = "".join(f"{(r['per_element'][el] or {}).get('mae', float('nan')):>7.3f}" for el in ELEMENTS_3D)
        print(f"{key:<22}{row}")
    print(f"\nwrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
