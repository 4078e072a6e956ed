"""``crystalgnn predict``: a trained or shipped model on structures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from crystalgnn.cli.app import app, console, err, fail, load, load_predictor, print_frame


@app.command()
def predict(
    model: str = typer.Argument(..., help="run folder, .ckpt, original CGCNN .pth.tar, or shipped model name"),
    inputs: list[str] = typer.Argument(..., help="structure files, folders, tables or dataset names"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write the table as CSV"),
    limit: int = typer.Option(50, min=0, help="rows shown on screen"),
    structures_out: Path | None = typer.Option(
        None, "--structures-out", help="per-site models: write structures with the predictions as a site property"
    ),
) -> None:
    """Predict with a trained model: a table on screen and, with --output, a CSV.

    Per-site models give one row per site (id, site_index, element, prediction).
    """
    pred = load_predictor(model)
    if structures_out is not None and pred.kind != "site":
        fail("--structures-out needs a per-site model (trained with --site-target)")
    ds = load(inputs)
    res = pred.predict(ds, show_progress=len(ds) > 500)
    if len(res.ids) == 0:
        _report(res)
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
            f"wrote {len(res.ids)} structures (JSON + CIF, site property {res.property_name()}) to {structures_out}"
        )
    _report(res)


def _report(res: Any) -> None:
    if res.rejected:
        err.print(f"[yellow]{len(res.rejected)} inputs rejected[/]:")
        for r in res.rejected[:20]:
            err.print(f"  - {r.id} ({r.source}): {r.reason}")


def _units(pred: Any) -> str:
    if pred.kind == "classification":
        return "probability of class 1"
    return ", ".join(pred.units.get(t, "") or "-" for t in pred.targets)
