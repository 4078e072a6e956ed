"""Every predicted property of candidate insertion electrodes (discharged, charged) pairs.

For each pair, with the models of :class:`ScoringModels`:

- formation energy ``E_f`` (eV/atom) of both end members, and their energy above the reference
  hull (:class:`~crystalgnn.discovery.battery.HullReference`, ``PhaseDiagram``);
- average voltage two ways: (a) ``voltage_model``, a model of the MP electrodes' average
  voltage read on the discharged structure; (b) ``voltage_thermo`` from the two predicted
  formation energies, ``V = -[E_f(d) - E_f(c)] / (dx z)`` per framework unit (Aydinol et al.,
  Phys. Rev. B 56, 1354 (1997); :func:`~crystalgnn.discovery.battery.voltage_from_formation_energies`),
  and their agreement ``|a - b|``. ``voltage`` is (a) when available, else (b);
- gravimetric / volumetric capacity, specific energy, energy density and volume change
  (:func:`~crystalgnn.discovery.battery.insertion_pair`); ``dx`` (working ions per framework
  unit) is the end members' difference ``dx_end_members`` capped by what the cations' redox can
  deliver (:func:`~crystalgnn.discovery.battery.redox_limited_dx`), and the capacities follow it;
- band gap and metal probability of the discharged member (electronic conductivity).

Uncertainty: a deep ensemble (Lakshminarayanan et al., NeurIPS 2017) is evaluated member by
member and every derived number (hull distance, voltage, specific energy, ...) is computed per
member, so ``<name>_std`` is the members' population standard deviation of that number (which
keeps the correlation between the two end members' errors). Single models give NaN std.

Stages take lists and return lists (no global state), so a list of pairs can be split across
workers and the rows concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Composition, Structure

from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.discovery.battery import (
    framework_units,
    insertion_pair,
    ion_charge,
    redox_limited_dx,
)
from crystalgnn.discovery.candidates import Candidate, oxidation_guess
from crystalgnn.discovery.hull import HullReference
from crystalgnn.prediction import EnsemblePredictor, Predictor, predictable_graphs
from crystalgnn.progress import progress

PROPERTIES: tuple[str, ...] = (
    "formation_energy_discharged",
    "formation_energy_charged",
    "e_hull_discharged",
    "e_hull_charged",
    "voltage_model",
    "voltage_thermo",
    "voltage",
    "specific_energy",
    "energy_density",
    "band_gap",
    "metal_probability",
)
"""Predicted numbers that carry a ``_std`` column (NaN for single models)."""

TEXT_COLUMNS: tuple[str, ...] = (
    "id",
    "formula",
    "charged_formula",
    "working_ion",
    "lineage",
    "host",
    "steps",
    "known_as",
    "framework",
    "note",
    "voltage_source",
)
"""Columns of text (empty rather than missing when a row has nothing to say)."""

UNITS: dict[str, str] = {
    "formation_energy": "eV/atom",
    "e_hull": "eV/atom",
    "voltage": "V",
    "capacity_grav": "mAh/g",
    "capacity_vol": "mAh/cm^3",
    "specific_energy": "Wh/kg",
    "energy_density": "Wh/L",
    "band_gap": "eV",
    "metal_probability": "",
    "volume_change": "",
}


@dataclass
class ScoringModels:
    """The predictors of a screen (``None``: property not predicted; formation energy needed)."""

    formation: Predictor
    voltage: Predictor | None = None
    band_gap: Predictor | None = None
    metal: Predictor | None = None


def load_models(
    formation: str,
    voltage: str | None = None,
    band_gap: str | None = None,
    metal: str | None = None,
) -> tuple[ScoringModels, list[str]]:
    """The models by name or folder (``Predictor.load``) and one note per optional model that
    could not be loaded (that property is then skipped). A missing formation model raises.
    """
    notes: list[str] = []

    def optional(ref: str | None, what: str, consequence: str) -> Predictor | None:
        if ref is None:
            return None
        try:
            return Predictor.load(ref)
        except (FileNotFoundError, ValueError, OSError, KeyError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            notes.append(f"{what} model {ref!r} not available ({first[:160]}): {consequence}")
            return None

    models = ScoringModels(
        formation=Predictor.load(formation),
        voltage=optional(voltage, "voltage", "voltage (b) from predicted formation energies only"),
        band_gap=optional(band_gap, "band-gap", "no band gap"),
        metal=optional(metal, "metal-classifier", "no metal probability"),
    )
    return models, notes


GraphMemo = dict[tuple[int, str, tuple[int, ...]], tuple[list[Any], list[int]]]
"""Graphs already built within one scoring call: (structure list id, graph config, elements)."""


def member_predictions(
    predictor: Predictor,
    structures: Sequence[Structure],
    show_progress: bool = False,
    memo: GraphMemo | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """``(members, len(structures))`` first-target values (NaN where no graph could be built).

    A single model has one member; classifiers give P(class 1). With ``memo``, models that read
    the same graphs of the same structure list share them (built once). ``n_jobs``: graph
    building processes (``None``: the CPUs; 1 inside a daemonic cluster worker).
    """
    elements = predictor.supported_elements()
    key = (id(structures), predictor.graph_config.cache_key(), tuple(elements))
    if memo is not None and key in memo:
        graphs, keep = memo[key]
    else:
        ds = CrystalDataset(ids=[str(i) for i in range(len(structures))], structures=list(structures))
        graphs, keep, _ = predictable_graphs(
            ds, predictor.graph_config, elements, n_jobs=n_jobs, show_progress=show_progress
        )
        if memo is not None:
            memo[key] = (graphs, keep)
    members = predictor.members if isinstance(predictor, EnsemblePredictor) else [predictor]
    out = np.full((len(members), len(structures)), np.nan)
    if not graphs:
        return out
    for g in graphs:  # a previous model's dummy labels may have another width
        g.y = None
    for m, member in enumerate(members):
        values = np.asarray(Predictor.predict_graphs(member, graphs), dtype=float)
        out[m, keep] = values[:, 0] if values.ndim == 2 else values
    return out


def _put(row: dict[str, Any], name: str, members: np.ndarray | float) -> None:
    arr = np.atleast_1d(np.asarray(members, dtype=float))
    row[name] = float(arr.mean())
    row[name + "_std"] = float(arr.std()) if arr.size > 1 else float("nan")


def _atoms_per_unit(composition: Composition, ion: str) -> float:
    return composition.num_atoms / framework_units(composition, ion)[1]


def _identity(d: Candidate, c: Candidate) -> dict[str, Any]:
    return {
        "id": d.id,
        "formula": d.formula,
        "charged_formula": c.formula,
        "working_ion": d.working_ion,
        "lineage": d.lineage,
        "host": d.host_id,
        "steps": " > ".join(d.steps),
        "known": bool(d.known),
        "known_as": d.metadata.get("known_as", ""),
        "n_atoms": len(d.structure),
    }


def score_pairs(
    pairs: Sequence[tuple[Candidate, Candidate]],
    models: ScoringModels,
    hull: HullReference | None = None,
    show_progress: bool = False,
    n_jobs: int | None = None,
) -> list[dict[str, Any]]:
    """One row of properties (module docstring) per ``(discharged, charged)`` pair, in order
    (``n_jobs``: graph building processes, see :func:`member_predictions`).
    """
    n = len(pairs)
    if n == 0:
        return []
    discharged = [d.structure for d, _ in pairs]
    charged = [c.structure for _, c in pairs]
    comp_d = [d.composition for d, _ in pairs]
    comp_c = [c.composition for _, c in pairs]
    memo: GraphMemo = {}

    def predict(model: Predictor | None, structures: list[Structure]) -> np.ndarray | None:
        return None if model is None else member_predictions(model, structures, show_progress, memo, n_jobs)

    ef_d, ef_c = predict(models.formation, discharged), predict(models.formation, charged)
    assert ef_d is not None and ef_c is not None
    va, gap, metal = (
        predict(models.voltage, discharged),
        predict(models.band_gap, discharged),
        predict(models.metal, discharged),
    )
    # both members on the hull of the discharged system (the charged member's system is a face
    # of it), at the members' mean E_f; each member is then shifted by its own E_f (slope 1)
    hull_d = hull_c = np.full(n, np.nan)
    if hull is not None:
        hull_d = hull.e_above_hull_many(comp_d, ef_d.mean(axis=0))
        systems = [[el.symbol for el in comp.elements] for comp in comp_d]
        hull_c = hull.e_above_hull_many(comp_c, ef_c.mean(axis=0), systems)
    rows: list[dict[str, Any]] = []
    bar = progress(total=n, desc="scoring", disable=not show_progress)
    for i, (d, c) in enumerate(pairs):
        row = _identity(d, c)
        ion = str(d.working_ion)
        try:
            pair = insertion_pair(comp_d[i], comp_c[i], ion, (d.structure.volume, c.structure.volume))
        except ValueError as err:
            row["note"] = f"no insertion pair: {err}"
            rows.append(row)
            continue
        oxidation = oxidation_guess(comp_d[i])
        # the capacity the cations' redox can deliver (battery.redox_limited_dx); the full
        # removal of the end members when no oxidation states are found
        dx = pair.dx if oxidation is None else min(pair.dx, redox_limited_dx(oxidation, comp_d[i], ion))
        share = dx / pair.dx
        cap_g = float(pair.capacity_grav) * share  # pymatgen's masses carry units: plain floats here
        cap_v = np.nan if pair.capacity_vol is None else float(pair.capacity_vol) * share
        dv = np.nan if pair.volume_change is None else float(pair.volume_change)
        row.update(framework=pair.framework, dx=dx, dx_end_members=pair.dx, capacity_grav=cap_g, capacity_vol=cap_v)
        row.update(volume_change=dv, note="")
        _put(row, "formation_energy_discharged", ef_d[:, i])
        _put(row, "formation_energy_charged", ef_c[:, i])
        n_d, n_c = _atoms_per_unit(comp_d[i], ion), _atoms_per_unit(comp_c[i], ion)
        v_thermo = -(ef_d[:, i] * n_d - ef_c[:, i] * n_c) / (pair.dx * ion_charge(ion))
        _put(row, "voltage_thermo", v_thermo)
        for member, ef_m, hulls in (("discharged", ef_d[:, i], hull_d), ("charged", ef_c[:, i], hull_c)):
            _put(row, f"e_hull_{member}", ef_m - ef_m.mean() + hulls[i])  # NaN if any member is
        v_model = np.full(1, np.nan) if va is None else va[:, i]
        _put(row, "voltage_model", v_model)
        use_model = bool(np.isfinite(v_model).all())
        voltage = v_model if use_model else v_thermo
        row["voltage_source"] = "model" if use_model else "thermo"
        _put(row, "voltage", voltage)
        row["voltage_agreement"] = abs(row["voltage_model"] - row["voltage_thermo"])
        _put(row, "specific_energy", cap_g * voltage)
        _put(row, "energy_density", cap_v * voltage)
        _put(row, "band_gap", np.nan if gap is None else gap[:, i])
        _put(row, "metal_probability", np.nan if metal is None else metal[:, i])
        rows.append(row)
        bar.update()
    bar.close()
    return rows
