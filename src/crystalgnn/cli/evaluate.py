"""``crystalgnn evaluate``: metrics, predictions and plots of a trained model on labelled data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from crystalgnn.cli.app import (
    app,
    console,
    err,
    fail,
    load,
    load_predictor,
    nonfinite_warning,
    strict_check,
    write_rejected,
)


@app.command()
def evaluate(
    model: str = typer.Argument(..., help="run folder, checkpoint file or shipped model name"),
    sources: list[str] = typer.Argument(..., help="labelled data: file(s), folder(s) or dataset names"),
    out: Path = typer.Option(Path("evaluation"), "--out", "-o", help="folder for metrics, predictions.csv, plots"),
    target: str | None = typer.Option(None, help="label column if it differs from the model's target name"),
    test_only: bool = typer.Option(
        False, "--test-only", help="a run folder's model: evaluate only the entries of its test split"
    ),
    strict: bool = typer.Option(False, "--strict", help="exit 2 if any entry is rejected (after evaluating the rest)"),
) -> None:
    """Metrics, predictions.csv and parity/ROC plots of a trained model on labelled data.

    Given a run folder, entries of the run's training and validation splits are counted and named
    (their metrics flatter the model); --test-only keeps the test split's entries only. Rejected
    entries are named and written to rejected.csv and the rest is evaluated (exit 0); exit 1 when
    nothing could be evaluated, 2 with --strict when anything was rejected.
    """
    pred = load_predictor(model)
    split = _run_split_ids(model)
    if test_only and split is None:
        fail("--test-only needs a run folder (with split.json) as MODEL", code=2)
    if pred.kind == "site":  # a per-site checkpoint: one value per site
        _evaluate_sites(pred, sources, out, target, split, test_only, strict)
        return
    import numpy as np

    from crystalgnn.evaluation.reports import write_report

    names = pred.targets if target is None else [target]
    ds = load(sources, names)
    if target is not None:
        ds.targets[pred.targets[0]] = ds.targets[target]
    ds, seen = _against_split(ds, split, test_only)
    res = _predict(pred, ds)
    _nothing_usable(res, out)
    idx = np.array(ds.index_of(res.ids), dtype=int)
    metrics = write_report(
        out, ds, idx, res.values, kind=pred.kind, targets=pred.targets, units=pred.units, prefix="metrics"
    )
    metrics["n_rejected"] = len(res.rejected)
    metrics.update(seen)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    console.print(json.dumps(metrics, indent=1))
    nonfinite_warning(res)
    _report(res, out)
    strict_check(res.rejected, strict, "entries")


def _predict(pred: Any, ds: Any) -> Any:
    """``pred.predict`` with the non-finite warning left to :func:`nonfinite_warning` (one line)."""
    import warnings

    from crystalgnn.prediction import NonFiniteWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonFiniteWarning)
        return pred.predict(ds, show_progress=len(ds) > 500)


def _run_split_ids(model: str) -> dict[str, set[str]] | None:
    """The ids of each part of a run folder's split, or None for other model references."""
    path = Path(model) / "split.json"
    if not path.is_file():
        return None
    try:
        parts = json.loads(path.read_text())
        return {p: {str(i) for i in parts.get(p, [])} for p in ("train", "val", "test")}
    except (OSError, ValueError, AttributeError):
        return None


def _against_split(ds: Any, split: dict[str, set[str]] | None, test_only: bool) -> tuple[Any, dict[str, Any]]:
    """Keep the test split's entries (``--test-only``), or count and name the entries the run
    trained or validated on; returns the dataset and what goes into metrics.json.
    """
    if split is None:
        return ds, {}
    if test_only:
        keep = [i for i, k in enumerate(ds.ids) if k in split["test"]]
        if not keep:
            fail("--test-only: none of these entries is in the run's test split")
        console.print(f"--test-only: {len(keep)} of {len(ds)} entries are in the run's test split")
        return ds.subset(keep), {"evaluated": "test split only", "n_in_test_split": len(keep)}
    seen: dict[str, Any] = {}
    for part, word in (("train", "training"), ("val", "validation")):
        ids = [k for k in ds.ids if k in split[part]]
        seen[f"n_in_{part}_split"] = len(ids)
        if ids:
            shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
            err.print(
                f"[yellow]{len(ids)} of {len(ds)} entries were in this run's {word} split[/] ({shown}): "
                "their errors flatter the model; --test-only evaluates the test split only"
            )
    return ds, seen


def _evaluate_sites(
    pred: Any,
    sources: list[str],
    out: Path,
    target: str | None,
    split: Any = None,
    test_only: bool = False,
    strict: bool = False,
) -> None:
    """``evaluate`` for per-site checkpoints: per-site metrics, per-element table and figures."""
    from crystalgnn.evaluation.site_report import write_site_report

    name = target or pred.site_target
    ds = load(sources, [name])
    ds, seen = _against_split(ds, split, test_only)
    res = _predict(pred, ds)
    _nothing_usable(res, out)
    df = res.to_frame(ds, target=name)
    metrics = write_site_report(
        out, df, target=pred.site_target, unit=pred.units.get(pred.site_target, ""), prefix="metrics"
    )
    metrics["n_rejected"] = len(res.rejected)
    metrics.update(seen)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    console.print(json.dumps({k: v for k, v in metrics.items() if not k.endswith("_per_element")}, indent=1))
    console.print(f"per-element metrics: {out / 'per_element.csv'}")
    nonfinite_warning(res)
    _report(res, out)
    strict_check(res.rejected, strict, "entries")


def _report(res: Any, out: Path) -> None:
    if res.rejected:
        err.print(f"[yellow]{len(res.rejected)} entries rejected[/]; see {out / 'rejected.csv'}")
        for r in res.rejected[:5]:
            err.print(f"  - {r.id} ({r.source}): {r.reason}", soft_wrap=True)
        write_rejected(res.rejected, out / "rejected.csv")


def _nothing_usable(res: Any, out: Path) -> None:
    """Exit 1 when no entry could be predicted (rejections written first)."""
    if len(res.ids) == 0:
        _report(res, out)
        fail("nothing to evaluate: every entry was rejected")
