"""``crystalgnn data``: inspect datasets and sources."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from crystalgnn.cli.app import USAGE, app, console, err, fail, failing_on_bad_data

data_app = typer.Typer(help="Inspect datasets and sources.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("inspect")
def data_inspect(
    sources: list[str] = typer.Argument(..., help="file(s), folder(s) or dataset short names"),
    target: list[str] | None = typer.Option(None, "--target", "-t", help="labels that must be present"),
    rejected: Path | None = typer.Option(None, "--rejected", help="write every problem as CSV here"),
    strict: bool = typer.Option(False, "--strict", help="exit non-zero if anything is rejected"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    end_member: str = typer.Option("discharged", help="electrode sets: charged or discharged structure"),
    limit: int = typer.Option(50, help="problems listed on screen (all of them go to --rejected)"),
) -> None:
    """Counts, elements, sites per structure, label statistics with units, and every problem
    training would reject: unreadable entries, NaN labels and graph-stage problems (elements
    without atom features, isolated or overlapping atoms), each named with its reason.
    """
    from rich.table import Table

    from crystalgnn.graphs.inspection import inspect_source

    with failing_on_bad_data():
        insp = inspect_source(sources if len(sources) > 1 else sources[0], targets=target or None,
                              end_member=end_member, show_progress=False)  # fmt: skip
    s = insp.summary()
    if as_json:
        console.print_json(json.dumps(s, default=str))
    else:
        console.print(
            f"[bold]{s['name']}[/]: {s['entries']} usable structures of {s['read']} read, {s['rejected']} problems"
        )
        if s["entries"]:
            console.print(
                f"sites per structure: min {s['sites_min']}, median {s['sites_median']:g}, max {s['sites_max']} "
                f"(total {s['sites_total']})"
            )
            top = ", ".join(f"{k} {v}" for k, v in list(s["elements"].items())[:15])
            more = " ..." if s["n_elements"] > 15 else ""
            console.print(f"{s['n_elements']} elements (structures containing): {top}{more}")
        t = Table("label", "unit", "count", "missing", "min", "median", "mean", "max")
        t.columns[0].no_wrap = t.columns[1].no_wrap = True
        t.columns[0].min_width = max((len(k) for k in s["labels"]), default=5)
        for k, st in s["labels"].items():
            cells = [f"{st[key]:.4g}" if key in st else "-" for key in ("min", "median", "mean", "max")]
            t.add_row(k, st["unit"], str(st["count"]), str(st["missing"]), *cells)
        console.print(t)
    if insp.rejections:
        err.print(f"[yellow]{len(insp.rejections)} problems[/] in {len(insp.rejected_ids)} entries (kind: count)")
        for kind, n in insp.counts().most_common():
            err.print(f"  {kind}: {n}")
        for row in insp.rows()[:limit]:
            err.print(f"  - {row['id']} ({row['source']}, {row['stage']}): {row['reason']}", soft_wrap=True)
        if len(insp.rejections) > limit:
            err.print(f"  ... {len(insp.rejections) - limit} more (--limit, or --rejected FILE for all)")
        if rejected is not None:
            insp.write_csv(rejected)
            err.print(f"  full list: {rejected}")
    if strict and insp.rejections:
        fail(f"--strict: {len(insp.rejections)} problems", code=USAGE)
    if s["entries"] == 0:
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
