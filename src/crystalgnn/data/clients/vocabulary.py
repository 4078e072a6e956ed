"""One vocabulary for the databases' property fields: each provider field -> a crystalgnn label
name and unit, with the conversion applied (SI -> eV, sentinels -> missing).

:data:`UNITS` fixes the unit of every crystalgnn name; every :class:`FieldMap` converts into
exactly that unit (a test checks it), so rows from several databases carry consistent units.
:func:`markdown_table` renders the table that ``docs/data_clients.md`` shows.

Field names follow the providers' own documentation (``/info/structures`` of each OPTIMADE
server, emmet's documents for the Materials Project) as of 2026; a provider may rename a field,
in which case the label is simply missing (``null``) in its rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: 1 J in eV (CODATA 2018, exact)
J_TO_EV = 1.0 / 1.602176634e-19
#: 1 m³ in Å³
M3_TO_A3 = 1e30

#: the unit of each crystalgnn label name (the catalog's units for the same names)
UNITS: dict[str, str] = {
    "formation_energy_per_atom": "eV/atom",
    "e_above_hull": "eV/atom",
    "energy_per_atom": "eV/atom",
    "uncorrected_energy_per_atom": "eV/atom",
    "energy": "eV/cell",
    "band_gap": "eV",
    "band_gap_mbj": "eV",
    "efermi": "eV",
    "is_metal": "class",
    "volume": "Å^3",
    "density": "g/cm^3",
    "total_magnetization": "μB",
    "bulk_modulus_vrh": "GPa",
    "shear_modulus_vrh": "GPa",
    "bulk_modulus_voigt": "GPa",
    "shear_modulus_voigt": "GPa",
    "homogeneous_poisson": "",
    # insertion electrodes (the catalog's ELECTRODE_UNITS)
    "average_voltage": "V",
    "max_voltage_step": "V",
    "capacity_grav": "mAh/g",
    "capacity_vol": "mAh/cm^3",
    "energy_grav": "Wh/kg",
    "energy_vol": "Wh/L",
    "max_delta_volume": "",
    "stability_charge": "eV/atom",
    "stability_discharge": "eV/atom",
    "fracA_charge": "",
    "fracA_discharge": "",
}


@dataclass(frozen=True)
class FieldMap:
    """One provider field and how it becomes a crystalgnn label.

    Attributes:
        source: the provider's field; a dotted path reads into nested objects
            (``bulk_modulus.vrh``, ``_mp_stability.gga_gga+u.energy_above_hull``).
        name: the crystalgnn label name (a key of :data:`UNITS`).
        source_unit: the unit the provider serves.
        factor: multiplies the served value (``J_TO_EV`` for NOMAD's joules).
        sentinels: served values that mean "not computed" (JARVIS ``-99999``): missing.
        note: what else happens (shown in the docs table).
    """

    source: str
    name: str
    source_unit: str
    factor: float = 1.0
    sentinels: tuple[float, ...] = ()
    note: str = ""

    @property
    def unit(self) -> str:
        return UNITS[self.name]

    @property
    def top_field(self) -> str:
        """The field to request from the server (the first part of a dotted path)."""
        return self.source.split(".", 1)[0]

    def read(self, record: dict[str, Any]) -> Any:
        """The raw value at ``source`` in ``record`` (``None`` when absent)."""
        value: Any = record
        for part in _path(self.source):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    def convert(self, raw: Any) -> float | None:
        """The value in :attr:`unit`; ``None`` for null, sentinels, NaN and non-numbers.

        Booleans become 1.0 / 0.0 (``is_metal``); a list of numbers (NOMAD serves a band gap
        per spin channel) becomes its smallest value.
        """
        if isinstance(raw, (list, tuple)):
            nums = [v for v in (self.convert(x) for x in raw) if v is not None]
            return min(nums) if nums else None
        if raw is None:
            return None
        if isinstance(raw, bool):
            return float(raw)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(value) or any(value == s for s in self.sentinels):
            return None
        return value * self.factor


def _path(source: str) -> list[str]:
    # "_mp_stability.gga_gga+u.energy_above_hull": thermo type names hold no dots
    return source.split(".")


def convert_record(record: dict[str, Any], fields: tuple[FieldMap, ...]) -> dict[str, float | None]:
    """Every mapped label of ``record`` (the first source with a value wins for a name)."""
    out: dict[str, float | None] = {}
    for f in fields:
        if out.get(f.name) is None:
            out[f.name] = f.convert(f.read(record))
    return out


# --------------------------------------------------------------------------- Materials Project (mp-api)
_EV_ATOM = "eV/atom"
MP_SUMMARY: tuple[FieldMap, ...] = (
    FieldMap("formation_energy_per_atom", "formation_energy_per_atom", _EV_ATOM),
    FieldMap("energy_above_hull", "e_above_hull", _EV_ATOM),
    FieldMap("energy_per_atom", "energy_per_atom", _EV_ATOM),
    FieldMap("band_gap", "band_gap", "eV"),
    FieldMap("efermi", "efermi", "eV"),
    FieldMap("is_metal", "is_metal", "true/false", note="true -> 1, false -> 0"),
    FieldMap("volume", "volume", "Å^3"),
    FieldMap("density", "density", "g/cm^3"),
    FieldMap("total_magnetization", "total_magnetization", "μB"),
    FieldMap("bulk_modulus.vrh", "bulk_modulus_vrh", "GPa"),
    FieldMap("shear_modulus.vrh", "shear_modulus_vrh", "GPa"),
    FieldMap("homogeneous_poisson", "homogeneous_poisson", ""),
)
MP_THERMO: tuple[FieldMap, ...] = (
    FieldMap("formation_energy_per_atom", "formation_energy_per_atom", _EV_ATOM),
    FieldMap("energy_above_hull", "e_above_hull", _EV_ATOM),
    FieldMap("energy_per_atom", "energy_per_atom", _EV_ATOM),
    FieldMap("uncorrected_energy_per_atom", "uncorrected_energy_per_atom", _EV_ATOM),
)
MP_ELECTRODES: tuple[FieldMap, ...] = (
    FieldMap("average_voltage", "average_voltage", "V"),
    FieldMap("max_voltage_step", "max_voltage_step", "V"),
    FieldMap("capacity_grav", "capacity_grav", "mAh/g"),
    FieldMap("capacity_vol", "capacity_vol", "mAh/cc", note="mAh/cc = mAh/cm^3"),
    FieldMap("energy_grav", "energy_grav", "Wh/kg"),
    FieldMap("energy_vol", "energy_vol", "Wh/l"),
    FieldMap("max_delta_volume", "max_delta_volume", ""),
    FieldMap("stability_charge", "stability_charge", _EV_ATOM),
    FieldMap("stability_discharge", "stability_discharge", _EV_ATOM),
    FieldMap("fracA_charge", "fracA_charge", ""),
    FieldMap("fracA_discharge", "fracA_discharge", ""),
)
#: the mp-api routes ``crystalgnn data fetch mp --kind`` reads: (fields, primary key)
MP_KINDS: dict[str, tuple[tuple[FieldMap, ...], str]] = {
    "summary": (MP_SUMMARY, "material_id"),
    "thermo": (MP_THERMO, "material_id"),
    "electrodes": (MP_ELECTRODES, "battery_id"),
}


# --------------------------------------------------------------------------- OPTIMADE providers
@dataclass(frozen=True)
class Provider:
    """An OPTIMADE database: its public base URL and the fields mapped from it."""

    name: str
    title: str
    base_url: str
    fields: tuple[FieldMap, ...]


def _jarvis(source: str, name: str, unit: str, note: str = "") -> FieldMap:
    """JARVIS serves -99999 for "not computed"."""
    return FieldMap(source, name, unit, sentinels=(-99999.0,), note=note + "-99999 -> missing")


PROVIDERS: dict[str, Provider] = {
    "oqmd": Provider(
        "oqmd",
        "OQMD",
        "https://oqmd.org/optimade",
        (
            FieldMap("_oqmd_delta_e", "formation_energy_per_atom", _EV_ATOM),
            FieldMap("_oqmd_stability", "e_above_hull", _EV_ATOM, note="OQMD's hull distance (stability)"),
            FieldMap("_oqmd_band_gap", "band_gap", "eV"),
        ),
    ),
    "nomad": Provider(
        "nomad",
        "NOMAD",
        "https://nomad-lab.eu/prod/v1/optimade",
        (
            FieldMap(
                "_nmd_results_properties_electronic_band_structure_electronic_band_gap_value",
                "band_gap",
                "J",
                factor=J_TO_EV,
                note="SI joules × 6.2415e18; per spin channel: the smallest",
            ),
            FieldMap(
                "_nmd_results_properties_electronic_dos_electronic_band_gap_value",
                "band_gap",
                "J",
                factor=J_TO_EV,
                note="used when the band-structure gap is missing",
            ),
            FieldMap(
                "_nmd_results_properties_structures_structure_conventional_cell_volume",
                "volume",
                "m^3",
                factor=M3_TO_A3,
                note="SI m³ × 1e30 (conventional cell)",
            ),
        ),
    ),
    "alexandria": Provider(
        "alexandria",
        "Alexandria (PBE)",
        "https://alexandria.icams.rub.de/pbe",
        (
            FieldMap("_alexandria_formation_energy_per_atom", "formation_energy_per_atom", _EV_ATOM),
            FieldMap("_alexandria_hull_distance", "e_above_hull", _EV_ATOM),
            FieldMap("_alexandria_band_gap", "band_gap", "eV"),
            FieldMap("_alexandria_energy", "energy", "eV/cell"),
        ),
    ),
    "jarvis": Provider(
        "jarvis",
        "JARVIS-DFT",
        "https://jarvis.nist.gov/optimade/jarvisdft",
        (
            _jarvis("_jarvis_formation_energy_peratom", "formation_energy_per_atom", _EV_ATOM),
            _jarvis("_jarvis_ehull", "e_above_hull", _EV_ATOM),
            _jarvis("_jarvis_optb88vdw_bandgap", "band_gap", "eV", "OptB88vdW functional; "),
            _jarvis("_jarvis_mbj_bandgap", "band_gap_mbj", "eV"),
            _jarvis("_jarvis_bulk_modulus_kv", "bulk_modulus_voigt", "GPa"),
            _jarvis("_jarvis_shear_modulus_gv", "shear_modulus_voigt", "GPa"),
        ),
    ),
    "mp": Provider(
        "mp",
        "Materials Project (OPTIMADE)",
        "https://optimade.materialsproject.org",
        (
            FieldMap("_mp_stability.gga_gga+u.formation_energy_per_atom", "formation_energy_per_atom", _EV_ATOM),
            FieldMap("_mp_stability.gga_gga+u.energy_above_hull", "e_above_hull", _EV_ATOM),
        ),
    ),
}


def select_fields(fields: tuple[FieldMap, ...], names: list[str] | None) -> tuple[FieldMap, ...]:
    """The maps whose crystalgnn name or provider field is in ``names`` (all without ``names``).

    Raises:
        ValueError: naming the fields that no map knows.
    """
    if not names:
        return fields
    known = {f.name for f in fields} | {f.source for f in fields} | {f.top_field for f in fields}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted({f.name for f in fields}))}")
    return tuple(f for f in fields if f.name in names or f.source in names or f.top_field in names)


def markdown_table() -> str:
    """The field and unit table of every client (``docs/data_clients.md``)."""
    lines = [
        "| database | provider field | crystalgnn label | unit | served as | conversion |",
        "|---|---|---|---|---|---|",
    ]
    groups: list[tuple[str, tuple[FieldMap, ...]]] = [
        (f"Materials Project (mp-api, {kind})", fields) for kind, (fields, _) in MP_KINDS.items()
    ]
    groups += [(f"{p.title} (OPTIMADE `{p.name}`)", p.fields) for p in PROVIDERS.values()]
    for title, fields in groups:
        for f in fields:
            conv = f"× {f.factor:.6g}" if f.factor != 1.0 else "none"
            if f.note:
                conv += f"; {f.note}"
            lines.append(f"| {title} | `{f.source}` | `{f.name}` | {f.unit or '-'} | {f.source_unit or '-'} | {conv} |")
    return "\n".join(lines) + "\n"
