"""Battery quantities of an insertion electrode from its two end members.

Everything is normalised per formula unit of the *framework* (the composition without the
working ion, reduced), as pymatgen's ``InsertionVoltagePair`` does. With ``x_d``, ``x_c`` working
ions per framework unit in the discharged and charged member, ``dx = x_d - x_c``, ion charge
``z`` (pymatgen's convention: the ion's highest oxidation state), Faraday constant ``F``,
discharged molar mass ``M_d`` (g/mol per framework unit) and volume ``V_d`` (A^3 per unit):

- gravimetric capacity ``Q_g = dx z F / (3.6 M_d)`` in mAh/g (1 mAh = 3.6 C);
- volumetric capacity ``Q_v = dx z F / (3.6 N_A V_d 1e-24)`` in mAh/cm^3;
- specific energy ``Q_g V`` in Wh/kg and energy density ``Q_v V`` in Wh/L;
- thermodynamic average voltage from formation energies of the two members (Aydinol et al.,
  Phys. Rev. B 56, 1354 (1997)): ``V = -[E_f(d) - E_f(c) - dx mu_A] / (dx z)`` with ``E_f`` in
  eV per framework unit (``E_f`` per atom times atoms per unit); the elemental references
  cancel and the working-ion metal has formation energy ``mu_A = 0``;
- volume change ``max(V_d, V_c) / min(V_d, V_c) - 1`` (pymatgen's ``max_delta_volume``).

Capacities use the discharged mass and volume, as pymatgen's battery tools do (LiCoO2 gives
274 mAh/g for full delithiation). :func:`redox_limited_dx` caps ``dx`` by the charge the
redox-active cations can give up (the rule of pymatgen's ``BatteryAnalyzer.max_ion_removal``,
with the highest states reached in insertion cathodes, :data:`CATHODE_MAX_OXIDATION`, instead of
each element's highest known state): Li8CrO6 can lose 2 of its 8 Li (Cr4+ -> Cr6+), not all.
Hull distances of the members are in :mod:`~crystalgnn.discovery.hull`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from pymatgen.core import Composition, Element, Structure
from scipy.constants import N_A, physical_constants

FARADAY = physical_constants["Faraday constant"][0]
"""Faraday constant, C/mol."""


@lru_cache(maxsize=128)
def ion_charge(working_ion: str) -> int:
    """The charge ``z`` carried per ion: its highest oxidation state (pymatgen's convention)."""
    return int(abs(max(Element(working_ion).oxidation_states)))


def framework_units(composition: Composition, working_ion: str) -> tuple[str, float, float]:
    """``(framework reduced formula, framework units in composition, ions per unit)`` (cached
    per composition: a screen asks for the same ones many times).
    """
    return _framework_units(tuple(composition.get_el_amt_dict().items()), working_ion)


@lru_cache(maxsize=65536)
def _framework_units(amounts: tuple[tuple[str, float], ...], working_ion: str) -> tuple[str, float, float]:
    frame = Composition({el: n for el, n in amounts if el != working_ion})
    if len(frame) == 0:
        raise ValueError(f"{Composition(dict(amounts)).reduced_formula}: no framework besides {working_ion}")
    reduced, units = frame.get_reduced_composition_and_factor()
    return reduced.reduced_formula, float(units), float(dict(amounts).get(working_ion, 0.0)) / units


@dataclass(frozen=True)
class InsertionPair:
    """Two end members per framework unit (mass g/mol, volume A^3 or ``None``)."""

    framework: str
    working_ion: str
    dx: float
    mass_discharged: float
    volume_discharged: float | None
    volume_charged: float | None

    @property
    def charge_per_unit(self) -> float:
        """``dx z``: electrons transferred per framework unit."""
        return self.dx * ion_charge(self.working_ion)

    @property
    def capacity_grav(self) -> float:
        """Gravimetric capacity, mAh/g (discharged mass)."""
        return self.charge_per_unit * FARADAY / 3.6 / self.mass_discharged

    @property
    def capacity_vol(self) -> float | None:
        """Volumetric capacity, mAh/cm^3 (discharged volume), ``None`` without volumes."""
        if self.volume_discharged is None:
            return None
        return self.charge_per_unit * FARADAY / 3.6 / (N_A * self.volume_discharged * 1e-24)

    def specific_energy(self, voltage: float) -> float:
        """Specific energy at average ``voltage``, Wh/kg."""
        return self.capacity_grav * voltage

    def energy_density(self, voltage: float) -> float | None:
        """Energy density at average ``voltage``, Wh/L (``None`` without volumes)."""
        cap = self.capacity_vol
        return None if cap is None else cap * voltage

    @property
    def volume_change(self) -> float | None:
        """``max(V_d, V_c) / min(V_d, V_c) - 1`` per framework unit."""
        if self.volume_discharged is None or self.volume_charged is None:
            return None
        big = max(self.volume_discharged, self.volume_charged)
        return big / min(self.volume_discharged, self.volume_charged) - 1.0


def _as_comp_volume(member: Structure | Composition) -> tuple[Composition, float | None]:
    if isinstance(member, Structure):
        return member.composition, float(member.volume)
    return Composition(member), None


CATHODE_MAX_OXIDATION: dict[str, int] = {
    "Ti": 4, "V": 5, "Cr": 6, "Mn": 4, "Fe": 4, "Co": 4, "Ni": 4, "Cu": 3, "Nb": 5, "Mo": 6, "W": 6,
}  # fmt: skip
"""Highest oxidation state of each redox-active cation in an insertion cathode (Mn4+ in LiMn2O4
spinel, Fe4+ / Co4+ / Ni4+ of delithiated oxides, V5+ of vanadates, Cr6+ of Li-rich chromates,
Cu3+). pymatgen's ``Element.max_oxidation_state`` (Mn 7, Fe 6, Co 5) bounds oxides nobody
cycles; other elements are not oxidised."""


def redox_limited_dx(
    oxidation: Mapping[str, float],
    composition: Composition,
    working_ion: str,
    max_oxidation: Mapping[str, int] | None = None,
) -> float:
    """Working ions per framework unit that can leave before the cations reach their highest
    states: ``sum_M n_M max(0, q_max(M) - q(M)) / z`` over the redox-active cations ``M``
    (``oxidation``: the states of the discharged member, e.g. from ``oxi_state_guesses``), not
    more than the ions present.
    """
    limits = CATHODE_MAX_OXIDATION if max_oxidation is None else max_oxidation
    _, units, x = framework_units(composition, working_ion)
    spare = sum(max(0.0, limits[el] - q) * float(composition[el]) for el, q in oxidation.items() if el in limits)
    return min(x, spare / units / ion_charge(working_ion))


def insertion_pair(
    discharged: Structure | Composition,
    charged: Structure | Composition,
    working_ion: str,
    volumes: tuple[float, float] | None = None,
) -> InsertionPair:
    """The :class:`InsertionPair` of two end members (structures give volumes too, as do
    ``volumes``, the cell volumes of two compositions).

    Raises ``ValueError`` when the frameworks differ or the discharged member does not hold
    more working ion per framework unit than the charged one.
    """
    comp_d, vol_d = _as_comp_volume(discharged)
    comp_c, vol_c = _as_comp_volume(charged)
    if volumes is not None:
        vol_d, vol_c = volumes
    frame_d, units_d, x_d = framework_units(comp_d, working_ion)
    frame_c, units_c, x_c = framework_units(comp_c, working_ion)
    if frame_d != frame_c:
        raise ValueError(f"frameworks differ: {frame_d} (discharged) vs {frame_c} (charged)")
    if x_d <= x_c:
        raise ValueError(f"discharged member must hold more {working_ion} than the charged one")
    return InsertionPair(
        framework=frame_d,
        working_ion=working_ion,
        dx=x_d - x_c,
        mass_discharged=comp_d.weight / units_d,
        volume_discharged=None if vol_d is None else vol_d / units_d,
        volume_charged=None if vol_c is None else vol_c / units_c,
    )


def voltage_from_formation_energies(
    discharged: Structure | Composition,
    ef_discharged: float,
    charged: Structure | Composition,
    ef_charged: float,
    working_ion: str,
) -> float:
    """Average voltage (V vs the working-ion metal) from formation energies in eV/atom."""
    comp_d, _ = _as_comp_volume(discharged)
    comp_c, _ = _as_comp_volume(charged)
    pair = insertion_pair(comp_d, comp_c, working_ion)
    n_d = comp_d.num_atoms / framework_units(comp_d, working_ion)[1]
    n_c = comp_c.num_atoms / framework_units(comp_c, working_ion)[1]
    e_d, e_c = ef_discharged * n_d, ef_charged * n_c
    return -(e_d - e_c) / (pair.dx * ion_charge(working_ion))
