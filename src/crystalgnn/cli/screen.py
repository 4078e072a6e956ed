"""``crystalgnn screen``: generate cathode candidates from hosts and prototypes, score and rank them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from crystalgnn.cli.app import USAGE, app, console, err, fail, message, print_frame, quiet_lightning


def _list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _optional(name: str | None) -> str | None:
    return None if name is None or name.lower() == "none" else name


def _window(text: str) -> tuple[float, float]:
    parts = _list(text)
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        fail(f"--voltage-window takes two numbers LOW,HIGH (got {text!r})", code=USAGE)
    return lo, hi


@app.command()
def screen(
    hosts: list[str] = typer.Argument(None, help="host structures: files, folders, tables or dataset names"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (re-running the same command resumes it)"),
    working_ion: str = typer.Option("Li", "--working-ion", help="ion the cathode stores (Li, Na, K, Mg, Ca, Zn, ...)"),
    substitute: str | None = typer.Option(None, "--substitute", help="explicit rules, e.g. 'Co->Ni,Mn,Fe; P->Si'"),
    prototypes: str | None = typer.Option(
        None, "--prototypes", help="frameworks to decorate: layered,spinel,olivine,nasicon,rocksalt"
    ),
    metals: str | None = typer.Option(None, "--metals", help="metals for --prototypes, e.g. Co,Ni,Mn,Fe"),
    anions: str = typer.Option("O", "--anions", help="anions for --prototypes"),
    hautier_threshold: float | None = typer.Option(
        None, "--hautier-threshold", help="also Hautier-2011 substitutions above this probability (e.g. 0.001)"
    ),
    max_per_host: int = typer.Option(20, "--max-per-host", min=1, help="most probable substitutions kept per host"),
    charged_fraction: float = typer.Option(1.0, "--charged-fraction", help="fraction of the ion removed when charged"),
    formation_model: str = typer.Option("mp-formation-energy", "--formation-model", help="formation energy model"),
    voltage_model: str = typer.Option(
        "electrode-voltage", "--voltage-model", help="average-voltage model (voltage (a)); 'none' to skip"
    ),
    band_gap_model: str = typer.Option("mp-band-gap", "--band-gap-model", help="band gap model; 'none' to skip"),
    metal_model: str = typer.Option("mp-metal-classifier", "--metal-model", help="metal classifier; 'none' to skip"),
    hull_reference: str = typer.Option("mp-36k", "--hull-reference", help="reference energies of the hull; 'none'"),
    known: str = typer.Option("electrodes,mp-36k", "--known", help="data sets that flag candidates as known; 'none'"),
    max_hull: float = typer.Option(
        0.1, "--max-hull", help="filter: energy above hull of the discharged member, eV/atom"
    ),
    voltage_window: str = typer.Option("2.5,4.5", "--voltage-window", help="filter: average voltage LOW,HIGH in V"),
    objective: str = typer.Option("specific_energy", "--objective", help="specific_energy or lcb (mean - k std)"),
    lcb_k: float = typer.Option(1.0, "--lcb-k", help="k of the lower confidence bound"),
    top: int = typer.Option(20, "--top", min=1, help="candidates shown and written as CIFs"),
    rescale: bool = typer.Option(
        True, "--rescale/--no-rescale", help="rescale generated lattices to a predicted volume"
    ),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads (default: torch's choice)"),
    engine: str = typer.Option(
        "local", "--engine", help="where generation and scoring run: local (this process) or dask (same result)"
    ),
    address: str | None = typer.Option(
        None, "--address", help="HOST:PORT of a running Dask scheduler (default: start a local cluster)"
    ),
    workers: int = typer.Option(2, "--workers", min=1, help="worker processes of the local Dask cluster"),
    connect_timeout: float = typer.Option(
        10.0, "--connect-timeout", min=0.1, help="seconds to wait for the Dask scheduler"
    ),
    strict: bool = typer.Option(False, "--strict", help="exit 2 if any host is rejected (after screening the rest)"),
) -> None:
    """Screen insertion cathodes: hosts -> substitutions / prototypes -> validity, duplicates,
    known -> charged end members -> predicted voltage, capacity, energy, hull distance, band gap
    -> filters and ranking -> ranked.csv, top CIFs, plots and report.md in --out.

    Nothing is relaxed. Bad hosts are named and skipped (rejected.csv); exit 1 when no candidate
    could be scored, 2 on usage errors (an unreachable --address included) or, with --strict,
    when a host was rejected. --engine dask runs generation and scoring on a Dask cluster
    (needs the 'distributed' extra), partitioned so that the ranking equals the local
    one; a screen resumes on either engine.
    """
    from crystalgnn.discovery.screen_config import ScreenConfig

    try:
        config = ScreenConfig(
            hosts=list(hosts or []),
            working_ion=working_ion,
            substitute=substitute,
            prototypes=_list(prototypes),
            metals=_list(metals),
            anions=_list(anions),
            hautier_threshold=hautier_threshold,
            max_per_host=max_per_host,
            rescale=rescale,
            charged_fraction=charged_fraction,
            known_references=[] if known.lower() == "none" else _list(known),
            formation_model=formation_model,
            voltage_model=_optional(voltage_model),
            band_gap_model=_optional(band_gap_model),
            metal_model=_optional(metal_model),
            hull_reference=_optional(hull_reference),
            max_hull=max_hull,
            voltage_window=_window(voltage_window),
            objective=objective,
            lcb_k=lcb_k,
            top=top,
        )
        config.check()
        if substitute:
            from crystalgnn.discovery.substitution import parse_rules

            parse_rules(substitute)
    except ValueError as exc:
        fail(message(exc), code=USAGE)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    runner = open_engine_or_fail(engine, address, workers, connect_timeout)
    with runner:
        result = run_or_fail(config, out, engine=runner)
    summarise(result, config, out)
    if strict and any(stage == "host" for stage, _ in result.rejected):
        fail(f"--strict: {sum(stage == 'host' for stage, _ in result.rejected)} hosts rejected", code=USAGE)


def open_engine_or_fail(kind: str, address: str | None, workers: int, connect_timeout: float) -> Any:
    """:func:`~crystalgnn.discovery.engine.open_engine`; a bad engine or address ends the
    command with one line (exit 2).
    """
    from crystalgnn.discovery.engine import EngineError
    from crystalgnn.discovery.engines import open_engine

    try:
        return open_engine(kind.strip().lower(), address, workers=workers, connect_timeout=connect_timeout)
    except (EngineError, ValueError) as exc:
        fail(message(exc), code=USAGE)


def run_or_fail(config: Any, out: Path, show_progress: bool = True, engine: Any = None) -> Any:
    """:func:`~crystalgnn.discovery.screen.run_screen`, bad data and missing models as one line."""
    quiet_lightning()
    import warnings

    from crystalgnn.data.dataset import DataError
    from crystalgnn.discovery.screen import run_screen

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen's CIF and oxidation-state chatter
            return run_screen(config, out, show_progress=show_progress, engine=engine)
    except (DataError, FileNotFoundError, ValueError, KeyError) as exc:
        fail(message(exc))


def summarise(result: Any, config: Any, out: Path, limit: int | None = None) -> None:
    """Hosts line, rejected hosts, notes, reused stages and the top of the ranking; exit 1 when
    nothing was scored.
    """
    from crystalgnn.discovery.screen_report import summary_table

    bad_hosts = [r for stage, r in result.rejected if stage == "host"]
    c = result.counts
    err.print(
        f"hosts: {c.get('hosts', 0)} usable, {len(bad_hosts)} rejected; candidates: {c.get('generated', 0)} generated, "
        f"{c.get('valid', 0)} valid, {c.get('unique', 0)} unique, {c.get('pairs', 0)} with a charged end member",
        soft_wrap=True,
        highlight=False,
    )
    for r in bad_hosts[:20]:
        err.print(f"  - host {r.id} ({r.source}): {r.reason}", soft_wrap=True, highlight=False)
    if len(bad_hosts) > 20:
        err.print(f"  ... {len(bad_hosts) - 20} more in {out / 'rejected.csv'}")
    for note in result.notes:
        err.print(f"[bold yellow]note:[/] {note}", soft_wrap=True, highlight=False)
    if result.reused:
        err.print(f"reused from the previous run: {', '.join(result.reused)}")
    if len(result.ranked) == 0:
        fail(f"no candidate could be scored (reasons in {out / 'rejected.csv'})")
    n = limit or config.top
    table = summary_table(result.ranked, n)
    passing = int(result.ranked["rank"].notna().sum())
    if len(table):
        print_frame(table, n, title=f"top {min(n, passing)} of {passing} passing candidates (unrelaxed structures)")
    else:
        console.print(f"none of {len(result.ranked)} scored candidates passed the filters (see ranked.csv)")
    console.print(f"wrote {out / 'ranked.csv'}, {out / 'report.md'}, plots and top CIFs in {out}")
