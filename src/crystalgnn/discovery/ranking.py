"""Filters, objective and Pareto front over a table of scored candidates.

- *Filters*: energy above hull of the discharged member ``<= max_hull`` (eV/atom; the charged
  member of an insertion electrode is usually metastable, so it is reported, not filtered) and
  average voltage inside ``[lo, hi]`` V. A missing (NaN) number fails its filter.
- *Objective*: ``specific_energy`` ranks by the predicted mean (Wh/kg); ``lcb`` by its lower
  confidence bound ``mean - k std`` (the ensemble spread; a single model has no spread, so its
  bound is the mean), the pessimistic acquisition of upper/lower-confidence-bound screening
  (Srinivas et al., ICML 2010, with the sign flipped).
- *Pareto front*: passing candidates not dominated in (objective, -hull distance of the
  discharged member), the objective being the specific energy or its bound: no other
  candidate is at least as good in both and better in one (Deb, Multi-objective optimization
  using evolutionary algorithms, 2001, ch. 2).

Ranks are 1, 2, ... over the candidates that pass every filter, by objective (descending) then
id (so ties and re-runs give one order); the others follow without a rank, with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

OBJECTIVE_COLUMN = "objective"


def filter_reasons(df: pd.DataFrame, max_hull: float | None, voltage_window: tuple[float, float] | None) -> pd.Series:
    """Why each row fails the filters (``""`` when it passes)."""
    reasons = pd.Series([""] * len(df), index=df.index, dtype=object)

    def add(mask: Any, text: str) -> None:
        reasons[mask] = reasons[mask].map(lambda r: f"{r}; {text}" if r else text)

    if max_hull is not None:
        hull = pd.to_numeric(df.get("e_hull_discharged", pd.Series(np.nan, index=df.index)), errors="coerce")
        add(hull.isna(), "no hull distance")
        add(hull > max_hull, f"hull > {max_hull:g} eV/atom")
    if voltage_window is not None:
        lo, hi = voltage_window
        v = pd.to_numeric(df.get("voltage", pd.Series(np.nan, index=df.index)), errors="coerce")
        add(v.isna(), "no voltage")
        add((v < lo) | (v > hi), f"voltage outside {lo:g}-{hi:g} V")
    return reasons


def objective_values(df: pd.DataFrame, objective: str = "specific_energy", k: float = 1.0) -> pd.Series:
    """The number to maximise: ``specific_energy`` or its lower confidence bound (``lcb``)."""
    mean = pd.to_numeric(df["specific_energy"], errors="coerce")
    if objective == "specific_energy":
        return mean
    if objective == "lcb":
        std = pd.to_numeric(df.get("specific_energy_std", pd.Series(np.nan, index=df.index)), errors="coerce")
        return mean - k * std.fillna(0.0)
    raise ValueError(f"unknown objective {objective!r} (choose from specific_energy, lcb)")


def rank_candidates(
    df: pd.DataFrame,
    max_hull: float | None = 0.1,
    voltage_window: tuple[float, float] | None = (2.5, 4.5),
    objective: str = "specific_energy",
    k: float = 1.0,
) -> pd.DataFrame:
    """``df`` with ``objective``, ``rank`` (1-based, NaN when filtered out), ``filtered_out``
    (reason) and ``pareto`` columns, passing rows first by rank, then the others by objective.
    """
    out = df.copy()
    out[OBJECTIVE_COLUMN] = objective_values(out, objective, k)
    out["filtered_out"] = filter_reasons(out, max_hull, voltage_window)
    out.loc[out[OBJECTIVE_COLUMN].isna() & (out["filtered_out"] == ""), "filtered_out"] = "no objective"
    passing = out["filtered_out"] == ""
    hull = pd.to_numeric(out.get("e_hull_discharged", pd.Series(np.nan, index=out.index)), errors="coerce")
    points = np.column_stack([out[OBJECTIVE_COLUMN].to_numpy(float), -hull.to_numpy(float)])
    out["pareto"] = False
    usable = passing.to_numpy() & np.isfinite(points).all(axis=1)
    out.loc[usable, "pareto"] = pareto_front(points[usable])
    out["_pass"] = (~passing).astype(int)
    out = out.sort_values(["_pass", OBJECTIVE_COLUMN, "id"], ascending=[True, False, True], na_position="last")
    out = out.drop(columns="_pass").reset_index(drop=True)
    out.insert(0, "rank", np.nan)
    n_pass = int(passing.sum())
    out.loc[: n_pass - 1, "rank"] = np.arange(1, n_pass + 1)
    out["rank"] = out["rank"].astype("Int64")
    return out


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Mask of the non-dominated rows of ``points`` (N, d), every column maximised.

    Row ``i`` is dominated when some row ``j`` is ``>=`` in every column and ``>`` in one;
    equal rows do not dominate each other (both stay on the front).
    """
    p = np.asarray(points, dtype=float)
    if p.size == 0:
        return np.zeros(0, dtype=bool)
    if p.shape[1] != 2:  # general case, O(N^2) memory
        ge = np.all(p[None, :, :] >= p[:, None, :], axis=2)  # ge[i, j]: j >= i everywhere
        gt = np.any(p[None, :, :] > p[:, None, :], axis=2)
        return np.asarray(~np.any(ge & gt, axis=1), dtype=bool)
    # two objectives: sweep by decreasing x, O(N log N)
    keep = np.zeros(len(p), dtype=bool)
    best_y = -np.inf  # highest y among points of strictly larger x
    order = np.lexsort((-p[:, 1], -p[:, 0]))
    start = 0
    while start < len(order):
        stop = start
        while stop < len(order) and p[order[stop], 0] == p[order[start], 0]:
            stop += 1
        group = order[start:stop]
        group_max = p[group, 1].max()
        keep[group] = (p[group, 1] > best_y) & (p[group, 1] >= group_max)
        best_y = max(best_y, group_max)
        start = stop
    return keep
