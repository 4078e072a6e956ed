"""What a screen writes: the ranked CSV, CIFs of the top candidates, two plots and a report.

- ``ranked.csv``: rank, id, formula, lineage (host, generator steps), every predicted number
  with its ``_std`` (ensemble spread; empty for single models), known/new, filter reason;
- ``top/<rank>_<formula>_{discharged,charged}.cif``: the top ``config.top`` passing candidates;
- ``voltage_capacity.png``: average voltage against gravimetric capacity, coloured by the
  discharged member's energy above hull, with the ensemble error bars, and the known electrodes
  of the ``electrodes`` data set (same working ion) in grey, as in the Materials Project battery
  explorer's voltage-capacity maps;
- ``pareto.png``: specific energy against energy above hull, the Pareto front highlighted;
- ``report.md``: counts per stage, notes, the top of the ranking, and the statement that no
  candidate was relaxed.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crystalgnn.data.dataset import Rejection
from crystalgnn.discovery.candidates import Candidate
from crystalgnn.discovery.screen_config import ScreenConfig
from crystalgnn.evaluation.plots import isolate_matplotlib

Staged = list[tuple[str, Rejection]]
"""``(stage, rejection)`` pairs: where in the screen each host or candidate was dropped."""


@dataclass
class ScreenResult:
    """What :func:`~crystalgnn.discovery.screen.run_screen` produced (and this module writes).

    Attributes:
        ranked: the ranked table (:func:`~crystalgnn.discovery.ranking.rank_candidates`).
        rejected: ``(stage, Rejection)`` of every host or candidate dropped, with its reason.
        notes: one line per degraded choice (e.g. a model that could not be loaded).
        reused: stages taken from a previous run of the same command.
        counts: numbers per stage (hosts, generated, valid, unique, pairs, scored, passing).
        seconds: wall time per stage.
    """

    ranked: pd.DataFrame
    rejected: Staged = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


SUMMARY_COLUMNS: tuple[str, ...] = (
    "rank",
    "formula",
    "voltage",
    "capacity_grav",
    "specific_energy",
    "e_hull_discharged",
    "known",
    "lineage",
)
"""Columns of the short table printed and put in the report."""


def known_electrodes(working_ion: str) -> pd.DataFrame:
    """Average voltage and gravimetric capacity of the ``electrodes`` data set's electrodes of
    ``working_ion`` (empty when the shared data are missing).
    """
    from crystalgnn.data.catalog import catalog_path
    from crystalgnn.data.dataset import DataError

    try:
        path = catalog_path("electrodes")
    except DataError:
        return pd.DataFrame(columns=["average_voltage", "capacity_grav"])
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            # the CIF columns are long: read the two numbers without parsing them when possible
            if f'"{working_ion}"' not in line:
                continue
            r = json.loads(line)
            if r.get("working_ion") == working_ion:
                rows.append((r.get("average_voltage"), r.get("capacity_grav")))
    return pd.DataFrame(rows, columns=["average_voltage", "capacity_grav"], dtype=float)


def _plt() -> Any:
    isolate_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _errors(df: pd.DataFrame, column: str) -> np.ndarray | None:
    std = pd.to_numeric(df.get(column + "_std", pd.Series(np.nan, index=df.index)), errors="coerce")
    return None if std.isna().all() else std.fillna(0.0).to_numpy()


def voltage_capacity_plot(ranked: pd.DataFrame, known: pd.DataFrame, path: Path, config: ScreenConfig) -> Path:
    """Voltage vs gravimetric capacity, coloured by hull distance, known electrodes in grey."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.4), dpi=130)
    if len(known):
        ax.scatter(
            known["capacity_grav"],
            known["average_voltage"],
            s=6,
            c="0.75",
            label=f"known {config.working_ion} electrodes (MP)",
        )
    ok = ranked[["capacity_grav", "voltage"]].notna().all(axis=1)
    df = ranked[ok]
    if len(df):
        ax.errorbar(df["capacity_grav"], df["voltage"], yerr=_errors(df, "voltage"), fmt="none", ecolor="0.3", lw=0.7)
        hull = pd.to_numeric(df["e_hull_discharged"], errors="coerce")
        sc = ax.scatter(
            df["capacity_grav"],
            df["voltage"],
            c=hull,
            cmap="viridis_r",
            s=22,
            edgecolors="k",
            linewidths=0.3,
            label="candidates",
        )
        fig.colorbar(sc, ax=ax, label="E above hull, discharged (eV/atom)")
    lo, hi = config.voltage_window
    ax.axhspan(lo, hi, color="tab:green", alpha=0.06, label=f"window {lo:g}-{hi:g} V")
    ax.set_xlabel("gravimetric capacity (mAh/g)")
    ax.set_ylabel(f"average voltage vs {config.working_ion} (V)")
    ax.set_title("candidates (unrelaxed) and known electrodes")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def pareto_plot(ranked: pd.DataFrame, path: Path) -> Path:
    """Specific energy vs energy above hull, the Pareto front of passing candidates marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.4, 4.2), dpi=130)
    df = ranked[ranked[["specific_energy", "e_hull_discharged"]].notna().all(axis=1)]
    passing = df["rank"].notna()
    ax.scatter(
        df.loc[~passing, "e_hull_discharged"], df.loc[~passing, "specific_energy"], s=10, c="0.7", label="filtered out"
    )
    ax.errorbar(
        df.loc[passing, "e_hull_discharged"],
        df.loc[passing, "specific_energy"],
        xerr=_errors(df[passing], "e_hull_discharged"),
        yerr=_errors(df[passing], "specific_energy"),
        fmt="o",
        ms=4,
        lw=0.7,
        color="tab:blue",
        label="passing",
    )
    front = df[df["pareto"].astype(bool)].sort_values("e_hull_discharged")
    ax.plot(
        front["e_hull_discharged"], front["objective"], "-s", color="tab:red", ms=5, label="Pareto front (objective)"
    )
    ax.set_xlabel("E above hull, discharged (eV/atom)")
    ax.set_ylabel("specific energy (Wh/kg)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60]


def write_top_cifs(
    ranked: pd.DataFrame, pairs: Sequence[tuple[Candidate, Candidate]], out: Path, top: int
) -> list[Path]:
    """CIFs of both end members of the ``top`` best passing candidates."""
    by_id = {d.id: (d, c) for d, c in pairs}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for row in ranked[ranked["rank"].notna()].head(top).itertuples():
        if row.id not in by_id:
            continue
        for member, cand in zip(("discharged", "charged"), by_id[row.id], strict=True):
            path = out / f"{int(row.rank):03d}_{_safe(cand.formula)}_{member}.cif"
            cand.structure.to(filename=str(path))
            written.append(path)
    return written


def summary_table(ranked: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first ``n`` ranked rows, :data:`SUMMARY_COLUMNS` only, numbers rounded."""
    cols = [c for c in SUMMARY_COLUMNS if c in ranked.columns]
    return ranked[ranked["rank"].notna()].head(n)[cols].round(3)


