"""``crystalgnn explain sites``: per-site contributions of a site-linear model, with periodic-table maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from crystalgnn.cli.app import console, err, fail, load, load_predictor, message, write_rejected
from crystalgnn.cli.explain import explain_app


@explain_app.command("sites")
def sites(
    model: str = typer.Argument(..., help="run folder or .ckpt of a model trained with --readout site-linear"),
    inputs: list[str] = typer.Argument(..., help="structure files, folders, tables or dataset names"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for the CSVs, structures and maps"),
    target: str | None = typer.Option(None, "--target", "-t", help="which of the model's targets (default: its first)"),
    roles: str = typer.Option(
        "auto",
        "--roles",
        help="auto or perovskite (A/B/X of ABX3 perovskites from coordination, none elsewhere) | none (no roles)",
    ),
    structures: bool = typer.Option(
        True, "--structures/--no-structures", help="write each structure with its contributions (JSON + CIF)"
    ),
    top: int = typer.Option(5, min=1, help="elements shown per role, at each end"),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="structures per batch"),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", min=1, help="worker processes for graphs (default: all CPUs)"
    ),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads (default: torch's choice)"),
) -> None:
    """Per-site contributions: the per-atom terms whose mean (or sum) is the prediction.

    Writes OUT/site_contributions.csv (id, site_index, element, role, contribution, prediction
    [, target]), OUT/element_means.csv (mean contribution per role and element), OUT/structures/
    (contribution and role as site properties), periodic-table maps OUT/map_<role>.png (map_A,
    map_B, map_X for perovskites; map_other for the other structures' sites; map_all when no
    site has a role) and OUT/rejected.csv. Inputs that cannot be read or turned into graphs are
    named and skipped.
    """
    from crystalgnn.explain.site_roles import ROLE_SCHEMES

    if roles not in ROLE_SCHEMES:
        fail(f"--roles must be one of {', '.join(ROLE_SCHEMES)}, got {roles!r}", code=2)
    pred = load_predictor(model)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from crystalgnn.explain.sites import NotSiteLinearError, check_site_linear, explain_sites

    try:
        check_site_linear(pred)
    except NotSiteLinearError as exc:
        fail(message(exc))
    ds = load(inputs)
    try:
        res = explain_sites(
            pred, ds, target=target, roles=roles, batch_size=batch_size, n_jobs=jobs, show_progress=len(ds) > 200
        )
    except ValueError as exc:
        fail(message(exc))
    _report_rejected(res.rejected, out / "rejected.csv")
    if len(res.frame) == 0:
        fail("nothing to explain: every input was rejected")
    out.mkdir(parents=True, exist_ok=True)
    unit = f" ({res.unit})" if res.unit else ""
    res.frame.to_csv(out / "site_contributions.csv", index=False)
    means = res.element_means()
    means.to_csv(out / "element_means.csv", index=False)
    maps = res.write_maps(out)
    n = len(res.ids)
    console.print(
        f"{n} structures, {len(res.frame)} sites: {res.target}{unit} = {res.reduce} of the site contributions"
    )
    _print_extremes(means, top, unit)
    if structures:
        res.write_structures(out / "structures")
    console.print(
        f"wrote {out / 'site_contributions.csv'}, {out / 'element_means.csv'}, "
        + ", ".join(p.name for p in maps)
        + (f", {n} structures in {out / 'structures'}" if structures else "")
    )


def _print_extremes(means: Any, top: int, unit: str) -> None:
    from rich.table import Table

    for role in sorted(set(means["role"])):
        m = means[means["role"] == role].sort_values("mean")
        t = Table(
            "",
            "element",
            f"mean{unit}",
            "sd",
            "sites",
            title=f"{role or 'all'} sites: lowest and highest mean contribution",
        )
        shown = [("lowest", r) for r in m.head(top).itertuples()]
        if len(m) > top:
            shown += [("highest", r) for r in m.tail(min(top, len(m) - top)).iloc[::-1].itertuples()]
        for which, r in shown:
            sd = "" if r.std != r.std else f"{r.std:.3f}"  # NaN for one site
            t.add_row(which, str(r.element), f"{r.mean:.3f}", sd, str(r.count))
        console.print(t)


def _report_rejected(rejected: list[Any], path: Path) -> None:
    write_rejected(rejected, path)
    if rejected:
        err.print(f"[yellow]{len(rejected)} inputs rejected[/] (listed in {path}):")
        for r in rejected[:10]:
            err.print(f"  - {r.id} ({r.source}): {r.reason}", soft_wrap=True)
        if len(rejected) > 10:
            err.print(f"  ... {len(rejected) - 10} more")
