"""``crystalgnn predict``: a trained or shipped model on structures."""

from __future__ import annotations

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
    print_frame,
    strict_check,
    write_rejected,
)


@app.command()
def predict(
    model: str = typer.Argument(..., help="run folder, .ckpt, original CGCNN .pth.tar, or shipped model name"),
    inputs: list[str] = typer.Argument(..., help="structure files, folders, tables or dataset names"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write the table as CSV"),
    limit: int = typer.Option(50, min=0, help="rows shown on screen"),
    structures_out: Path | None = typer.Option(
        None, "--structures-out", help="per-site models: write structures with the predictions as a site property"
    ),
    rejected: Path | None = typer.Option(None, "--rejected", help="write the rejected inputs as CSV here"),
    strict: bool = typer.Option(False, "--strict", help="exit 2 if any input is rejected (after predicting the rest)"),
) -> None:
    """Predict with a trained model: a table on screen and, with --output, a CSV.

    Per-site models give one row per site (id, site_index, element, prediction). Inputs that
    cannot be read or turned into graphs are named with the reason and the rest is predicted
    (exit 0); exit 1 when nothing could be predicted, 2 with --strict when anything was rejected.
    """
    import warnings

    pred = load_predictor(model)
    if structures_out is not None and pred.kind != "site":
        fail("--structures-out needs a per-site model (trained with --site-target)")
    ds = load(inputs)
    from crystalgnn.prediction import NonFiniteWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonFiniteWarning)  # printed as one line below
        res = pred.predict(ds, show_progress=len(ds) > 500)
    if len(res.ids) == 0:
        _report(res, rejected)
        fail("nothing to predict: every input was rejected")
    df = res.to_frame(ds)
    print_frame(df, limit, title=f"{pred.model_name} -> {', '.join(pred.targets)} ({_units(pred)})")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        from crystalgnn.metrics import unit_columns

        unit_columns(df, pred.targets, pred.units).to_csv(output, index=False)
        console.print(f"wrote {output}")
    if structures_out is not None:
        res.write_structures(ds, structures_out)
        console.print(
            f"wrote {len(res.ids)} structures (JSON + CIF, site property {res.property_name()}) to {structures_out}; "
            "index.csv maps ids to files"
        )
    nonfinite_warning(res)
    _report(res, rejected)
    strict_check(res.rejected, strict)


def _report(res: Any, path: Path | None) -> None:
    if res.rejected:
        err.print(f"[yellow]{len(res.rejected)} inputs rejected[/]:")
        for r in res.rejected[:20]:
            err.print(f"  - {r.id} ({r.source}): {r.reason}", soft_wrap=True)
        if len(res.rejected) > 20:
            err.print(f"  ... {len(res.rejected) - 20} more (--rejected FILE lists them all)")
    if path is not None:
        write_rejected(res.rejected, path)
        if res.rejected:
            err.print(f"  full list: {path}")


def _units(pred: Any) -> str:
    if pred.kind == "classification":
        return "probability of class 1"
    return ", ".join(pred.units.get(t, "") or "-" for t in pred.targets)
