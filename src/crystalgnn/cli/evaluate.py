"""``crystalgnn evaluate``: metrics, predictions and plots of a trained model on labelled data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from crystalgnn.cli.app import app, console, err, fail, load, load_predictor, write_rejected


@app.command()
def evaluate(
    model: str = typer.Argument(..., help="run folder, checkpoint file or shipped model name"),
    sources: list[str] = typer.Argument(..., help="labelled data: file(s), folder(s) or dataset names"),
    out: Path = typer.Option(Path("evaluation"), "--out", "-o", help="folder for metrics, predictions.csv, plots"),
    target: str | None = typer.Option(None, help="label column if it differs from the model's target name"),
) -> None:
    """Metrics, predictions.csv and parity/ROC plots of a trained model on labelled data."""
    pred = load_predictor(model)
    if pred.kind == "site":  # a per-site checkpoint: one value per site
        _evaluate_sites(pred, sources, out, target)
        return
    import numpy as np

    from crystalgnn.evaluation.reports import write_report

    names = pred.targets if target is None else [target]
    ds = load(sources, names)
    if target is not None:
        ds.targets[pred.targets[0]] = ds.targets[target]
    res = pred.predict(ds)
    _nothing_usable(res, out)
    idx = np.array(ds.index_of(res.ids), dtype=int)
    metrics = write_report(
        out, ds, idx, res.values, kind=pred.kind, targets=pred.targets, units=pred.units, prefix="metrics"
    )
    metrics["n_rejected"] = len(res.rejected)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    console.print(json.dumps(metrics, indent=1))
    _report(res, out)


def _evaluate_sites(pred: Any, sources: list[str], out: Path, target: str | None) -> None:
    """``evaluate`` for per-site checkpoints: per-site metrics, per-element table and figures."""
    from crystalgnn.evaluation.site_report import write_site_report

    name = target or pred.site_target
    ds = load(sources, [name])
    res = pred.predict(ds, show_progress=len(ds) > 500)
    _nothing_usable(res, out)
    df = res.to_frame(ds, target=name)
    metrics = write_site_report(
        out, df, target=pred.site_target, unit=pred.units.get(pred.site_target, ""), prefix="metrics"
    )
    metrics["n_rejected"] = len(res.rejected)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    console.print(json.dumps({k: v for k, v in metrics.items() if not k.endswith("_per_element")}, indent=1))
    console.print(f"per-element metrics: {out / 'per_element.csv'}")
    _report(res, out)


def _report(res: Any, out: Path) -> None:
    if res.rejected:
        err.print(f"[yellow]{len(res.rejected)} entries rejected[/]; see {out / 'rejected.csv'}")
        write_rejected(res.rejected, out / "rejected.csv")


def _nothing_usable(res: Any, out: Path) -> None:
    """Exit 1 when no entry could be predicted (rejections written first)."""
    if len(res.ids) == 0:
        _report(res, out)
        fail("nothing to evaluate: every entry was rejected")