def _markdown_table(df: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def write_markdown(result: ScreenResult, config: ScreenConfig, path: Path) -> Path:
    ranked = result.ranked
    n_pass = int(ranked["rank"].notna().sum()) if len(ranked) else 0
    lines = [
        "# Cathode screen",
        "",
        "**No candidate was relaxed.** Structures are hosts, substitutions and decorated prototypes "
        "with a lattice rescaled to a predicted volume (RLS/DLS); the charged end member keeps the "
        "discharged lattice, so volume changes are 0 by construction. Every number is a model "
        "prediction on these unrelaxed structures; confirm the best candidates with DFT.",
        "",
        f"Working ion {config.working_ion}; filters: discharged E above hull <= {config.max_hull:g} eV/atom, "
        f"voltage {config.voltage_window[0]:g}-{config.voltage_window[1]:g} V; objective {config.objective}"
        + (f" (mean - {config.lcb_k:g} std)" if config.objective == "lcb" else "")
        + ".",
        "",
        f"Models: formation energy {config.formation_model}, voltage {config.voltage_model}, band gap "
        f"{config.band_gap_model}, metal classifier {config.metal_model}; hull from {config.hull_reference} "
        "formation energies (pymatgen PhaseDiagram, elements at 0). Units: voltage V vs the working-ion "
        "metal, capacity mAh/g and mAh/cm3, specific energy Wh/kg, energy density Wh/L, hull eV/atom. "
        "Capacities count the working ions the end members differ by, at most as many as the cations' "
        "redox can release (dx; dx_end_members without that cap).",
        "",
        "## Counts",
        "",
        *[f"- {k}: {v}" for k, v in result.counts.items()],
        f"- rejected (see rejected.csv): {len(result.rejected)}",
        f"- passing every filter: {n_pass}",
        "",
    ]
    if result.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in result.notes], ""]
    lines += [
        "## Top candidates",
        "",
        _markdown_table(summary_table(ranked, config.top)) if n_pass else "No candidate passed the filters.",
        "",
        "Columns ending in `_std` in ranked.csv are deep-ensemble spreads (empty for single models). "
        "`voltage_model` is voltage (a) from the voltage model, `voltage_thermo` voltage (b) from "
        "predicted formation energies; `voltage_agreement` is |a - b|.",
        "",
        "![voltage vs capacity](voltage_capacity.png)",
        "",
        "![Pareto front](pareto.png)",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def write_screen_report(
    result: ScreenResult, config: ScreenConfig, out: Path, pairs: Sequence[tuple[Candidate, Candidate]]
) -> dict[str, Path]:
    """Write every file of the module docstring into ``out``; returns them by name."""
    files: dict[str, Path] = {}
    ranked = result.ranked
    files["ranked"] = out / "ranked.csv"
    ranked.to_csv(files["ranked"], index=False)
    if len(ranked):
        write_top_cifs(ranked, pairs, out / "top", config.top)
        files["voltage_capacity"] = voltage_capacity_plot(
            ranked, known_electrodes(config.working_ion), out / "voltage_capacity.png", config
        )
        files["pareto"] = pareto_plot(ranked, out / "pareto.png")
    files["report"] = write_markdown(result, config, out / "report.md")
    return files
