"""Transfer learning on scarce data (issue 19): test MAE against training-set size, three starts.

For log10 K_VRH (default; ``--target log10_shear_modulus_vrh`` for G) on ``mp-elastic``
(mp_elastic_crysxpp_3k), CGCNN with the shipped model's architecture (the defaults) trained

- ``scratch``: from a random initialisation;
- ``formation``: fine-tuned from the shipped ``mp-formation-energy`` model (encoder copied, new
  head: TL-CGCNN, Lee & Asahi 2021);
- ``twins``: fine-tuned from a Crystal Twins encoder (Magar et al. 2022), pretrained here on
  unlabelled structures (``--ct-sources``, default a subset of mp-36k) unless ``--ct-encoder``
  points at one (``crystalgnn pretrain`` output).

One fixed validation and test set (10 % each, seed 0); the training sets are seeded random draws
of 100, 250, 500, 1,000 or all of the remaining 80 %. Every run is a normal run folder
(resumable: re-running skips finished runs). Writes ``results.csv`` and ``summary.md`` (mean and
standard deviation of the test MAE over seeds, per size and start).

    # the full benchmark (hours on 2 CPU cores)
    python benchmarks/transfer_elastic.py --sizes 100,250,500,1000,all --seeds 0,1,2 \
        --epochs 100 --out benchmarks/out/transfer-elastic
    # a quick check
    python benchmarks/transfer_elastic.py --sizes 100,250 --seeds 0 --epochs 20 \
        --ct-subset 1000 --ct-epochs 3 --out /tmp/transfer-check

Caveat (leakage): mp_elastic_crysxpp_3k is a subset of mp_crysxpp_36k, on which the shipped
formation-energy model was trained (with formation energies, not moduli) and from which the
Crystal Twins structures are drawn (without labels). Both pretrainings may thus have seen test
structures, though never their moduli.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from crystalgnn.training.config import TrainConfig

STARTS = ("scratch", "formation", "twins")


def make_splits(args: argparse.Namespace, out: Path) -> dict[tuple[str, int], Path]:
    """One split file per (size, seed): fixed val/test, the first n of a seeded draw of the rest."""
    from crystalgnn.data.readers import load_source

    ds = load_source(args.source, targets=[args.target], n_jobs=args.jobs, show_progress=False)
    ids = np.array(ds.ids)
    perm = np.random.default_rng(0).permutation(len(ids))
    n_hold = len(ids) // 10
    val, test, pool = ids[perm[:n_hold]], ids[perm[n_hold : 2 * n_hold]], ids[perm[2 * n_hold :]]
    files = {}
    (out / "splits").mkdir(parents=True, exist_ok=True)
    for size in args.sizes.split(","):
        n = len(pool) if size == "all" else int(size)
        for seed in (int(s) for s in args.seeds.split(",")):
            train = pool[np.random.default_rng(1000 + seed).permutation(len(pool))[:n]]
            path = out / "splits" / f"n{size}-s{seed}.json"
            path.write_text(json.dumps({"train": train.tolist(), "val": val.tolist(), "test": test.tolist()}))
            files[(size, seed)] = path
    return files


def crystal_twins_encoder(args: argparse.Namespace, out: Path) -> str:
    if args.ct_encoder:
        return str(args.ct_encoder)
    from crystalgnn.training.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(sources=args.ct_sources.split(","), method=args.ct_method, epochs=args.ct_epochs,
                         subset=args.ct_subset, out=str(out / "crystal-twins"), n_jobs=args.jobs,
                         num_threads=args.threads, progress=False)  # fmt: skip
    return str(pretrain(cfg).out)


def run_one(args: argparse.Namespace, start: str, split: Path, out: Path, seed: int, encoder: str) -> dict:
    from crystalgnn.training.run import train

    init = {"scratch": None, "formation": "mp-formation-energy", "twins": encoder}[start]
    cfg = TrainConfig.resolve({
        "source": args.source, "targets": [args.target], "split_file": str(split), "seed": seed,
        "epochs": args.epochs, "optimizer": "adamw", "lr": args.lr, "weight_decay": 1e-4, "scheduler": "cosine",
        "batch_size": args.batch_size, "num_threads": args.threads, "n_jobs": args.jobs, "progress": False,
        "out": str(out), "init_from": init,
        **({"freeze_encoder_epochs": args.freeze, "encoder_lr_factor": args.encoder_lr_factor} if init else {}),
    }).validate()  # fmt: skip
    m = train(cfg).metrics
    return {"start": start, "n_train": m["n_train"], "seed": seed, "test_mae": m["test"]["mae"],
            "epochs_run": m["epochs_run"], "train_time_s": m["train_time_s"], "run": str(out)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default="mp-elastic")
    p.add_argument("--target", default="log10_bulk_modulus_vrh")
    p.add_argument("--sizes", default="100,250,500,1000,all")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--starts", default=",".join(STARTS))
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--freeze", type=int, default=0, help="--freeze-encoder-epochs of the fine-tuned starts")
    p.add_argument("--encoder-lr-factor", type=float, default=1.0)
    p.add_argument("--ct-encoder", default=None, help="a crystalgnn pretrain folder (default: pretrain here)")
    p.add_argument("--ct-sources", default="mp-36k")
    p.add_argument("--ct-subset", type=int, default=5000)
    p.add_argument("--ct-epochs", type=int, default=20)
    p.add_argument("--ct-method", default="barlow")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/transfer-elastic"))
    p.add_argument("--summary-only", action="store_true", help="rewrite summary.md from results.csv")
    args = p.parse_args()
    if args.summary_only:
        write_summary(args, pd.read_csv(args.out / "results.csv"))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    splits = make_splits(args, args.out)
    starts = args.starts.split(",")
    encoder = crystal_twins_encoder(args, args.out) if "twins" in starts else ""
    rows = []
    for (size, seed), split in splits.items():
        for start in starts:
            row = run_one(args, start, split, args.out / "runs" / f"{start}-n{size}-s{seed}", seed, encoder)
            rows.append({"size": size, **row})
            print(json.dumps(rows[-1]), flush=True)
            pd.DataFrame(rows).to_csv(args.out / "results.csv", index=False)
    write_summary(args, pd.DataFrame(rows))


def write_summary(args: argparse.Namespace, df: pd.DataFrame) -> None:
    """``summary.md``: test MAE mean +- std (number of seeds) per training size and start."""

    def cell(x: pd.Series) -> str:
        return f"{x.mean():.4f} ± {x.std():.4f} ({len(x)})" if len(x) > 1 else f"{x.mean():.4f} (1)"

    table = df.pivot_table(index="n_train", columns="start", values="test_mae", aggfunc=cell)
    table = table[[c for c in STARTS if c in table.columns]]
    text = f"# {args.target} on {args.source}: test MAE, mean ± std (seeds)\n\n{table.to_markdown()}\n"
    (args.out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
