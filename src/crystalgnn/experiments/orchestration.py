"""The thesis' model comparison as one resumable command: every model x target x repeat.

::

    from crystalgnn.experiments import run_benchmark

    res = run_benchmark(
        "perovskites",
        ["heat_all"],
        ["mean", "per-element", "soap-svr", "soap-mlp", "cgcnn"],
        out="bench/perov",
        repeats=3,
        epochs=30,
    )
    print(res.summary_markdown)

Output folder::

    settings.json      what defines the benchmark (source, protocol, split, subset, epochs, options)
    results.csv        one row per finished cell (model, target, repeat, metrics, time, size)
    summary.csv/.md    mean ± std per model x target
    benchmark.png      grouped bars with error bars: MAE, RMSE, R², training time (Fig. 14 style)
    splits/r<k>.json   the train/val/test ids of repeat (or fold) k
    runs/<model>-<target>-r<k>/   one run folder per cell (GNN runs are ``train`` run folders)
    subset.jsonl.gz    the structures used, when ``subset`` is given (what the GNN runs read)
    rejected.csv       entries left out (missing labels, no graph for a GNN), with the reason

Protocols. ``random``: repeat ``k`` uses ``random_split(n, split, seed=k)`` for every model and
target; the baselines train on the training part only, like the networks. ``matbench``: 5-fold
cross-validation with Matbench's folds (``KFold(5, shuffle=True, random_state=18012019)`` over
the dataset order, :func:`~crystalgnn.data.splits.kfold_splits`); repeat ``k`` is fold ``k``.
The networks carve their validation set (``val / (train + val)`` of ``split``) out of the
training folds; the baselines, which need none, train on the whole training folds.

Every model sees the same entries: those with all requested labels (and, when a graph network is
in the list, a graph), so every row of a repeat has the same test set.

Every model is a :class:`~crystalgnn.experiments.learners.Learner` (:func:`make_learner`); a cell
fits it on the split of its repeat and scores the test part (the networks' runs score it
themselves). The table is a :class:`~crystalgnn.experiments.results.ResultStore`, the reports
come from :mod:`crystalgnn.experiments.summary`.

Resuming: a cell recorded in ``results.csv`` is never recomputed; a network cell interrupted
half-way resumes from its run folder's ``last.ckpt``. Re-running with other models, targets or
more repeats adds cells; changing anything in ``settings.json`` is refused (use another folder).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.baselines.runner import labelled_indices
from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.splits import Split
from crystalgnn.experiments.factory import make_learner
from crystalgnn.experiments.learners import FitReport, Learner, model_kind
from crystalgnn.experiments.network_learners import train_config_for
from crystalgnn.experiments.preparation import BenchmarkData, make_splits, prepare_data, source_default_targets
from crystalgnn.experiments.results import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    RESULT_COLUMNS,
    BenchmarkMismatch,
    ResultStore,
    check_settings,
    folder_settings,
)
from crystalgnn.experiments.summary import BenchmarkResult, write_reports
from crystalgnn.metrics import classification_metrics, regression_metrics, unit_columns
from crystalgnn.progress import progress
from crystalgnn.training.targets import infer_task


# --------------------------------------------------------------------------- one cell
def metric_row(task: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The result columns of ``task`` for predictions ``pred`` of labels ``y``."""
    if task == "classification":
        m = classification_metrics(y, np.clip(pred, 0.0, 1.0))
        return {k: m[k] for k in CLASSIFICATION_METRICS}
    m = regression_metrics(y, pred)
    return {k: m[k] for k in REGRESSION_METRICS}


def run_test_metrics(task: str, metrics: dict[str, Any]) -> dict[str, float]:
    """The result columns of ``task`` from a training run's ``metrics.json`` (its ``test`` part)."""
    test = metrics.get("test", {})
    keys = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    return {k: float(test.get(k, math.nan)) for k in keys}


