"""``crystalgnn benchmark`` and ``learning-curve`` (resumable model comparisons)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from crystalgnn.cli.app import USAGE, app, console, fail, message, print_frame, quiet_lightning


def _train_options(batch_size: int | None, lr: float | None, optimizer: str | None,
                   threads: int | None, accelerator: str | None) -> dict[str, Any]:  # fmt: skip
    opts = {
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer,
        "num_threads": threads,
        "accelerator": accelerator,
    }
    return {k: v for k, v in opts.items() if v is not None}


def _check_split(split: str) -> None:
    from crystalgnn.training.config import parse_split

    try:
        parse_split(split)
    except ValueError as exc:
        fail(message(exc), code=USAGE)


@app.command()
def benchmark(
    source: str = typer.Argument(..., help="file, folder or dataset short name"),
    targets: str = typer.Option(
        "", "--targets", "-t", help="comma-separated targets (default: the source's only label, e.g. a CGCNN folder's)"
    ),
    models: str = typer.Option("cgcnn,soap-svr,soap-mlp,per-element,mean", "--models", help="comma-separated models"),
    repeats: int | None = typer.Option(
        None, min=1, help="random splits (seeds 0..N-1; default 3) or Matbench folds (default 5)"
    ),
    repeats_for: list[str] | None = typer.Option(
        None,
        "--repeats-for",
        metavar="MODEL=N",
        help="another repeat count for one model (e.g. soap-svr=2), repeatable",
    ),
    split: str = typer.Option("0.8,0.1,0.1", help="train,val,test ratios"),
    out: Path = typer.Option(..., "--out", "-o", help="benchmark folder (re-run to resume)"),
    epochs: int = typer.Option(30, min=1, help="epochs of the networks (GNNs, SOAP -> MLP)"),
    protocol: str = typer.Option("random", help="random | matbench (5-fold CV with Matbench's folds)"),
    subset: int | None = typer.Option(None, min=1, help="use a random subset of this many entries"),
    subset_seed: int = typer.Option(0, help="seed of the subset"),
    batch_size: int | None = typer.Option(None, min=1),
    lr: float | None = typer.Option(None),
    optimizer: str | None = typer.Option(None, help="sgd | adam | adamw"),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="processes for parsing, graphs, SOAP"),
    threads: int | None = typer.Option(None, min=1, help="torch threads"),
    accelerator: str | None = typer.Option(None, help="cpu | gpu | auto"),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Every model x target x repeat: results.csv, summary.md/.csv and benchmark.png (resumable)."""
    _check_split(split)
    per_model = {}
    for item in repeats_for or []:
        name, sep, n = item.partition("=")
        if not sep or not n.strip().isdigit():
            fail(f"--repeats-for takes MODEL=N, got {item!r}", code=USAGE)
        per_model[name.strip()] = int(n)
    quiet_lightning()
    from crystalgnn.experiments import run_benchmark

    try:
        res = run_benchmark(
            source, [t for t in targets.split(",") if t], [m for m in models.split(",") if m], out=out,
            repeats=repeats, model_repeats=per_model, split=split, epochs=epochs, protocol=protocol, subset=subset, subset_seed=subset_seed,
            train_options=_train_options(batch_size, lr, optimizer, threads, accelerator),
            n_jobs=jobs, show_progress=not no_progress,
        )  # fmt: skip
    except (RuntimeError, KeyError, ValueError) as exc:
        fail(message(exc))
    console.print(res.summary_markdown)
    console.print(
        f"[bold green]done[/]: {res.n_run} cells run, {res.n_skipped} already finished; "
        + ", ".join(str(p) for p in res.files.values())
    )


@app.command("learning-curve")
def learning_curve(
    source: str = typer.Argument(..., help="file, folder or dataset short name"),
    target: str = typer.Option("", "--target", "-t", help="the target (default: the source's only label)"),
    models: str = typer.Option("cgcnn,soap-svr", "--models", help="comma-separated models"),
    sizes: str = typer.Option("500,1000,2000,4000,6000", help="comma-separated training-set sizes"),
    repeats: int = typer.Option(2, min=1, help="random splits (seeds 0..N-1); test set fixed per repeat"),
    split: str = typer.Option("0.8,0.1,0.1", help="train,val,test ratios (sizes come from the train part)"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (re-run to resume)"),
    epochs: int = typer.Option(30, min=1),
    subset: int | None = typer.Option(None, min=1),
    subset_seed: int = typer.Option(0),
    batch_size: int | None = typer.Option(None, min=1),
    lr: float | None = typer.Option(None),
    optimizer: str | None = typer.Option(None),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1),
    threads: int | None = typer.Option(None, min=1),
    accelerator: str | None = typer.Option(None),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Test MAE against training-set size on log-log axes (CGCNN paper Fig. 2b), resumable."""
    _check_split(split)
    try:
        size_list = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        fail(f"--sizes takes comma-separated integers (got {sizes!r})", code=USAGE)
    quiet_lightning()
    from crystalgnn.experiments import run_learning_curve

    try:
        res = run_learning_curve(
            source, target, [m for m in models.split(",") if m], size_list, out=out,
            repeats=repeats, split=split, epochs=epochs, subset=subset, subset_seed=subset_seed,
            train_options=_train_options(batch_size, lr, optimizer, threads, accelerator),
            n_jobs=jobs, show_progress=not no_progress,
        )  # fmt: skip
    except (RuntimeError, KeyError, ValueError) as exc:
        fail(message(exc))
    if len(res.summary):
        cols = (
            ["model", "size", "n_runs", "mae_mean", "mae_std"]
            if "mae_mean" in res.summary
            else list(res.summary.columns)[:6]
        )
        print_frame(res.summary[cols], 200, title=f"learning curve: {target}")
    console.print(
        f"[bold green]done[/]: {res.n_run} cells run, {res.n_skipped} already finished; {out / 'learning_curve.csv'}, {res.figure}"
    )
