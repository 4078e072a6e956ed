"""Test error against training-set size (CGCNN paper, Fig. 2b), resumable like the benchmark.

::

    from crystalgnn.experiments import run_learning_curve

    res = run_learning_curve(
        "perovskites", "heat_all", ["cgcnn", "soap-svr"], [500, 1000, 2000, 4000, 6000], out="bench/lc", repeats=2
    )

Repeat ``k`` splits the entries with ``random_split(n, split, seed=k)``; its validation and test
parts are fixed for every size and model, and the training set of size ``s`` is the first ``s``
entries of a seeded permutation of the training part (so the sets are nested: the 1,000-entry
set contains the 500-entry one). One cell per model x size x repeat; cells recorded in
``learning_curve.csv`` are never recomputed and network cells resume from their run folders
(``runs/<model>-<target>-n<size>-r<k>``). Outputs: ``learning_curve.csv`` (one row per run),
``learning_curve_summary.csv`` (mean ± std per model x size) and ``learning_curve.png`` (test MAE
against training size on log-log axes, error bars: standard deviation over repeats).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.data.splits import Split, parse_ratios, random_split
from crystalgnn.experiments.learners import model_kind
from crystalgnn.experiments.network_learners import train_config_for
from crystalgnn.experiments.orchestration import pending_cells, run_cell, say_cell
from crystalgnn.experiments.preparation import prepare_data, source_default_targets
from crystalgnn.experiments.results import (
    RESULT_COLUMNS,
    ResultStore,
    check_settings,
    folder_settings,
)
from crystalgnn.experiments.summary import pyplot, summarize
from crystalgnn.progress import progress


@dataclass
class LearningCurveResult:
    out: Path
    results: Any  # pandas DataFrame, one row per run
    summary: Any  # mean and std per model x size
    figure: Path | None
    n_run: int = 0
    n_skipped: int = 0


def learning_curve_splits(
    n: int, sizes: Sequence[int], repeat: int, split: str | Sequence[float] = "0.8,0.1,0.1"
) -> dict[int, Split]:
    """Nested training sets of each size with the validation and test parts of repeat ``repeat``."""
    base = random_split(n, parse_ratios(split), seed=repeat)
    too_big = [s for s in sizes if s > len(base.train)]
    if too_big:
        raise ValueError(f"training sizes {too_big} exceed the {len(base.train)} training entries of the split")
    perm = np.random.default_rng(1_000_003 + repeat).permutation(base.train)
    return {int(s): Split(np.sort(perm[: int(s)]), base.val, base.test) for s in sizes}


def run_learning_curve(
    source: Any,
    target: str,
    models: Sequence[str],
    sizes: Sequence[int],
    *,
    out: str | Path,
    repeats: int = 2,
    split: str = "0.8,0.1,0.1",
    epochs: int = 30,
    subset: int | None = None,
    subset_seed: int = 0,
    train_options: dict[str, Any] | None = None,
    n_jobs: int | None = None,
    show_progress: bool = True,
    verbose: bool = True,
) -> LearningCurveResult:
    """Run (or finish) every model x size x repeat cell and write the curve.

    Arguments as :func:`~crystalgnn.experiments.orchestration.run_benchmark`; ``sizes`` are
    training-set sizes (each at most the training part of ``split``).
    """
    if not target:
        target = source_default_targets(source)[0]
    out = Path(out)
    models = list(dict.fromkeys(models))
    sizes = sorted({int(s) for s in sizes})
    if not models or not sizes or min(sizes) < 1:
        raise ValueError("give at least one model and positive training sizes")
    for m in models:
        model_kind(m)
    train_options = dict(train_options or {})
    train_config_for(train_options)
    settings = folder_settings(source, split, subset, subset_seed, epochs, train_options, kind="learning-curve")
    check_settings(out, settings)
    store = ResultStore(out / "learning_curve.csv", ("model", "target", "size", "repeat"), ("size", *RESULT_COLUMNS))
    cells = [(r, s, m) for r in range(repeats) for s in sizes for m in models]
    todo, n_skipped = pending_cells(
        store, cells, lambda c: {"model": c[2], "target": target, "size": c[1], "repeat": c[0]}, verbose
    )
    if todo:
        data = prepare_data(
            source, [target], out, models=models, subset=subset, subset_seed=subset_seed,
            train_options=train_options, n_jobs=n_jobs, show_progress=show_progress,
        )  # fmt: skip
        splits = {r: learning_curve_splits(len(data.dataset), sizes, r, split) for r in range(repeats)}
        bar = progress(
            total=len(cells), desc="learning curve", disable=not show_progress, initial=n_skipped, position=0
        )
        with bar:
            for k, (r, size, model) in enumerate(todo):
                bar.set_description(f"{model} n={size} r{r}")
                bar.set_postfix_str(f"{len(todo) - k} left")
                sp = splits[r][size]
                split_file = out / "splits" / f"n{size}-r{r}.json"
                split_file.parent.mkdir(parents=True, exist_ok=True)
                if not split_file.is_file():
                    sp.save(split_file, data.dataset.ids)
                t0 = time.perf_counter()
                row = run_cell(
                    model, data, target, sp, r, out / "runs" / f"{model}-{target}-n{size}-r{r}",
                    epochs=epochs, train_options=train_options, split_file=split_file, show_progress=show_progress,
                )  # fmt: skip
                row = {"size": size, **row}
                store.add(row)
                bar.update(1)
                say_cell(row, f"{model} n={size} r{r}", k + 1 + n_skipped, len(cells), t0, verbose)
    results = store.frame()
    if len(results):
        keep = results["model"].isin(models) & (results["target"] == target)
        keep &= results["size"].astype(int).isin(sizes) & (results["repeat"].astype(int) < repeats)
        results = results[keep]
    summary = summarize(results, by=("model", "target", "size")) if len(results) else results
    if len(summary):
        summary["_m"] = summary["model"].map({m: i for i, m in enumerate(models)})
        summary = summary.sort_values(["_m", "size"]).drop(columns="_m").reset_index(drop=True)
    summary.to_csv(out / "learning_curve_summary.csv", index=False)
    fig = learning_curve_figure(summary, out / "learning_curve.png", models, target)
    return LearningCurveResult(out, results, summary, fig, n_run=len(todo), n_skipped=n_skipped)


def learning_curve_figure(summary: Any, path: str | Path, models: Sequence[str], target: str = "") -> Path | None:
    """Test MAE (ROC-AUC for classification) against training size, log-log, ± std over repeats."""
    if len(summary) == 0:
        return None
    plt = pyplot()
    classification = summary["task"].iloc[0] == "classification"
    metric = "roc_auc" if classification else "mae"
    unit = summary["unit"].iloc[0] if isinstance(summary["unit"].iloc[0], str) else ""
    fig, ax = plt.subplots(figsize=(4.8, 3.9), dpi=130)
    for i, m in enumerate(models):
        part = summary[summary["model"] == m].sort_values("size")
        if len(part) == 0:
            continue
        x = part["size"].astype(float).to_numpy()
        y = part[f"{metric}_mean"].to_numpy(dtype=float)
        e = np.nan_to_num(part[f"{metric}_std"].to_numpy(dtype=float))
        ax.errorbar(x, y, yerr=e, marker="os^Dv<>p*h"[i % 10], ms=4, capsize=3, lw=1.2, label=m)
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    if not classification:
        ax.set_yscale("log")
    # label the measured sizes only (log axes' minor labels collide over a decade or two)
    sizes = sorted({int(s) for s in summary["size"]})
    ax.set_xticks(sizes)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel("training set size")
    ax.set_ylabel(
        ("test ROC-AUC" if classification else "test MAE") + (f" ({unit})" if unit and not classification else "")
    )
    ax.set_title(target, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["LearningCurveResult", "learning_curve_figure", "learning_curve_splits", "run_learning_curve"]
