"""The peer's accuracy at an equal wall-clock budget (issue 15): matgl's MEGNet trained with matgl's
own training path for the same minutes, split and threads as our ``zoo_budget.py`` runs.

Two steps, two environments:

    # 1. project venv: the entries our runs use (same reader, same split), as pymatgen dicts
    PYTHONPATH=src .venv/bin/python benchmarks/zoo_peer_budget.py prepare perovskites \
        --target heat_all --split-file benchmarks/out/original_split.json \
        --out benchmarks/out/zoo-peer-budget
    # 2. the peers' venv (benchmarks/peers_env.sh; never a project dependency)
    /work/peers-venv/bin/python benchmarks/zoo_peer_budget.py matgl \
        --out benchmarks/out/zoo-peer-budget --budget 30 --threads 2

Step 2 is what a matgl user writes: ``Structure2Graph`` (cutoff 4 Å), ``MGLDataset``,
``MGLDataLoader`` (batch 128), ``MEGNet`` with the settings of ``zoo_throughput.py`` (16-dim
embeddings, 100 Gaussians of width 0.5, 3 blocks), ``ModelLightningModule`` with its defaults
(Adam 1e-3, cosine decay over 1,000 epochs to 1e-5, MSE loss) plus the training set's mean and
standard deviation (our runs normalise the target too), and Lightning's ``max_time``. The
checkpoint of best validation MAE is tested, as ours are. Writes ``matgl/metrics.json`` (test
MAE, epochs, seconds per epoch) and ``matgl/val_curve.csv`` (validation MAE against training
seconds, for ``zoo_budget_merge.py``-style figures). Run nothing else on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def prepare(args: argparse.Namespace) -> None:
    """Our reader's entries of ``args.source`` with ``args.target``, in the split file's parts."""
    from crystalgnn.data.readers import load_source

    ds = load_source(args.source, targets=[args.target], show_progress=False)
    split = json.loads(Path(args.split_file).read_text())
    by_id = {i: k for k, i in enumerate(ds.ids)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for part in ("train", "val", "test"):
        rows = []
        for i in split[part]:
            k = by_id[str(i)]
            rows.append({"id": str(i), "y": float(ds.targets[args.target][k]), "structure": ds.structures[k].as_dict()})
        (out / f"{part}.json").write_text(json.dumps(rows))
        print(f"{part}: {len(rows)} entries")


def matgl_run(args: argparse.Namespace) -> None:
    import lightning as L
    import numpy as np
    import torch
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from matgl.ext.pymatgen import Structure2Graph, get_element_list
    from matgl.graph.data import MGLDataLoader, MGLDataset, collate_fn_graph
    from matgl.models import MEGNet
    from matgl.utils.training import ModelLightningModule
    from pymatgen.core import Structure

    torch.set_num_threads(args.threads)
    root = Path(args.out)
    run = root / "matgl"
    run.mkdir(parents=True, exist_ok=True)
    parts = {p: json.loads((root / f"{p}.json").read_text()) for p in ("train", "val", "test")}
    structures = {p: [Structure.from_dict(r["structure"]) for r in rows] for p, rows in parts.items()}
    elements = get_element_list([s for ss in structures.values() for s in ss])
    conv = Structure2Graph(element_types=elements, cutoff=4.0)
    t0 = time.perf_counter()
    data = {
        p: MGLDataset(
            structures=structures[p],
            labels={"y": [r["y"] for r in parts[p]]},
            converter=conv,
            root=str(run / f"graphs-{p}"),
            save_cache=False,
        )
        for p in parts
    }
    graph_s = time.perf_counter() - t0
    train_loader, val_loader, test_loader = MGLDataLoader(
        train_data=data["train"], val_data=data["val"], test_data=data["test"], collate_fn=collate_fn_graph,
        batch_size=args.batch, num_workers=0, generator=torch.Generator().manual_seed(args.seed),
    )  # fmt: skip
    y = np.array([r["y"] for r in parts["train"]])
    L.seed_everything(args.seed)
    model = MEGNet(element_types=elements, cutoff=4.0, dim_node_embedding=16, dim_edge_embedding=100,
                   dim_state_embedding=2, nblocks=3, gauss_width=0.5)  # fmt: skip
    module = ModelLightningModule(model=model, lr=1e-3, data_mean=float(y.mean()), data_std=float(y.std()))

    class Curve(Callback):
        """Validation MAE against training seconds (validation time excluded)."""

        def __init__(self) -> None:
            self.rows: list[dict[str, float]] = []
            self.train_s = 0.0

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.t = time.perf_counter()

        def on_validation_epoch_start(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:  # validation runs inside the training epoch, at its end
                self.train_s += time.perf_counter() - self.t

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            if trainer.sanity_checking:
                return
            mae = float(trainer.callback_metrics["val_MAE"])
            self.rows.append({"epoch": trainer.current_epoch, "train_s": self.train_s, "val_mae": mae})

    curve = Curve()
    best = ModelCheckpoint(dirpath=run / "checkpoints", monitor="val_MAE", mode="min", save_top_k=1)
    trainer = L.Trainer(max_epochs=100_000, max_time={"minutes": args.budget}, accelerator="cpu", devices=1,
                        logger=False, callbacks=[curve, best], enable_progress_bar=False)  # fmt: skip
    t1 = time.perf_counter()
    trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
    fit_s = time.perf_counter() - t1
    tested = trainer.test(module, dataloaders=test_loader, ckpt_path=best.best_model_path, verbose=False)[0]
    epochs = len(curve.rows)
    metrics = {
        "peer": "matgl MEGNet", "test_mae": float(tested["test_MAE"]), "test_rmse": float(tested["test_RMSE"]),
        "epochs": epochs, "fit_s": round(fit_s, 1), "train_s": round(curve.train_s, 1),
        "s_per_epoch": round(curve.train_s / max(epochs, 1), 2), "graph_s": round(graph_s, 1),
        "best_val_mae": min(r["val_mae"] for r in curve.rows) if curve.rows else None,
        "budget_min": args.budget, "threads": args.threads, "batch": args.batch, "seed": args.seed,
        "n_train": len(parts["train"]), "n_val": len(parts["val"]), "n_test": len(parts["test"]),
        "params": sum(p.numel() for p in model.parameters()), "torch": torch.__version__,
    }  # fmt: skip
    (run / "metrics.json").write_text(json.dumps(metrics, indent=1))
    with open(run / "val_curve.csv", "w") as fh:
        fh.write("epoch,train_s,val_mae\n")
        fh.writelines(f"{r['epoch']},{r['train_s']:.2f},{r['val_mae']:.6f}\n" for r in curve.rows)
    print(json.dumps(metrics))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="project venv: the entries and split as JSON")
    p.add_argument("source")
    p.add_argument("--target", required=True)
    p.add_argument("--split-file", required=True)
    p.add_argument("--out", required=True)
    m = sub.add_parser("matgl", help="peers' venv: matgl MEGNet for --budget minutes")
    m.add_argument("--out", required=True)
    m.add_argument("--budget", type=float, default=30.0, help="minutes of training (default 30)")
    m.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    m.add_argument("--batch", type=int, default=128, help="structures per batch (default 128)")
    m.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    (prepare if args.cmd == "prepare" else matgl_run)(args)


if __name__ == "__main__":
    main()
