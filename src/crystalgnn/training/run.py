"""A complete, resumable training run: data -> graphs -> split -> Lightning fit -> test report.

Run folder::

    config.yaml        the resolved configuration (the run's identity)
    split.json         train/val/test ids
    rejected.csv       entries that were not used, and why
    checkpoints/       best.ckpt (best validation), last.ckpt (resume point)
    log/metrics.csv    per-epoch losses and validation metrics (Lightning CSV logger)
    metrics.json       test metrics, training time, time per epoch, parameters, checkpoint bytes
    predictions.csv    id, target, prediction on the test set
    parity.png / roc.png / training.png

Restarting the same command after an interruption (even ``kill -9``) resumes from
``last.ckpt``; data order and dropout are seeded per epoch, so the final metrics equal those of
an uninterrupted run.

The pieces every run kind shares (graph-level here, per-site in
:mod:`crystalgnn.training.site_run`, SOAP -> MLP in :mod:`crystalgnn.baselines.soap_mlp`) are
functions of this module: :func:`fit` (callbacks, trainer, resume, log merge, timing),
:meth:`FitResult.summary` (the training entries of ``metrics.json``) and :func:`finish_run`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.readers import iter_source_chunks, load_source
from crystalgnn.data.splits import Split, random_split
from crystalgnn.evaluation.metrics import classification_metrics, regression_metrics
from crystalgnn.evaluation.predict import Predictor, load_checkpoint_file, task_from_checkpoint
from crystalgnn.graphs.atom_features import AtomFeaturizer
from crystalgnn.graphs.builder import build_chunked_graphs, build_dataset_graphs
from crystalgnn.graphs.cache import CachedGraphs, GraphCache
from crystalgnn.models.registry import make_config
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.data import attach_targets, fit_normalizer, make_loader, select_graphs
from crystalgnn.training.losses import check_loss
from crystalgnn.training.task import CrystalTask


class RunConfigMismatch(RuntimeError):
    """The run folder holds a run with a different configuration."""


class EpochTimer(Callback):
    """Wall-clock training time, carried through checkpoints so resumed runs report the total."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.epoch_times: list[float] = []
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dt = time.perf_counter() - self._t0
        self.elapsed += dt
        self.epoch_times.append(dt)

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed, "epoch_times": list(self.epoch_times)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.elapsed = float(state.get("elapsed", 0.0))
        self.epoch_times = list(state.get("epoch_times", []))


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]


@dataclass
class FitResult:
    """What :func:`fit` leaves: the finished trainer, its epoch timer and the best checkpoint."""

    trainer: L.Trainer
    timer: EpochTimer
    best_path: Path

    def summary(
        self, module: Any, t_start: float, seed: int, data_time_s: float | None = None
    ) -> dict[str, Any]:
        """The training entries of ``metrics.json``, in the file's order.

        ``epochs_run``, ``train_time_s`` (all processes of a resumed run), ``time_per_epoch_s``
        (mean), ``data_time_s`` (when given), ``wall_time_this_process_s`` (since ``t_start``),
        ``n_parameters``, ``checkpoint_bytes`` (of ``best.ckpt``) and ``seed``.
        """
        times = self.timer.epoch_times
        out: dict[str, Any] = {
            "epochs_run": int(self.trainer.current_epoch),
            "train_time_s": round(self.timer.elapsed, 3),
            "time_per_epoch_s": round(float(np.mean(times)) if times else float("nan"), 4),
        }
        if data_time_s is not None:
            out["data_time_s"] = round(data_time_s, 3)
        out["wall_time_this_process_s"] = round(time.perf_counter() - t_start, 3)
        out["n_parameters"] = module.n_parameters()
        out["checkpoint_bytes"] = self.best_path.stat().st_size if self.best_path.is_file() else None
        out["seed"] = seed
        return out


def fit(
    module: L.LightningModule,
    train_loader: Any,
    val_loader: Any,
    run_dir: Path,
    cfg: TrainConfig,
    monitor: str = "val_mae",
    mode: str = "min",
) -> FitResult:
    """Lightning fit into ``run_dir``, resuming from ``checkpoints/last.ckpt`` when it exists.

    Callbacks: ``ModelCheckpoint`` (``best.ckpt`` by ``monitor``/``mode``, and ``last.ckpt``),
    :class:`EpochTimer`, and ``EarlyStopping`` when ``cfg.early_stopping_patience`` is set;
    the per-epoch log goes to ``log/metrics.csv`` (rows of an interrupted process are kept in
    front of the resumed ones). Trainer settings from ``cfg``: ``epochs``, ``accelerator``,
    ``devices``, ``num_nodes``, ``strategy``, ``progress``, ``max_time_minutes``.
    """
    ckpt_dir = run_dir / "checkpoints"
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode=mode, save_last=True)
    timer = EpochTimer()
    callbacks: list[Callback] = [checkpoint, timer]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=cfg.early_stopping_patience))
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
    # Lightning's CSV logger deletes an existing metrics.csv: keep the epochs logged before an
    # interruption and put them back in front of the resumed run's rows.
    old_log = log_csv.read_bytes() if last.is_file() and log_csv.is_file() else None
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if last.is_file() else None)
    if old_log is not None:
        _merge_resumed_log(old_log, log_csv)
    return FitResult(trainer, timer, ckpt_dir / "best.ckpt")


