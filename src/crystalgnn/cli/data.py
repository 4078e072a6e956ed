"""``crystalgnn data``: inspect datasets and sources, fetch data sets from databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from crystalgnn.cli.app import USAGE, app, console, err, fail, failing_on_bad_data, message

if TYPE_CHECKING:
    from crystalgnn.data.clients import FetchResult

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
            err.print(f"  {kind}: {n}", markup=False, highlight=False)
        for row in insp.rows()[:limit]:
            line = f"  - {row['id']} ({row['source']}, {row['stage']}): {row['reason']}"
            err.print(line, soft_wrap=True, markup=False, highlight=False)  # reasons may hold [brackets]
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


fetch_app = typer.Typer(
    help="Fetch a data set from the Materials Project or OPTIMADE providers into a .jsonl.gz file.",
    no_args_is_help=True,
)
data_app.add_typer(fetch_app, name="fetch")

_RETRY_HELP = "retries of a request answered 429/5xx (back-off 0.5 s doubling, or the server's Retry-After)"
_CACHE_HELP = "cache folder (default $CRYSTALGNN_CACHE_DIR/fetch); a repeated fetch reads it without the network"


def _split(values: list[str] | None) -> list[str] | None:
    """Repeated options and comma lists as one list (``-e Li,Fe -e O``)."""
    out = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    return out or None


def _ranges(values: list[str] | None) -> dict[str, tuple[float | None, float | None]]:
    """``NAME=MIN:MAX`` (either side may be empty) as ``{NAME: (MIN, MAX)}``."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for spec in values or []:
        name, sep, bounds = spec.partition("=")
        lo, colon, hi = bounds.partition(":")
        try:
            if not (sep and colon and name.strip()):
                raise ValueError
            out[name.strip()] = (float(lo) if lo.strip() else None, float(hi) if hi.strip() else None)
        except ValueError:
            fail(f"--range {spec}: write NAME=MIN:MAX (e.g. band_gap=0.5:3, energy_above_hull=:0.05)", code=USAGE)
    return out


def _report_fetch(result: FetchResult, out: Path) -> None:
    from rich.markup import escape

    from crystalgnn.data.clients import write_rows

    rows = result.rows
    for db, msg in result.failures.items():
        err.print(f"[yellow]warning:[/] {db} failed: {escape(msg)}", soft_wrap=True, highlight=False)
    skipped = result.skipped
    if skipped:
        err.print(f"[yellow]{len(skipped)} records skipped[/]")
        for s in skipped[:20]:
            err.print(escape(f"  - {s.database} {s.id}: {s.reason}"), soft_wrap=True, highlight=False)
        if len(skipped) > 20:
            err.print(f"  ... {len(skipped) - 20} more")
    if not rows:
        fail("nothing fetched: no rows to write")
    n = write_rows(out, rows)
    cached = [db for db, c in result.from_cache.items() if c]
    units = ", ".join(f"{k} ({u})" if u else k for k, u in result.units.items())
    console.print(escape(f"wrote {n} rows to {out}" + (f" (from the cache: {', '.join(cached)})" if cached else "")))
    console.print(escape(f"labels: {units}"), soft_wrap=True, highlight=False)