def run_cell(
    model: str,
    data: BenchmarkData,
    target: str,
    split: Split,
    repeat: int,
    run_dir: str | Path,
    *,
    epochs: int,
    train_options: dict[str, Any] | None = None,
    split_file: str | Path | None = None,
    baseline_train_parts: Sequence[str] = ("train",),
    show_progress: bool = True,
) -> dict[str, Any]:
    """Fit and test one model on one target and split; returns the ``results.csv`` row."""
    ds = data.dataset
    task = infer_task(ds, [target], str((train_options or {}).get("task", "auto")))
    run_dir = Path(run_dir)
    row: dict[str, Any] = {"model": model, "target": target, "repeat": repeat, "task": task}
    row["unit"] = ds.units.get(target, "")
    row |= {"n_train": len(split.train), "n_val": len(split.val), "n_test": len(split.test)}
    learner = make_learner(
        model, epochs=epochs, train_options=train_options, source=data.gnn_source, features=data.soap_features,
        train_parts=baseline_train_parts, n_jobs=data.n_jobs, show_progress=show_progress,
    )  # fmt: skip
    report = learner.fit(ds, split, target=target, out_dir=run_dir, seed=int(repeat), split_file=split_file)
    if report.run_metrics is not None:  # a network: its run scored the test part
        m = report.run_metrics
        row["n_train"], row["n_val"], row["n_test"] = m["n_train"], m["n_val"], m["n_test"]
        row |= run_test_metrics(task, m)
    else:
        row["n_train"], row["n_val"] = report.n_train, report.n_val
        row |= score_test_part(learner, report, ds, target, split, task, run_dir)
    row |= {"train_time_s": report.train_time_s, "feature_time_s": report.feature_time_s}
    row |= {"n_parameters": report.n_parameters, "model_bytes": report.model_bytes}
    row["run_dir"] = str(run_dir)
    row["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return row


def score_test_part(
    learner: Learner, report: FitReport, ds: CrystalDataset, target: str, split: Split, task: str, run_dir: Path
) -> dict[str, float]:
    """Predict the labelled test entries; write ``predictions.csv`` and ``metrics.json``; the metrics."""
    import pandas as pd

    y_all = np.asarray(ds.targets[target], dtype=float)
    test = labelled_indices(y_all, split, ("test",))
    t0 = time.perf_counter()
    pred = np.asarray(learner.predict(ds, test), dtype=float) if len(test) else np.zeros(0)
    predict_time = time.perf_counter() - t0
    y_test = y_all[test]
    run_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"id": [ds.ids[i] for i in test], "target": y_test, "prediction": pred})
    unit_columns(frame, [target], ds.units).to_csv(run_dir / "predictions.csv", index=False)
    facts = {
        "name": learner.name, "target": target, "unit": ds.units.get(target, ""),
        "mae": float(np.mean(np.abs(pred - y_test))) if len(test) else float("nan"),
        "train_time_s": report.train_time_s, "predict_time_s": predict_time, "feature_time_s": report.feature_time_s,
        "n_parameters": report.n_parameters, "model_bytes": report.model_bytes,
        "n_train": report.n_train, "n_test": len(test), "info": report.info,
    }  # fmt: skip
    (run_dir / "metrics.json").write_text(json.dumps(facts, indent=2, default=str))
    return metric_row(task, y_test, pred)


# --------------------------------------------------------------------------- progress
def say(msg: str, enabled: bool) -> None:
    if enabled:
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stderr)


def pending_cells(store: ResultStore, cells: list[Any], key: Any, verbose: bool) -> tuple[list[Any], int]:
    """The cells not yet in ``store`` (``key(cell)``: the cell's key fields), and how many are."""
    todo = [c for c in cells if not store.done(**key(c))]
    n_skipped = len(cells) - len(todo)
    if n_skipped:
        say(f"{n_skipped} of {len(cells)} cells already in {store.path}; {len(todo)} to run", verbose)
    return todo, n_skipped


def say_cell(row: dict[str, Any], label: str, number: int, total: int, t0: float, verbose: bool) -> None:
    """``[number/total] label: score (seconds since t0)`` for a finished cell."""
    score = f"MAE {row['mae']:.4g}" if row["task"] == "regression" else f"ROC-AUC {row['roc_auc']:.4g}"
    say(f"[{number}/{total}] {label}: {score} ({time.perf_counter() - t0:.1f} s)", verbose)


