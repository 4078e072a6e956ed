"""A complete, resumable per-site training run (``crystalgnn train SOURCE --site-target NAME``).

Same machinery and run folder as graph-level runs (:mod:`crystalgnn.training.run`): the config
check/resume, the seeded epoch sampler, ``EpochTimer``, ``best.ckpt``/``last.ckpt``, the CSV log.
Differences: the model is :class:`~crystalgnn.models.site_heads.SiteModel` (a registered
backbone's ``node_embeddings`` + per-atom head), targets are normalised with the training-site
labels, the loss is MSE over labelled sites only, splits are by structure, and the report is per
site (``predictions.csv``: id, site_index, element, target, prediction; ``per_element.csv``;
parity over sites; per-element MAE heatmap; 3d-metal distributions).

Model-specific options go in ``model_options`` as for graph-level runs; two keys configure the
per-site head instead of the backbone: ``site_head_hidden`` (width, default: the backbone's
``h_fea_len`` or 128) and ``site_head_layers`` (default: the backbone's ``n_h`` or 1).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.readers import load_source
from crystalgnn.data.splits import Split, random_split
from crystalgnn.graphs.builder import build_dataset_graphs
from crystalgnn.graphs.cache import GraphCache
from crystalgnn.models.registry import make_config
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.data import make_loader
from crystalgnn.training.run import EpochTimer, RunResult, _atom_table, _check_run_dir
from crystalgnn.training.site_task import SitePredictor, SiteTask, attach_site_targets, fit_site_normalizer

HEAD_KEYS = ("site_head_hidden", "site_head_layers")


def _split_options(cfg: TrainConfig) -> tuple[Any, int, int]:
    opts = dict(cfg.model_options or {})
    head = {k: opts.pop(k) for k in HEAD_KEYS if k in opts}
    model_cfg = make_config(cfg.model, opts)
    hidden = int(head.get("site_head_hidden", getattr(model_cfg, "h_fea_len", 128)))
    layers = int(head.get("site_head_layers", getattr(model_cfg, "n_h", 1)))
    return model_cfg, hidden, layers


def site_label_counts(arrays: list[np.ndarray | None], idx: np.ndarray) -> dict[str, int]:
    """Labelled and unlabelled (NaN) sites among the structures ``idx``."""
    n_sites = n_lab = 0
    for i in idx:
        a = arrays[int(i)]
        if a is None:
            continue
        n_sites += len(a)
        n_lab += int(np.isfinite(a).sum())
    return {"structures": int(len(idx)), "sites": n_sites, "labelled": n_lab, "unlabelled": n_sites - n_lab}


def prepare_site_data(cfg: TrainConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Load, build graphs (with ``site_y``), split by structure; the split is saved in the run folder."""
    t0 = time.perf_counter()
    name = str(cfg.site_target)
    ds = load_source(
        cfg.source,
        targets=[name],
        structure_column=cfg.structure_column,
        end_member=cfg.end_member,
        n_jobs=cfg.n_jobs,
        show_progress=cfg.progress,
    )
    if name not in ds.site_targets:
        raise ValueError(f"{name!r} is a graph-level target of {ds.name!r}, not a per-site one; use --target")
    if len(ds) == 0:
        raise ValueError(f"{cfg.source}: no usable entries ({len(ds.rejections)} rejected)")
    subset = getattr(cfg, "subset", None)
    if subset is not None and subset < len(ds):  # a seeded subset of structures, as graph-level runs
        from crystalgnn.training.run import select_subset

        ds = select_subset(ds, int(subset), int(getattr(cfg, "subset_seed", 0)))
    table, feat_name = _atom_table(cfg, ds)
    model_cfg, hidden, layers = _split_options(cfg)
    gcfg = model_cfg.graph_config()
    supported = [int(z) for z in torch.nonzero(~torch.isnan(table).any(dim=1)).flatten()]
    cache = GraphCache(Path(cfg.cache_dir) / "graphs.lmdb" if cfg.cache_dir else None) if cfg.use_cache else None
    graphs, report = build_dataset_graphs(
        ds, gcfg, cache=cache, supported_elements=supported, n_jobs=cfg.n_jobs, show_progress=cfg.progress
    )
    graphs = attach_site_targets(graphs, ds.site_targets[name])
    split_path = run_dir / "split.json" if run_dir else None
    if split_path is not None and split_path.is_file():
        split = Split.load(split_path, ds.ids)
    elif cfg.split_file:
        split = Split.load(cfg.split_file, ds.ids)
    else:
        split = random_split(len(ds), [float(x) for x in cfg.split.split(",")], seed=cfg.seed)
    if split_path is not None and not split_path.is_file():
        split.save(split_path, ds.ids)
    return {
        "dataset": ds,
        "graphs": graphs,
        "split": split,
        "graph_config": gcfg,
        "model_config": model_cfg,
        "head_hidden": hidden,
        "head_layers": layers,
        "atom_table": table,
        "featurizer": feat_name,
        "graph_report": report,
        "data_time_s": time.perf_counter() - t0,
    }