@fetch_app.command("mp")
def fetch_mp_command(
    output: Path = typer.Option(..., "--output", "-o", help="the data set to write (.jsonl.gz)"),
    kind: str = typer.Option("summary", "--kind", "-k", help="summary, thermo or electrodes (insertion electrodes)"),
    elements: list[str] | None = typer.Option(
        None, "--elements", "-e", help="materials containing all of these (Li,Fe,O)"
    ),
    exclude_elements: list[str] | None = typer.Option(None, "--exclude-elements", help="and none of these"),
    chemsys: list[str] | None = typer.Option(None, "--chemsys", help="chemical system(s), e.g. Li-Fe-O"),
    formula: list[str] | None = typer.Option(None, "--formula", help="formula(s), e.g. LiFePO4"),
    ids: list[str] | None = typer.Option(None, "--ids", help="material/battery ids (comma lists; chunked)"),
    ids_file: Path | None = typer.Option(None, "--ids-file", help="a file with one id per line"),
    working_ion: str | None = typer.Option(None, "--working-ion", help="electrodes: the working ion (Li, Na, ...)"),
    ranges: list[str] | None = typer.Option(None, "--range", "-r", help="NAME=MIN:MAX, a search range of the route"),
    fields: list[str] | None = typer.Option(None, "--field", "-f", help="labels to keep (default: all mapped)"),
    limit: int | None = typer.Option(None, "--limit", help="at most this many entries"),
    api_key: str | None = typer.Option(None, "--api-key", help="MP API key (better: MP_API_KEY); never printed"),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="MP-compatible server URL (env CRYSTALGNN_MP_ENDPOINT)"
    ),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_CACHE_HELP),
    no_cache: bool = typer.Option(False, "--no-cache", help="neither read nor keep cached pages"),
    refresh: bool = typer.Option(False, "--refresh", help="forget this query's cached pages first"),
    retries: int = typer.Option(5, "--retries", min=0, help=_RETRY_HELP),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bar"),
) -> None:
    """Materials Project documents through mp-api, with structures, converted labels, units and
    provenance per row. Needs mp-api, the extra "clients" of crystalgnn.

    Example: crystalgnn data fetch mp -k electrodes --working-ion Li -o li-electrodes.jsonl.gz
    """
    from crystalgnn.data.clients.mp import MPQuery
    from crystalgnn.data.clients.writer import check_output

    id_list = _split(ids) or []
    if ids_file is not None:
        if not ids_file.is_file():
            fail(f"--ids-file {ids_file}: no such file", code=USAGE)
        id_list += [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
    query = MPQuery(kind=kind, elements=_split(elements), exclude_elements=_split(exclude_elements),
                    chemsys=_split(chemsys), formula=_split(formula), ids=id_list or None, working_ion=working_ion,
                    ranges=_ranges(ranges), fields=_split(fields), limit=limit)  # fmt: skip
    try:
        check_output(output)
        query.validate()
    except ValueError as exc:
        fail(message(exc), code=USAGE)
    from crystalgnn.data.clients import FetchError, RetryPolicy, fetch_mp

    try:
        result = fetch_mp(query, api_key=api_key, endpoint=endpoint, cache_root=cache_dir, use_cache=not no_cache,
                          refresh=refresh, retry=RetryPolicy(total=retries), show_progress=not no_progress)  # fmt: skip
    except FetchError as exc:
        from rich.markup import escape

        fail(escape(str(exc)))
    _report_fetch(result, output)


@fetch_app.command("optimade")
def fetch_optimade_command(
    output: Path = typer.Option(..., "--output", "-o", help="the data set to write (.jsonl.gz)"),
    provider: list[str] = typer.Option(
        ..., "--provider", "-p", help="oqmd, nomad, alexandria, jarvis, mp (repeat or comma list)"
    ),
    filter_: str = typer.Option(
        ..., "--filter", help='OPTIMADE filter, e.g. elements HAS ALL "Li","O" AND nelements=2'
    ),
    fields: list[str] | None = typer.Option(None, "--field", "-f", help="labels to keep (default: all mapped)"),
    endpoint: list[str] | None = typer.Option(
        None, "--endpoint", help="URL, PROVIDER=URL, or URL with {provider} (env CRYSTALGNN_OPTIMADE_ENDPOINT)"
    ),
    limit: int | None = typer.Option(None, "--limit", help="at most this many entries per provider"),
    page_limit: int | None = typer.Option(None, "--page-limit", help="entries per page to ask for"),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help=_CACHE_HELP),
    no_cache: bool = typer.Option(False, "--no-cache", help="neither read nor keep cached pages"),
    refresh: bool = typer.Option(False, "--refresh", help="forget this query's cached pages first"),
    retries: int = typer.Option(5, "--retries", min=0, help=_RETRY_HELP),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bars"),
) -> None:
    """Structures and properties from OPTIMADE providers into one data set with one vocabulary
    of labels and units (docs/data_clients.md has the table). A provider that fails is named;
    the others' rows are kept.
    """
    from crystalgnn.data.clients.optimade import check_filter, parse_endpoints, provider_fields
    from crystalgnn.data.clients.vocabulary import PROVIDERS
    from crystalgnn.data.clients.writer import check_output

    providers = _split(provider) or []
    try:
        check_output(output)
        unknown = [p for p in providers if p not in PROVIDERS]
        if unknown:
            raise ValueError(f"unknown provider(s) {', '.join(unknown)}; one of {', '.join(PROVIDERS)}")
        provider_fields(providers, _split(fields))
        check_filter(filter_)
        parse_endpoints(endpoint, providers)
        if limit is not None and limit < 1:
            raise ValueError("--limit must be positive")
    except ValueError as exc:
        fail(message(exc), code=USAGE)
    from crystalgnn.data.clients import RetryPolicy, fetch_optimade

    result = fetch_optimade(providers, filter_, fields=_split(fields), endpoints=endpoint, max_per_provider=limit,
                            page_limit=page_limit, cache_root=cache_dir, use_cache=not no_cache, refresh=refresh,
                            retry=RetryPolicy(total=retries), show_progress=not no_progress)  # fmt: skip
    _report_fetch(result, output)
