"""``crystalgnn data``: inspect datasets and sources."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from crystalgnn.cli.app import app, console, fail, load, report_rejections

data_app = typer.Typer(help="Inspect datasets and sources.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("inspect")
def data_inspect(
    sources: list[str] = typer.Argument(..., help="file(s), folder(s) or dataset short names"),
    target: list[str] | None = typer.Option(None, "--target", "-t", help="labels that must be present"),
    rejected: Path | None = typer.Option(None, "--rejected", help="write rejected.csv here"),
    strict: bool = typer.Option(False, "--strict", help="exit non-zero if anything is rejected"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    end_member: str = typer.Option("discharged", help="electrode sets: charged or discharged structure"),
) -> None:
    """Counts, elements, sites per structure, label statistics with units, and rejections."""
    from rich.table import Table

    ds = load(sources, target, end_member=end_member)
    s = ds.summary()
    if as_json:
        console.print_json(json.dumps(s))
    else:
        console.print(f"[bold]{s['name']}[/]: {s['entries']} structures, {s['rejected']} rejected")
        console.print(
            f"sites per structure: min {s['sites_min']}, median {s['sites_median']:g}, max {s['sites_max']} "
            f"(total {s['sites_total']})"
        )
        top = ", ".join(f"{k} {v}" for k, v in list(s["elements"].items())[:15])
        console.print(
            f"{s['n_elements']} elements (structures containing): {top}{' ...' if s['n_elements'] > 15 else ''}"
        )
        t = Table("label", "unit", "count", "missing", "min", "median", "mean", "max")
        t.columns[0].no_wrap = t.columns[1].no_wrap = True
        t.columns[0].min_width = max((len(k) for k in s["labels"]), default=5)
        for k, st in s["labels"].items():
            cells = [f"{st[key]:.4g}" if key in st else "-" for key in ("min", "median", "mean", "max")]
            t.add_row(k, st["unit"], str(st["count"]), str(st["missing"]), *cells)
        console.print(t)
    report_rejections(ds, rejected, strict)
    if len(ds) == 0:
        fail(f"no usable structures in {s['name']}")


@data_app.command("list")
def data_list() -> None:
    """The dataset short names (files in ../shared/data) and what they hold."""
    from rich.table import Table

    from crystalgnn.data.catalog import CATALOG, shared_data_dir

    root = shared_data_dir()
    t = Table("name", "file", "labels (units)", "available")
    for name, e in CATALOG.items():
        labels = ", ".join(f"{k} ({u})" if u else k for k, u in {**e.units, **e.site_units}.items())
        t.add_row(name, e.file, labels, "yes" if root and (root / e.file).is_file() else "no")
    console.print(t)
