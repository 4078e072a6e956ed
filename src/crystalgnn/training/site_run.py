"""A complete, resumable per-site training run (``crystalgnn train SOURCE --site-target NAME``).

Same machinery and run folder as graph-level runs (:mod:`crystalgnn.training.run`): the config
check/resume (``open_run``), the seeded epoch sampler, the Lightning fit (``fit``: ``EpochTimer``,
``best.ckpt``/``last.ckpt``, the CSV log kept across resumes) and ``finish_run``.
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

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.splits import Split
from crystalgnn.models.registry import make_config
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.losses import check_loss
from crystalgnn.training.run import (
    RunResult,
    _atom_table,
    build_run_graphs,
    finish_run,
    fit,
    load_run_dataset,
    open_run,
    run_loaders,
    run_split,
)
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

    def per_site(ds: CrystalDataset) -> None:
        if name not in ds.site_targets:
            raise ValueError(f"{name!r} is a graph-level target of {ds.name!r}, not a per-site one; use --target")

    # a seeded subset of structures (cfg.subset), as graph-level runs
    ds = load_run_dataset(cfg, [name], check=per_site)
    table, feat_name = _atom_table(cfg, ds)
    model_cfg, hidden, layers = _split_options(cfg)
    gcfg = model_cfg.graph_config()
    graphs, report = build_run_graphs(cfg, ds, gcfg, table)
    graphs = attach_site_targets(graphs, ds.site_targets[name])
    split = run_split(cfg, ds, run_dir)
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
    if cfg.graphs_on_disk:
        raise ValueError("--graphs-on-disk is for graph-level targets; per-site runs keep their graphs in memory")
    check_loss(cfg.loss)
    run_dir, finished = open_run(cfg)
    if finished is not None:
        return finished
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
    train_loader, val_loader = run_loaders(graphs, split, cfg)
    result = fit(module, train_loader, val_loader, run_dir, cfg, monitor="val_mae", mode="min")
    metrics = evaluate_site_run(run_dir, ds, graphs, split)
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
            **result.summary(module, t_start, cfg.seed, data_time_s=data["data_time_s"]),
        }
    )
    finish_run(run_dir, metrics)
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