def train_sites(cfg: TrainConfig) -> RunResult:
    """Train (or resume, or report a finished) per-site run and evaluate it on the test structures."""
    if not cfg.site_target:
        raise ValueError("no per-site target given (--site-target NAME)")
    if cfg.targets:
        raise ValueError("give either graph-level targets (--target) or one per-site target (--site-target), not both")
    if cfg.task not in ("auto", "regression"):
        raise ValueError("per-site training is regression only")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    resuming = _check_run_dir(run_dir, cfg)
    if resuming and (run_dir / "metrics.json").is_file():
        return RunResult(run_dir, json.loads((run_dir / "metrics.json").read_text()))
    cfg.save(run_dir / "config.yaml")
    t_start = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    data = prepare_site_data(cfg, run_dir)
    ds: CrystalDataset = data["dataset"]
    ds.write_rejections(run_dir / "rejected.csv")
    split: Split = data["split"]
    graphs = data["graphs"]
    name = str(cfg.site_target)
    arrays = ds.site_targets[name]
    normalizer = fit_site_normalizer([arrays[i] for i in split.train if arrays[i] is not None])
    unit = ds.units.get(name, "")
    torch.manual_seed(cfg.seed)
    module = SiteTask(
        model_name=cfg.model,
        model_config=data["model_config"].to_dict(),
        graph_config=data["graph_config"].to_dict(),
        site_target=name,
        units={name: unit},
        normalizer=normalizer,
        optim=cfg.optim_dict(),
        head_hidden=data["head_hidden"],
        head_layers=data["head_layers"],
        atom_table=data["atom_table"],
        featurizer=data["featurizer"],
        seed=cfg.seed,
        extra={"source": cfg.source, "n_train": int(len(split.train))},
    )
    train_loader = make_loader([graphs[i] for i in split.train], cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_graphs = [graphs[i] for i in split.val] or [graphs[i] for i in split.train[: max(1, len(split.train) // 10)]]
    val_loader = make_loader(val_graphs, cfg.batch_size)
    ckpt_dir = run_dir / "checkpoints"
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_mae", mode="min", save_last=True)
    timer = EpochTimer()
    callbacks: list[Callback] = [checkpoint, timer]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStopping(monitor="val_mae", mode="min", patience=cfg.early_stopping_patience))
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        callbacks=callbacks,
        logger=CSVLogger(str(run_dir), name="log", version=""),
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        deterministic=True,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        max_time={"minutes": cfg.max_time_minutes} if cfg.max_time_minutes else None,
    )
    last = ckpt_dir / "last.ckpt"
    log_csv = run_dir / "log" / "metrics.csv"
    # as graph-level runs: keep the epochs logged before an interruption (Lightning's CSV logger
    # would overwrite them) when run.py provides the merge
    from crystalgnn.training import run as graph_run

    merge = getattr(graph_run, "_merge_resumed_log", None)
    old_log = log_csv.read_bytes() if merge and last.is_file() and log_csv.is_file() else None
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if last.is_file() else None)
    if old_log is not None and merge is not None:
        merge(old_log, log_csv)
    metrics = evaluate_site_run(run_dir, ds, graphs, split)
    best = ckpt_dir / "best.ckpt"
    metrics.update(
        {
            "model": cfg.model,
            "site_target": name,
            "task": "site-regression",
            "units": {name: unit},
            "normalizer": normalizer,
            "n_train": int(len(split.train)),
            "n_val": int(len(split.val)),
            "n_test": int(len(split.test)),
            "sites": {
                part: site_label_counts(arrays, getattr(split, part)) for part in ("train", "val", "test")
            },
            "n_rejected": len(ds.rejections),
            "epochs_run": int(trainer.current_epoch),
            "train_time_s": round(timer.elapsed, 3),
            "time_per_epoch_s": round(float(np.mean(timer.epoch_times)) if timer.epoch_times else float("nan"), 4),
            "data_time_s": round(data["data_time_s"], 3),
            "wall_time_this_process_s": round(time.perf_counter() - t_start, 3),
            "n_parameters": module.n_parameters(),
            "checkpoint_bytes": best.stat().st_size if best.is_file() else None,
            "seed": cfg.seed,
        }
    )
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    try:
        from crystalgnn.evaluation.plots import training_curve_plot

        training_curve_plot(run_dir / "log" / "metrics.csv", run_dir / "training.png")
    except Exception:  # a plot must never fail a finished run
        pass
    return RunResult(run_dir, metrics)


def evaluate_site_run(run_dir: Path, ds: CrystalDataset, graphs: list[Any], split: Split) -> dict[str, Any]:
    """Per-site test metrics, predictions.csv and figures from the best checkpoint."""
    from crystalgnn.evaluation.site_report import write_site_report
    from crystalgnn.training.site_task import SitePredictions

    predictor = SitePredictor.load(run_dir / "checkpoints" / "best.ckpt")
    idx = split.test if len(split.test) else split.val
    values = predictor.predict_graphs([graphs[i] for i in idx])
    preds = SitePredictions([ds.ids[i] for i in idx], values, predictor.site_target, predictor.units)
    df = preds.to_frame(ds)
    name = predictor.site_target
    return write_site_report(run_dir, df, target=name, unit=predictor.units.get(name, ""), prefix="test")
