"""The one run skeleton: data -> inputs -> split -> target spec -> Lightning fit -> test predictions.

Run folder::

    config.yaml        the resolved configuration (the run's identity)
    split.json         train/val/test ids
    rejected.csv       entries that were not used, and why
    checkpoints/       best.ckpt (best validation), last.ckpt (last completed epoch: resume point)
    log/metrics.csv    per-epoch losses and validation metrics (Lightning CSV logger)
    metrics.json       test metrics, training time, time per epoch, parameters, checkpoint bytes
    predictions.csv    the test set: id, target, prediction (per site: id, site_index, element, ...)

Graph-level and per-site targets, regression and classification, crystal graphs and SOAP vectors
(:func:`train_on_features`) all go through :func:`fit_and_test`. Restarting the same command after
an interruption (even ``kill -9``) resumes from ``last.ckpt``; data order and dropout are seeded
per epoch, so the final metrics equal those of an uninterrupted run. Raising ``epochs`` on a
finished run continues it from its last epoch. Figures are drawn by
:func:`crystalgnn.evaluation.figures.run_figures` from these files.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.splits import MissingSplitIds, Split
from crystalgnn.graphs.cache import CachedGraphs
from crystalgnn.models.registry import make_config, split_options
from crystalgnn.training.checkpoints import check_resume_point, load_task
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.finetune import init_weights
from crystalgnn.training.holdout import predict_inputs, test_report
from crystalgnn.training.loaders import make_loader, select_graphs
from crystalgnn.training.loop import FitResult, finish_run, fit
from crystalgnn.training.losses import check_loss
from crystalgnn.training.run_data import (
    atom_table,
    build_run_graphs,
    load_run_dataset,
    resolve_default_target,
    run_split,
    stream_run_graphs,
)
from crystalgnn.training.targets import (
    TargetSpec,
    attach_site_targets,
    attach_targets,
    fit_normalizer,
    fit_site_normalizer,
    infer_task,
    site_label_counts,
)
from crystalgnn.training.task import CrystalTask


class RunConfigMismatch(RuntimeError):
    """The run folder holds a run with a different configuration."""


@dataclass
class RunResult:
    """A finished run: its folder and ``metrics.json``."""

    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- run folder
def _check_run_dir(run_dir: Path, cfg: TrainConfig) -> bool:
    """True when the folder holds the same run (resume); raise when it holds another one."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return False
    old = TrainConfig.from_yaml(saved)
    old_key, new_key = old.resume_key(), cfg.resume_key()
    if old_key != new_key:
        started = (run_dir / "checkpoints" / "last.ckpt").is_file() or (run_dir / "metrics.json").is_file()
        if not started:  # an earlier attempt stopped before its first epoch (e.g. a bad target)
            for stale in ("config.yaml", "split.json", "rejected.csv"):
                (run_dir / stale).unlink(missing_ok=True)
            return False
        diff = sorted(k for k, v in new_key.items() if old_key.get(k) != v)
        raise RunConfigMismatch(
            f"{run_dir} holds a run with a different configuration (differs in: {', '.join(diff)}); "
            "choose another --out or delete the folder"
        )
    return True


def open_run(cfg: TrainConfig) -> tuple[Path, RunResult | None]:
    """Threads, the run folder and its configuration check.

    Returns the folder and, when it already holds this run finished with at least ``cfg.epochs``
    epochs, its result (else ``None``, after saving ``config.yaml``; a finished run asked for
    more epochs is reopened and continues from ``last.ckpt``). Raises :class:`RunConfigMismatch`
    for a folder of another run.
    """
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    resuming = _check_run_dir(run_dir, cfg)
    done = run_dir / "metrics.json"
    if resuming and done.is_file():
        metrics = json.loads(done.read_text())
        if _finished(metrics, cfg):
            return run_dir, RunResult(run_dir, metrics)
        done.unlink()  # extended: train on from the last epoch
    cfg.save(run_dir / "config.yaml")
    return run_dir, None


def _finished(metrics: dict[str, Any], cfg: TrainConfig) -> bool:
    """Whether a finished run already satisfies ``cfg``: all epochs done, stopped early, or its
    time budget spent (a larger ``--time-budget`` or more epochs reopen it).
    """
    if int(metrics.get("epochs_run", 0)) >= cfg.epochs:
        return True
    stopped_by = metrics.get("stopped_by", "early_stopping" if metrics.get("stopped_early") else "epochs")
    if stopped_by == "early_stopping":
        return True
    if stopped_by == "time_budget":
        budget_s = 60.0 * cfg.max_time_minutes if cfg.max_time_minutes else None
        spent = float(metrics.get("train_time_s", 0.0)) + float(metrics.get("time_per_epoch_s") or 0.0)
        return budget_s is not None and spent > budget_s
    return False


def _check_split(split: Split) -> None:
    if len(split.train) == 0 or len(split.val) == 0 or len(split.test) == 0:
        raise ValueError(
            f"the split has {len(split.train)} training, {len(split.val)} validation and {len(split.test)} test "
            "entries: every part needs at least one (e.g. --split 0.8,0.1,0.1)"
        )


