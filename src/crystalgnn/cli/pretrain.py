"""``crystalgnn pretrain``: Crystal Twins self-supervised pretraining of an encoder
(:func:`crystalgnn.training.pretrain.pretrain`).
"""

from __future__ import annotations

import json
from typing import Any

import typer

from crystalgnn.cli.app import USAGE, app, console, err, fail, message, quiet_lightning

METHODS = ("barlow", "simsiam")
GRAPH_MODELS = ("cgcnn", "megnet", "schnet", "alignn")


def parse_model_options(items: list[str] | None) -> dict[str, Any]:
    """``["atom_fea_len=32", ...]`` -> ``{"atom_fea_len": 32}`` (values read as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for kv in items or []:
        key, sep, value = kv.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--model-option takes KEY=VALUE, got {kv!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


@app.command("pretrain")
def pretrain_command(
    sources: list[str] = typer.Argument(..., help="file(s), folder(s) or dataset short names (labels unused)"),
    method: str = typer.Option("barlow", help="barlow (Barlow Twins) | simsiam (SimSiam)"),
    model: str = typer.Option("cgcnn", help=" | ".join(GRAPH_MODELS)),
    model_option: list[str] | None = typer.Option(
        None, "--model-option", "-m", metavar="KEY=VALUE", help="encoder hyper-parameter (repeatable; as for train)"
    ),
    epochs: int = typer.Option(20, help="epochs"),
    batch_size: int = typer.Option(64, help="structures per batch (>= 2)"),
    lr: float = typer.Option(1e-3, help="Adam learning rate"),
    weight_decay: float = typer.Option(1e-6, help="Adam weight decay"),
    noise: float = typer.Option(0.05, help="largest atom displacement of a view (Å)"),
    atom_mask: float = typer.Option(0.10, help="fraction of atoms masked in a view"),
    edge_drop: float = typer.Option(0.10, help="probability that a bond is dropped in a view"),
    projector_dim: int = typer.Option(128, help="projector width"),
    lambd: float = typer.Option(5e-3, help="Barlow Twins' off-diagonal weight lambda"),
    subset: int | None = typer.Option(None, help="a seeded random subset of this many structures"),
    seed: int = typer.Option(0, help="seed of the subset, initialisation, batches and views"),
    out: str = typer.Option("runs/crystal-twins", "--out", "-o", help="output folder (model.ckpt for --init-from)"),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="worker processes for parsing and graphs"),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads"),
    cache_dir: str | None = typer.Option(None, help="graph cache folder (default ~/.cache/crystalgnn)"),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bars"),
) -> None:
    """Pretrain an encoder on unlabelled structures (Crystal Twins: Barlow Twins or SimSiam on two
    augmented views); fine-tune it with: crystalgnn train SOURCE --target T --init-from OUT.
    Re-running the same command resumes an interrupted run.
    """
    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)} (got {method!r})", code=USAGE)
    if model not in GRAPH_MODELS:
        fail(f"--model must be a graph model: {', '.join(GRAPH_MODELS)} (got {model!r})", code=USAGE)
    try:
        options = parse_model_options(model_option)
    except ValueError as exc:
        fail(message(exc), code=USAGE)
    quiet_lightning()
    from crystalgnn.data.dataset import DataError
    from crystalgnn.training.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(
        sources=list(sources), method=method, model=model, model_options=options, epochs=epochs,
        batch_size=batch_size, lr=lr, weight_decay=weight_decay, noise=noise, atom_mask=atom_mask,
        edge_drop=edge_drop, projector_dim=projector_dim, lambd=lambd, subset=subset, seed=seed, out=out,
        n_jobs=jobs, num_threads=threads, cache_dir=cache_dir, progress=not no_progress,
    )  # fmt: skip
    try:
        cfg.validate()
    except ValueError as exc:
        fail(message(exc), code=USAGE)
    try:
        result = pretrain(cfg)
    except (DataError, KeyError, ValueError, FileNotFoundError) as exc:
        fail(message(exc))
    except (KeyboardInterrupt, SystemExit) as exc:  # Lightning turns an interrupt into SystemExit(1)
        if not (isinstance(exc, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt)):
            raise
        err.print(f"[yellow]interrupted[/]: {out} keeps the last finished epoch; run the same command again to resume")
        raise typer.Exit(130) from None
    console.print(f"[bold green]done[/]: {result.checkpoint} (fine-tune with --init-from {result.out})")
    console.print(json.dumps(result.summary, indent=1))
