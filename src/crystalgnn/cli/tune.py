"""``crystalgnn tune``: hyper-parameter search on Optuna (:func:`crystalgnn.experiments.tuning.tune`)."""

from __future__ import annotations

from pathlib import Path

import typer

from crystalgnn.cli.app import USAGE, app, console, err, fail, message, quiet_lightning
from crystalgnn.cli.pretrain import parse_model_options


@app.command("tune")
def tune_command(
    source: str = typer.Argument(..., help="file, folder or dataset short name"),
    target: list[str] | None = typer.Option(
        None, "--target", "-t", help="repeatable (default: the source's only label)"
    ),
    trials: int = typer.Option(20, help="finished trials the study should hold (re-running adds the missing ones)"),
    model: str = typer.Option("cgcnn", help="the model whose search space is sampled"),
    out: Path = typer.Option(Path("runs/tune"), "--out", "-o", help="study folder (study.db, trials/, best.yaml)"),
    jobs: int = typer.Option(1, "--jobs", "-j", help="trials run in parallel (worker processes)"),
    time_budget_per_trial: float | None = typer.Option(None, metavar="MINUTES", help="each trial's --time-budget"),
    epochs: int | None = typer.Option(None, help="epochs per trial (default: the model's recipe)"),
    search_space: Path | None = typer.Option(
        None, help="search-space YAML (default: crystalgnn/training/search_spaces/MODEL.yaml)"
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="training options fixed for every trial (YAML, as train --config)"
    ),
    model_option: list[str] | None = typer.Option(
        None, "--model-option", "-m", metavar="KEY=VALUE", help="model hyper-parameter fixed for every trial"
    ),
    subset: int | None = typer.Option(None, help="tune on a seeded random subset of this many structures"),
    seed: int = typer.Option(0, help="seed of the sampler and of every trial's split and initialisation"),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads"),
    cache_dir: str | None = typer.Option(None, help="graph cache folder (default ~/.cache/crystalgnn)"),
    no_pruning: bool = typer.Option(False, "--no-pruning", help="run every trial to the end (no median pruning)"),
    top: int = typer.Option(5, help="trials shown in the summary"),
) -> None:
    """Search the model's hyper-parameters with Optuna (TPE sampler, median pruning on the
    validation score per epoch). Every trial is a normal run folder in OUT/trials/NNN; the study
    (OUT/study.db) continues when the command is run again; OUT/trials.csv lists every trial and
    OUT/best.yaml is the best configuration: crystalgnn train --config OUT/best.yaml.
    """
    if trials < 1 or jobs < 1:
        fail("--trials and --jobs must be >= 1", code=USAGE)
    if time_budget_per_trial is not None and not time_budget_per_trial > 0:
        fail(f"--time-budget-per-trial must be > 0 minutes (got {time_budget_per_trial})", code=USAGE)
    try:
        options = {"model_options": parse_model_options(model_option), "seed": seed}
    except ValueError as exc:
        fail(message(exc), code=USAGE)
    for name, value in (("epochs", epochs), ("subset", subset), ("num_threads", threads), ("cache_dir", cache_dir)):
        if value is not None:
            options[name] = value
    import importlib.util

    if importlib.util.find_spec("optuna") is None:
        fail("crystalgnn tune needs Optuna: pip install 'crystalgnn[tune]' (or optuna>=4.1,<5)")
    quiet_lightning()
    from crystalgnn.data.dataset import DataError
    from crystalgnn.experiments.tuning import StudyBusy, TuneConfig, tune

    cfg = TuneConfig(
        source=source, targets=list(target or []), model=model, trials=trials, out=str(out), jobs=jobs,
        time_budget_per_trial=time_budget_per_trial, options=options,
        config_file=str(config) if config else None, search_space=str(search_space) if search_space else None,
        seed=seed, pruning=not no_pruning,
    )  # fmt: skip
    try:
        result = tune(cfg)
    except (DataError, KeyError, ValueError, FileNotFoundError, StudyBusy, RuntimeError) as exc:
        fail(message(exc))
    except (KeyboardInterrupt, SystemExit) as exc:  # Lightning turns an interrupt into SystemExit(1)
        if not (isinstance(exc, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt)):
            raise
        err.print(f"[yellow]interrupted[/]: run the same command again to continue the study in {out}")
        raise typer.Exit(130) from None
    _print_summary(result, top)


def _print_summary(result: object, top: int) -> None:
    from crystalgnn.cli.app import print_frame

    df = getattr(result, "table", None)
    if df is None or not len(df):
        console.print("no trials")
        return
    cols = [c for c in df.columns if c in ("number", "value", "state", "duration") or c.startswith("params_")]
    cols += [c for c in ("user_attrs_test_mae",) if c in df.columns]
    shown = df[cols].rename(
        columns=lambda c: c.removeprefix("params_").removeprefix("model_options.").removeprefix("user_attrs_")
    )
    print_frame(shown, top, title=f"top {min(top, len(df))} of {len(df)} trials (value: best validation score)")
    best = getattr(result, "best_config", None)
    if best is not None:
        console.print(f"[bold green]best[/]: trial {result.best_number} ({result.best_value:.6g}); {best}")  # type: ignore[attr-defined]
    console.print(f"every trial: {result.out / 'trials.csv'}")  # type: ignore[attr-defined]