# ----------------------------------------------------------------------------- fit + test
def fit_and_test(
    cfg: TrainConfig,
    run_dir: Path,
    module: CrystalTask,
    inputs: Any,
    split: Split,
    ds: CrystalDataset,
    *,
    t_start: float,
    data_time_s: float | None = None,
    extra: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
) -> RunResult:
    """Fit ``module`` on ``inputs`` (graphs or feature items, one per dataset entry) and write the
    test report (``predictions.csv``, ``metrics.json``); shared by every run kind. ``callbacks``
    join the fit's own (:func:`~crystalgnn.training.loop.fit`).
    """
    spec = module.spec
    train_loader = make_loader(select_graphs(inputs, split.train), cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_loader = make_loader(select_graphs(inputs, split.val), cfg.batch_size)
    monitor, mode = ("val_auc", "max") if spec.kind == "classification" else ("val_mae", "min")
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():  # read safely and checked before Lightning loads it
        check_resume_point(last, module)
    result = fit(module, train_loader, val_loader, run_dir, cfg, monitor, mode, callbacks)
    best = load_task(result.best_path)
    metrics = test_report(run_dir, best, select_graphs(inputs, split.test), ds, split.test)
    metrics.update(
        {
            "model": cfg.model,
            "readout": cfg.readout,
            "targets": list(spec.names),
            "level": spec.level,
            "task": spec.kind if spec.level == "graph" else "site-regression",
            "units": dict(spec.units),
            "n_train": len(split.train),
            "n_val": len(split.val),
            "n_test": len(split.test),
            "n_rejected": len(ds.rejections),
            "stopped_early": bool(result.trainer.should_stop and result.trainer.current_epoch < cfg.epochs),
            **(extra or {}),
            **result.summary(module, t_start, cfg.seed, data_time_s=data_time_s),
        }
    )
    if spec.level == "site":
        metrics["site_target"] = spec.names[0]
        metrics["normalizer"] = {"mean": spec.mean[0], "std": spec.std[0]}
    finish_run(run_dir, metrics)
    return RunResult(run_dir, metrics)


# ----------------------------------------------------------------------------- the run kinds
def prepare_inputs(
    cfg: TrainConfig, names: list[str], level: str
) -> tuple[CrystalDataset, Any, Any, torch.Tensor, str]:
    """Dataset, graphs with labels attached, model config, atom table and its name."""
    arch_opts, _ = split_options(cfg.model_options)
    model_cfg = make_config(cfg.model, arch_opts)
    gcfg = model_cfg.graph_config()
    streamed = stream_run_graphs(cfg, gcfg) if cfg.graphs_on_disk and level == "graph" else None
    graphs: list[Any] | CachedGraphs
    if streamed is not None:
        ds, graphs, _, table, feat_name = streamed
    else:

        def per_site(d: CrystalDataset) -> None:
            if names[0] not in d.site_targets:
                raise ValueError(
                    f"{names[0]!r} is a graph-level target of {d.name!r}, not a per-site one; use --target"
                )

        ds = load_run_dataset(cfg, names, check=per_site if level == "site" else None)
        table, feat_name = atom_table(cfg, ds)
        graphs, _ = build_run_graphs(cfg, ds, gcfg, table)
    if level == "site":
        graphs = attach_site_targets(graphs, ds.site_targets[names[0]])
    else:
        graphs = attach_targets(graphs, np.stack([ds.targets[t] for t in names], axis=1))
    return ds, graphs, model_cfg, table, feat_name


def target_spec(cfg: TrainConfig, ds: CrystalDataset, names: list[str], level: str, split: Split) -> TargetSpec:
    """The run's target spec, normaliser fitted on the training split."""
    units = {t: ds.units.get(t, "") for t in names}
    if level == "site":
        arrays = ds.site_targets[names[0]]
        mean, std = fit_site_normalizer([arrays[i] for i in split.train if arrays[i] is not None])
        return TargetSpec(names, "site", "regression", units, mean, std)
    kind = infer_task(ds, names, cfg.task)
    if kind == "classification":
        return TargetSpec(names, "graph", kind, units)
    y = np.stack([ds.targets[t] for t in names], axis=1)[split.train]
    mean, std = fit_normalizer(y)
    return TargetSpec(names, "graph", kind, units, mean, std)


def train(cfg: TrainConfig, callbacks: list[Any] | None = None) -> RunResult:
    """Train (or resume, extend, or report an already finished run) and test on the test split.

    ``cfg.targets`` (graph-level) or ``cfg.site_target`` (one per-site target, ``readout`` site);
    a failed first attempt leaves no half-made run folder behind. ``callbacks``: extra Lightning
    callbacks for the fit.
    """
    if cfg.site_target and cfg.targets:
        raise ValueError("give either graph-level targets (--target) or one per-site target (--site-target), not both")
    if not cfg.targets and not cfg.site_target:
        cfg.targets = resolve_default_target(cfg)
    level = "site" if cfg.site_target else "graph"
    if level == "site":
        if cfg.readout == "graph":
            cfg.readout = "site"
        if cfg.task not in ("auto", "regression"):
            raise ValueError("per-site training is regression only")
        if cfg.graphs_on_disk:
            raise ValueError("--graphs-on-disk is for graph-level targets; per-site runs keep their graphs in memory")
    names = [str(cfg.site_target)] if level == "site" else list(cfg.targets)
    check_loss(cfg.loss)
    existed = Path(cfg.out).exists()
    run_dir, finished = open_run(cfg)
    if finished is not None:
        return finished
    try:
        return _train_in(cfg, run_dir, names, level, callbacks)
    except MissingSplitIds as exc:  # keep rejected.csv (the reasons) for the user to read
        raise MissingSplitIds(
            f"{exc}; every rejection: {run_dir / 'rejected.csv'}; --skip-missing-split-ids trains without them",
            exc.missing,
        ) from exc
    except BaseException:
        if not existed and not (run_dir / "checkpoints" / "last.ckpt").is_file():
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing worth resuming
        raise


def _train_in(cfg: TrainConfig, run_dir: Path, names: list[str], level: str, callbacks: Any = None) -> RunResult:
    t_start = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    ds, graphs, model_cfg, table, feat_name = prepare_inputs(cfg, names, level)
    data_time = time.perf_counter() - t_start
    ds.write_rejections(run_dir / "rejected.csv")
    split = run_split(cfg, ds, run_dir)
    _check_split(split)
    spec = target_spec(cfg, ds, names, level, split)
    _, readout_options = split_options(cfg.model_options)
    extra: dict[str, Any] = {"skipped_split_ids": split.skipped} if split.skipped else {}
    torch.manual_seed(cfg.seed)
    module = CrystalTask(
        model_name=cfg.model,
        model_config=model_cfg.to_dict(),
        graph_config=model_cfg.graph_config().to_dict(),
        target=spec.to_dict(),
        readout=cfg.readout,
        readout_options=readout_options,
        optim=cfg.optim_dict(),
        atom_table=table,
        featurizer=feat_name,
        seed=cfg.seed,
        extra={"source": cfg.source, "n_train": len(split.train)},
    )
    if cfg.init_from:
        init_weights(module, cfg.init_from, new_head=cfg.new_head)
    if level == "site":
        arrays = ds.site_targets[names[0]]
        extra["sites"] = {p: site_label_counts(arrays, getattr(split, p)) for p in ("train", "val", "test")}
    return fit_and_test(cfg, run_dir, module, graphs, split, ds, t_start=t_start, data_time_s=data_time, extra=extra,
                        callbacks=callbacks)  # fmt: skip


def train_on_features(
    cfg: TrainConfig,
    dataset: CrystalDataset,
    items: list[Any],
    split: Split,
    model_config: Any,
    *,
    prepare: Any = None,
    identity: dict[str, Any] | None = None,
) -> RunResult:
    """The same run on precomputed feature vectors (SOAP -> MLP): ``items`` are one PyG ``Data``
    per entry with the features and ``y``; ``prepare(module, train_idx)`` may set data-dependent
    buffers (the feature scaler) before fitting. ``identity`` extends the folder's resume key.
    """
    names = list(cfg.targets)
    if not names:
        raise ValueError("no target given")
    check_loss(cfg.loss)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    setup = {"train_config": cfg.resume_key(), "model_config": model_config.to_dict(), **(identity or {})}
    setup_path = run_dir / "setup.json"
    if setup_path.is_file():
        if json.loads(setup_path.read_text()) != json.loads(json.dumps(setup)):
            raise RunConfigMismatch(f"{run_dir} holds a {cfg.model} run with another set-up; choose another folder")
        if (run_dir / "metrics.json").is_file():
            return RunResult(run_dir, json.loads((run_dir / "metrics.json").read_text()))
    setup_path.write_text(json.dumps(setup, indent=1))
    cfg.save(run_dir / "config.yaml")
    split.save(run_dir / "split.json", dataset.ids)
    _check_split(split)
    t_start = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    spec = target_spec(cfg, dataset, names, "graph", split)
    torch.manual_seed(cfg.seed)
    from crystalgnn.graphs.atom_features import AtomFeaturizer

    module = CrystalTask(
        model_name=cfg.model,
        model_config=model_config.to_dict(),
        graph_config=model_config.graph_config().to_dict(),
        target=spec.to_dict(),
        optim=cfg.optim_dict(),
        atom_table=torch.tensor(AtomFeaturizer.cgcnn().matrix()),
        featurizer="soap",
        seed=cfg.seed,
        extra={"source": str(cfg.source), "n_train": len(split.train)},
    )
    if prepare is not None:
        prepare(module, split.train)
    return fit_and_test(cfg, run_dir, module, items, split, dataset, t_start=t_start,
                        extra={"model_config": model_config.to_dict()})  # fmt: skip


__all__ = [
    "FitResult",
    "RunConfigMismatch",
    "RunResult",
    "fit_and_test",
    "init_weights",
    "open_run",
    "predict_inputs",
    "train",
    "train_on_features",
]  # fmt: skip