def finish_run(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Write ``metrics.json`` (marks the run finished) and the training-curve plot."""
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    try:
        from crystalgnn.evaluation.plots import training_curve_plot

        training_curve_plot(run_dir / "log" / "metrics.csv", run_dir / "training.png")
    except Exception:  # a plot must never fail a finished run
        pass


def infer_task(ds: CrystalDataset, targets: list[str], requested: str) -> str:
    if requested in ("regression", "classification"):
        return requested
    if len(targets) == 1:
        y = ds.targets[targets[0]]
        y = y[np.isfinite(y)]
        if ds.units.get(targets[0]) == "class" or (len(y) and set(np.unique(y)) <= {0.0, 1.0}):
            return "classification"
    return "regression"


def _atom_table(cfg: TrainConfig, ds: CrystalDataset) -> tuple[torch.Tensor, str]:
    path = cfg.atom_init or ds.atom_init
    feat = AtomFeaturizer.from_json(path) if path else AtomFeaturizer.cgcnn()
    return torch.tensor(feat.matrix()), (str(path) if path else "cgcnn")


def load_run_dataset(cfg: TrainConfig, targets: list[str], check: Any = None) -> CrystalDataset:
    """``cfg.source`` with ``targets``; ``check(ds)`` may reject it; then non-empty, then ``cfg.subset``."""
    ds = load_source(
        cfg.source,
        targets=targets,
        structure_column=cfg.structure_column,
        end_member=cfg.end_member,
        n_jobs=cfg.n_jobs,
        show_progress=cfg.progress,
    )
    if check is not None:
        check(ds)
    if len(ds) == 0:
        raise ValueError(f"{cfg.source}: no usable entries ({len(ds.rejections)} rejected)")
    if cfg.subset is not None and cfg.subset < len(ds):
        ds = select_subset(ds, int(cfg.subset), int(cfg.subset_seed))
    return ds


def _graph_options(cfg: TrainConfig, table: torch.Tensor) -> dict[str, Any]:
    """The graph builder's options of a run: cache, elements with atom features, jobs, progress."""
    cache = GraphCache(Path(cfg.cache_dir) / "graphs.lmdb" if cfg.cache_dir else None) if cfg.use_cache else None
    if cfg.graphs_on_disk and cache is None:
        raise ValueError("--graphs-on-disk reads graphs from the cache: do not disable it")
    supported = [int(z) for z in torch.nonzero(~torch.isnan(table).any(dim=1)).flatten()]
    return {"cache": cache, "supported_elements": supported, "n_jobs": cfg.n_jobs, "show_progress": cfg.progress}


def build_run_graphs(cfg: TrainConfig, ds: CrystalDataset, gcfg: Any, table: torch.Tensor) -> tuple[list[Any], Any]:
    """Graphs of ``ds`` (elements without atom features rejected; ``cfg``'s cache and jobs)."""
    return build_dataset_graphs(ds, gcfg, on_disk=cfg.graphs_on_disk, **_graph_options(cfg, table))


def stream_run_graphs(cfg: TrainConfig, gcfg: Any) -> tuple[CrystalDataset, CachedGraphs, Any, torch.Tensor, str] | None:
    """``--graphs-on-disk`` on a table source: rows read, graphs built into the cache and
    structures dropped one chunk at a time (only one chunk of structures is ever in memory);
    ``None`` for other sources, and with ``--subset`` (which draws from the parsed entries
    before graph building, as in memory). Returns the structure-free dataset, its graphs on
    disk, the build report and the atom table with its name."""
    if cfg.subset is not None:
        return None
    chunks = iter_source_chunks(
        cfg.source,
        targets=cfg.targets,
        structure_column=cfg.structure_column,
        end_member=cfg.end_member,
        n_jobs=cfg.n_jobs,
        show_progress=cfg.progress,
    )
    if chunks is None:
        return None
    table, feat_name = _atom_table(cfg, CrystalDataset())  # table files carry no atom_init.json
    ds, graphs, report = build_chunked_graphs(chunks, gcfg, **_graph_options(cfg, table))
    if len(ds) == 0:
        raise ValueError(f"{cfg.source}: no usable entries ({len(ds.rejections)} rejected)")
    return ds, graphs, report, table, feat_name


def run_split(cfg: TrainConfig, ds: CrystalDataset, run_dir: Path | None) -> Split:
    """The run folder's ``split.json``, else ``cfg.split_file``, else a seeded random split (saved)."""
    split_path = run_dir / "split.json" if run_dir else None
    if split_path is not None and split_path.is_file():
        split = Split.load(split_path, ds.ids)
    elif cfg.split_file:
        split = Split.load(cfg.split_file, ds.ids)
    else:
        split = random_split(len(ds), [float(x) for x in cfg.split.split(",")], seed=cfg.seed)
    if split_path is not None and not split_path.is_file():
        split.save(split_path, ds.ids)
    return split


def run_loaders(graphs: list[Any], split: Split, cfg: TrainConfig) -> tuple[Any, Any]:
    """Seeded shuffled training loader and validation loader (no validation part: a tenth of train)."""
    train_loader = make_loader(select_graphs(graphs, split.train), cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_idx = split.val if len(split.val) else split.train[: max(1, len(split.train) // 10)]
    val_graphs = select_graphs(graphs, val_idx)
    return train_loader, make_loader(val_graphs, cfg.batch_size)


def prepare_data(cfg: TrainConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Load, featurise and split; returns graphs, split, dataset and the graph config."""
    t0 = time.perf_counter()
    model_cfg = make_config(cfg.model, cfg.model_options)
    gcfg = model_cfg.graph_config()
    streamed = stream_run_graphs(cfg, gcfg) if cfg.graphs_on_disk else None
    if streamed is not None:
        ds, graphs, report, table, feat_name = streamed
    else:
        ds = load_run_dataset(cfg, cfg.targets)
        table, feat_name = _atom_table(cfg, ds)
        graphs, report = build_run_graphs(cfg, ds, gcfg, table)
    t_data = time.perf_counter() - t0
    y = np.stack([ds.targets[t] for t in cfg.targets], axis=1)
    graphs = attach_targets(graphs, y)
    split = run_split(cfg, ds, run_dir)
    return {
        "dataset": ds,
        "graphs": graphs,
        "split": split,
        "graph_config": gcfg,
        "model_config": model_cfg,
        "atom_table": table,
        "featurizer": feat_name,
        "graph_report": report,
        "data_time_s": t_data,
    }


def select_subset(ds: CrystalDataset, size: int, seed: int) -> CrystalDataset:
    """A seeded random subset of ``size`` entries (sorted positions; rejections are kept)."""
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), size=size, replace=False))
    sub = ds.subset(idx)
    sub.name = f"{ds.name}[subset {size}, seed {seed}]"
    return sub


def _check_run_dir(run_dir: Path, cfg: TrainConfig) -> bool:
    """True when the folder holds the same run (resume); raise when it holds another one."""
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return False
    old = TrainConfig.from_yaml(saved)
    if old.resume_key() != cfg.resume_key():
        started = (run_dir / "checkpoints" / "last.ckpt").is_file() or (run_dir / "metrics.json").is_file()
        if not started:  # an earlier attempt stopped before its first epoch (e.g. a bad target)
            for stale in ("config.yaml", "split.json", "rejected.csv"):
                (run_dir / stale).unlink(missing_ok=True)
            return False
        diff = sorted(k for k, v in cfg.resume_key().items() if old.resume_key().get(k) != v)
        raise RunConfigMismatch(
            f"{run_dir} holds a run with a different configuration (differs in: {', '.join(diff)}); "
            "choose another --out or delete the folder"
        )
    return True


def open_run(cfg: TrainConfig) -> tuple[Path, RunResult | None]:
    """Threads, the run folder and its configuration check.

    Returns the folder and, when it already holds this run finished, its result (else ``None``,
    after saving ``config.yaml``). Raises :class:`RunConfigMismatch` for a folder of another run.
    """
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    resuming = _check_run_dir(run_dir, cfg)
    if resuming and (run_dir / "metrics.json").is_file():
        return run_dir, RunResult(run_dir, json.loads((run_dir / "metrics.json").read_text()))
    cfg.save(run_dir / "config.yaml")
    return run_dir, None


def train(cfg: TrainConfig) -> RunResult:
    """Train (or resume, or report an already finished run) and evaluate on the test split."""
    if cfg.site_target:  # per-site learning: crystalgnn.training.site_run
        from crystalgnn.training.site_run import train_sites

        return train_sites(cfg)
    if not cfg.targets:
        raise ValueError("no target given (--target NAME)")
    check_loss(cfg.loss)
    run_dir, finished = open_run(cfg)
    if finished is not None:
        return finished
    t_start = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    data = prepare_data(cfg, run_dir)
    ds: CrystalDataset = data["dataset"]
    ds.write_rejections(run_dir / "rejected.csv")
    split: Split = data["split"]
    graphs = data["graphs"]
    task_kind = infer_task(ds, cfg.targets, cfg.task)
    if task_kind == "classification" and len(cfg.targets) != 1:
        raise ValueError("classification takes exactly one target")
    y_train = np.stack([ds.targets[t] for t in cfg.targets], axis=1)[split.train]
    normalizer = fit_normalizer(y_train) if task_kind == "regression" else None
    torch.manual_seed(cfg.seed)
    module = CrystalTask(
        model_name=cfg.model,
        model_config=data["model_config"].to_dict(),
        graph_config=data["graph_config"].to_dict(),
        targets=list(cfg.targets),
        task=task_kind,
        units={t: ds.units.get(t, "") for t in cfg.targets},
        normalizer=normalizer,
        optim=cfg.optim_dict(),
        atom_table=data["atom_table"],
        featurizer=data["featurizer"],
        seed=cfg.seed,
        extra={"source": cfg.source, "n_train": int(len(split.train))},
    )
    train_loader, val_loader = run_loaders(graphs, split, cfg)
    monitor, mode = ("val_mae", "min") if task_kind == "regression" else ("val_auc", "max")
    result = fit(module, train_loader, val_loader, run_dir, cfg, monitor, mode)
    metrics = evaluate_run(run_dir, ds, graphs, split, cfg, show_progress=cfg.progress)
    metrics.update(
        {
            "model": cfg.model,
            "targets": list(cfg.targets),
            "task": task_kind,
            "units": {t: ds.units.get(t, "") for t in cfg.targets},
            "n_train": int(len(split.train)),
            "n_val": int(len(split.val)),
            "n_test": int(len(split.test)),
            "n_rejected": len(ds.rejections),
            **result.summary(module, t_start, cfg.seed, data_time_s=data["data_time_s"]),
        }
    )
    finish_run(run_dir, metrics)
    return RunResult(run_dir, metrics)


def _merge_resumed_log(old_log: bytes, log_csv: Path) -> None:
    """Rows of the interrupted process for epochs before the resumed ones, then the new rows."""
    import io

    import pandas as pd

    try:
        old = pd.read_csv(io.BytesIO(old_log))
    except (ValueError, pd.errors.EmptyDataError):
        return
    new = pd.read_csv(log_csv) if log_csv.is_file() else pd.DataFrame()
    if "epoch" in old and "epoch" in new and len(new):
        old = old[old["epoch"] < new["epoch"].min()]
    merged = pd.concat([old, new], ignore_index=True)
    log_csv.parent.mkdir(parents=True, exist_ok=True)
    merged.to_csv(log_csv, index=False)


def evaluate_run(
    run_dir: Path, ds: CrystalDataset, graphs: list[Any], split: Split, cfg: TrainConfig, show_progress: bool = True
) -> dict[str, Any]:
    """Test-set metrics, predictions.csv and plots from the best checkpoint."""
    best = run_dir / "checkpoints" / "best.ckpt"
    predictor = Predictor(task_from_checkpoint(load_checkpoint_file(best)), source=str(best))
    idx = split.test if len(split.test) else split.val
    values = predictor.predict_graphs(select_graphs(graphs, idx))
    return write_report(run_dir, ds, idx, values, predictor, prefix="test")


def write_report(
    out_dir: Path, ds: CrystalDataset, idx: np.ndarray, values: np.ndarray, predictor: Predictor, prefix: str = "test"
) -> dict[str, Any]:
    """Metrics + predictions.csv + parity/ROC plot for entries ``idx`` of ``ds``."""
    import pandas as pd

    from crystalgnn.evaluation.plots import parity_plot, roc_plot

    out_dir.mkdir(parents=True, exist_ok=True)
    ids = [ds.ids[i] for i in idx]
    metrics: dict[str, Any] = {}
    df = pd.DataFrame({"id": ids})
    if predictor.kind == "classification":
        t = predictor.targets[0]
        y = ds.targets[t][idx]
        df["target"], df["prediction"] = y, values
        metrics[prefix] = classification_metrics(y, values)
        roc_plot(y, values, out_dir / "roc.png", label=t)
    else:
        per = {}
        for k, t in enumerate(predictor.targets):
            y = ds.targets[t][idx]
            sfx = "" if len(predictor.targets) == 1 else f"_{t}"
            df["target" + sfx], df["prediction" + sfx] = y, values[:, k]
            per[t] = regression_metrics(y, values[:, k])
            parity_plot(y, values[:, k], out_dir / f"parity{sfx}.png", label=t, unit=predictor.units.get(t, ""))
        metrics[prefix] = per[predictor.targets[0]] if len(per) == 1 else per
    df.to_csv(out_dir / "predictions.csv", index=False)
    return metrics
