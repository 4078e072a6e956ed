"""``crystalgnn explain model``: XGNN model-level explanations of a label classifier."""

from __future__ import annotations

from pathlib import Path

import typer

from crystalgnn.cli.app import console, fail, load_predictor, message
from crystalgnn.cli.explain import explain_app


@explain_app.command("model")
def explain_model_command(
    run: str = typer.Argument(..., help="run folder or checkpoint of a classifier trained on group/period labels"),
    labels: str | None = typer.Option(
        None, help="group | period (default: read from the model's atom features; must match them)"
    ),
    per_class: int = typer.Option(150, "--per-class", min=1, help="explanations to keep per class"),
    min_prob: float = typer.Option(0.8, "--min-prob", min=0.0, max=1.0, help="keep graphs above this probability"),
    classes: str = typer.Option("0,1", help="classes to explain (median-split classifiers: 0 = low, 1 = high)"),
    data: str | None = typer.Option(
        None,
        help="structures for bond lengths, first-atom labels and elements (default: the run's training "
        "source from its config.yaml; none: sums of atomic radii)",
    ),
    max_structures: int = typer.Option(1000, min=1, help="at most this many structures of --data"),
    iterations: int = typer.Option(150, min=1, help="policy-gradient updates per class"),
    max_samples: int = typer.Option(5000, min=1, help="stop sampling a class after this many graphs"),
    max_nodes: int = typer.Option(6, min=1, help="atoms per generated graph at most"),
    max_degree: int = typer.Option(4, min=1, help="neighbours per atom at most"),
    seed: int = typer.Option(0, help="seed of the generator"),
    threads: int = typer.Option(1, min=1, help="torch threads"),
    out: Path = typer.Option(Path("xgnn"), "--out", "-o", help="folder for explanations, counts and figures"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar"),
) -> None:
    """XGNN model-level explanations of a classifier trained on group or period labels.

    Train an XGNN graph generator per class and write the graphs the classifier puts in that
    class with probability above --min-prob (explanations_<class>.json), label and bond counts
    (label_counts.csv, edge_counts.csv, statistics.json) and figures (label_histogram.png,
    edge_heatmaps.png). The run must be a graph-level classifier whose atom features are one-hot
    periodic groups or periods (train it with --atom-init from
    crystalgnn.explain.xgnn_labels.write_label_atom_init).
    """
    if labels is not None and labels not in ("group", "period"):
        fail(f"--labels must be group or period, got {labels!r}", code=2)
    try:
        wanted = sorted({int(c) for c in classes.split(",") if c.strip()})
    except ValueError:
        fail(f"--classes must be comma-separated class numbers, got {classes!r}", code=2)
    if not wanted:
        fail("--classes is empty", code=2)
    import torch

    from crystalgnn.explain.xgnn import XGNNConfig, explain_model, prepare
    from crystalgnn.explain.xgnn_summary import CLASS_NAMES, explanation_statistics, write_summary
    from crystalgnn.progress import progress as bar

    torch.set_num_threads(threads)
    predictor = load_predictor(run)
    if data is None:
        data = _run_source(Path(run))
    elif data.lower() == "none":
        data = None
    try:
        setup = prepare(predictor, labels, data, max_structures)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        fail(message(exc))
    cfg = XGNNConfig(max_nodes=max_nodes, max_degree=max_degree, iterations=iterations, seed=seed)
    results = {}
    for cls in wanted:
        with bar(total=iterations, desc=f"class {cls}", disable=not progress) as pbar:

            def step(_it: int, p: float) -> None:
                pbar.update(1)
                pbar.set_postfix(p=f"{p:.2f}")

            try:
                results[cls] = explain_model(
                    setup, None, cls, per_class, min_prob, config=cfg, max_samples=max_samples, progress=step
                )
            except ValueError as exc:
                fail(message(exc))
    write_summary(results, out, title=f"XGNN explanations of {Path(run).name}")
    for cls, res in results.items():
        st = explanation_statistics(res)
        console.print(
            f"class {cls} ({CLASS_NAMES.get(cls, cls)}): {st['graphs']}/{per_class} graphs with p > {min_prob} "
            f"({st['distinct_graphs']} distinct) from {st['n_sampled']} sampled; "
            f"final training p = {res.history[-1]:.3f}"
        )
    console.print(f"wrote {out}")


def _run_source(run: Path) -> str | None:
    """The training source recorded in a run folder's ``config.yaml`` (``None`` if unknown/gone)."""
    import yaml

    cfg = run / "config.yaml"
    if not cfg.is_file():
        return None
    source = (yaml.safe_load(cfg.read_text()) or {}).get("source")
    if not isinstance(source, str) or not source:
        return None
    from crystalgnn.data.catalog import is_catalog_name

    return source if Path(source).exists() or is_catalog_name(source) else None