# --------------------------------------------------------------------------- the benchmark
def run_benchmark(
    source: Any,
    targets: Sequence[str],
    models: Sequence[str],
    *,
    out: str | Path,
    repeats: int | None = None,
    model_repeats: dict[str, int] | None = None,
    split: str = "0.8,0.1,0.1",
    epochs: int = 30,
    protocol: str = "random",
    subset: int | None = None,
    subset_seed: int = 0,
    train_options: dict[str, Any] | None = None,
    n_jobs: int | None = None,
    show_progress: bool = True,
    verbose: bool = True,
) -> BenchmarkResult:
    """Run (or finish) every ``model x target x repeat`` cell and write the reports.

    Args:
        source: a file, folder or dataset short name (or a ``CrystalDataset``).
        targets: graph-level targets (derived names such as ``log10_bulk_modulus_vrh`` work).
        models: any of :func:`available_models` (``mean``, ``per-element``, ``soap-svr``,
            ``soap-mlp``, ``soap-mlp-raw``, ``cgcnn``, ``megnet``, ...).
        out: the benchmark folder.
        repeats: random splits (seeds 0..repeats-1) or Matbench folds (default 3 / 5).
        model_repeats: other repeat counts for some models, e.g. ``{"soap-svr": 2}`` (the thesis
            ran its GNNs 10 times and its SOAP models twice); they use the first splits.
        split: train,val,test ratios (``random``); for ``matbench`` only val/(train+val) is used.
        epochs: training epochs of the networks (GNNs and SOAP -> MLP).
        protocol: ``"random"`` or ``"matbench"``.
        subset: use this many entries drawn at random (seed ``subset_seed``) from those with
            every target.
        train_options: other :class:`~crystalgnn.training.config.TrainConfig` fields for the
            networks (``batch_size``, ``lr``, ``optimizer``, ``num_threads``, ``accelerator``...).
        n_jobs: processes for parsing, graphs and SOAP.
        show_progress: progress bars (the cell bar and the runs' own bars).
        verbose: one line per finished cell on stderr.
    """
    import pandas as pd

    out = Path(out)
    targets, models = list(dict.fromkeys(targets)), list(dict.fromkeys(models))
    if not models:
        raise ValueError("give at least one model")
    if not targets:
        targets = source_default_targets(source)
    for m in models:
        model_kind(m)
    repeats = repeats if repeats is not None else (5 if protocol == "matbench" else 3)
    model_repeats = {m: int(n) for m, n in (model_repeats or {}).items()}
    unknown = sorted(set(model_repeats) - set(models))
    if unknown:
        raise ValueError(f"repeats given for model(s) not in the benchmark: {', '.join(unknown)}")
    if repeats < 1 or any(n < 1 for n in model_repeats.values()):
        raise ValueError("repeats must be >= 1")
    if protocol == "matbench" and model_repeats:
        raise ValueError("the Matbench protocol runs all 5 folds for every model")
    n_of = {m: model_repeats.get(m, repeats) for m in models}
    train_options = dict(train_options or {})
    train_config_for(train_options)
    settings = folder_settings(source, split, subset, subset_seed, epochs, train_options, protocol=protocol)
    check_settings(out, settings)
    store = ResultStore(out / "results.csv", ("model", "target", "repeat"), RESULT_COLUMNS)
    n_splits = max(n_of.values())
    cells = [(t, r, m) for t in targets for r in range(n_splits) for m in models if r < n_of[m]]
    todo, n_skipped = pending_cells(store, cells, lambda c: {"model": c[2], "target": c[0], "repeat": c[1]}, verbose)
    if todo:
        data = prepare_data(
            source, targets, out, models=models, subset=subset, subset_seed=subset_seed,
            train_options=train_options, n_jobs=n_jobs, show_progress=show_progress,
        )  # fmt: skip
        splits = make_splits(len(data.dataset), protocol, n_splits, split)
        split_files = []
        for r, sp in enumerate(splits):
            p = out / "splits" / f"r{r}.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.is_file():
                saved = Split.load(p, data.dataset.ids)
                same = all(np.array_equal(getattr(saved, k), getattr(sp, k)) for k in ("train", "val", "test"))
                if not same:
                    raise BenchmarkMismatch(f"{p} differs from the split this run computes; the data changed")
            else:
                sp.save(p, data.dataset.ids)
            split_files.append(p)
        train_parts = ("train", "val") if protocol == "matbench" else ("train",)
        bar = progress(total=len(cells), desc="benchmark", disable=not show_progress, initial=n_skipped, position=0)
        with bar:
            for k, (target, r, model) in enumerate(todo):
                bar.set_description(f"{model} {target} r{r}")
                bar.set_postfix_str(f"{len(todo) - k} left")
                t0 = time.perf_counter()
                row = run_cell(
                    model, data, target, splits[r], r, out / "runs" / f"{model}-{target}-r{r}",
                    epochs=epochs, train_options=train_options, split_file=split_files[r],
                    baseline_train_parts=train_parts, show_progress=show_progress,
                )  # fmt: skip
                store.add(row)
                bar.update(1)
                say_cell(row, f"{model} {target} r{r}", k + 1 + n_skipped, len(cells), t0, verbose)
    results = store.frame()
    results = results[results["model"].isin(models) & results["target"].isin(targets)] if len(results) else results
    if len(results):
        results = results[pd.to_numeric(results["repeat"]) < results["model"].map(n_of)]
    return write_reports(out, results, models, targets, n_run=len(todo), n_skipped=n_skipped)


__all__ = [
    "metric_row",
    "pending_cells",
    "run_benchmark",
    "run_cell",
    "run_test_metrics",
    "say",
    "say_cell",
    "score_test_part",
]
