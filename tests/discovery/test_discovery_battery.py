"""Capacities, energies, voltage (against pymatgen's battery tools) and hull distances."""

from __future__ import annotations

import pytest
from pymatgen.apps.battery.insertion_battery import InsertionElectrode, InsertionVoltagePair
from pymatgen.core import Composition
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry

from crystalgnn.data.examples import cathode_examples
from crystalgnn.discovery.battery import (
    insertion_pair,
    ion_charge,
    redox_limited_dx,
    voltage_from_formation_energies,
)
from crystalgnn.discovery.candidates import Candidate, oxidation_guess
from crystalgnn.discovery.end_members import charged_end_member


def test_textbook_capacities() -> None:
    assert insertion_pair(Composition("LiCoO2"), Composition("CoO2"), "Li").capacity_grav == pytest.approx(
        273.8, abs=0.5
    )
    assert insertion_pair(Composition("LiFePO4"), Composition("FePO4"), "Li").capacity_grav == pytest.approx(
        170.0, abs=0.5
    )
    # normalisation per framework unit: cell size does not matter, half delithiation halves it
    half = insertion_pair(Composition("Li2Co2O4"), Composition("LiCo2O4"), "Li")
    assert half.dx == 0.5 and half.capacity_grav == pytest.approx(273.8 / 2, abs=0.3)
    assert ion_charge("Mg") == 2 and ion_charge("Li") == 1
    mg = insertion_pair(Composition("MgMn2O4"), Composition("Mn2O4"), "Mg")
    assert (mg.framework, mg.dx, mg.charge_per_unit) == ("MnO2", 0.5, 1.0)  # per reduced framework


@pytest.mark.parametrize(
    ("formula", "ion", "expected"),
    [
        ("LiCoO2", "Li", 1.0),  # Co3+ -> Co4+: every Li can leave (274 mAh/g stands)
        ("LiFePO4", "Li", 1.0),  # Fe2+ -> Fe3+ needs one of the two available electrons
        ("Li8CrO6", "Li", 2.0 / 8.0),  # Cr4+ -> Cr6+: 2 of the 8 Li
        ("Li5FeO4", "Li", 1.0 / 5.0),  # Fe3+ -> Fe4+: 1 of 5 Li
        ("Li2MnO3", "Li", 0.0),  # Mn4+ already: no cation redox left
        ("Li2NiMn3O8", "Li", 1.0),  # LiNi0.5Mn1.5O4: Ni2+ -> Ni4+ carries both Li
        ("MgMn2O4", "Mg", 1.0),  # Mn3+ -> Mn4+: two electrons per 2 Mn = one Mg2+
    ],
)
def test_redox_limited_dx(formula: str, ion: str, expected: float) -> None:
    comp = Composition(formula)
    oxidation = oxidation_guess(comp)
    assert oxidation is not None
    x_present = insertion_pair(comp, Composition({el: n for el, n in comp.items() if el.symbol != ion}), ion).dx
    assert redox_limited_dx(oxidation, comp, ion) == pytest.approx(expected * x_present)


def test_bad_pairs_raise() -> None:
    with pytest.raises(ValueError, match="frameworks differ"):
        insertion_pair(Composition("LiCoO2"), Composition("NiO2"), "Li")
    with pytest.raises(ValueError, match="more Li"):
        insertion_pair(Composition("CoO2"), Composition("LiCoO2"), "Li")


@pytest.mark.parametrize(("name", "ef_d", "ef_c"), [("LiCoO2", -1.85, -1.20), ("LiFePO4", -2.54, -2.39)])
def test_quantities_equal_pymatgen(name: str, ef_d: float, ef_c: float) -> None:
    discharged = cathode_examples()[name] * (1, 1, 2)
    charged = charged_end_member(Candidate(name, discharged, name, (), "Li")).structure
    charged.scale_lattice(charged.volume * 0.93)  # a volume change to compare
    e_d = ComputedStructureEntry(discharged, ef_d * len(discharged))
    e_c = ComputedStructureEntry(charged, ef_c * len(charged))
    li = ComputedEntry("Li", 0.0)
    vpair = InsertionVoltagePair.from_entries(e_c, e_d, li)
    electrode = InsertionElectrode.from_entries([e_d, e_c], li)
    voltage = voltage_from_formation_energies(discharged, ef_d, charged, ef_c, "Li")
    assert voltage == pytest.approx(vpair.voltage, rel=1e-9)
    assert voltage > 0
    pair = insertion_pair(discharged, charged, "Li")
    assert pair.capacity_grav == pytest.approx(electrode.get_capacity_grav(), rel=1e-9)
    assert pair.capacity_vol == pytest.approx(electrode.get_capacity_vol(), rel=1e-9)
    assert pair.specific_energy(voltage) == pytest.approx(electrode.get_specific_energy(), rel=1e-9)
    assert pair.energy_density(voltage) == pytest.approx(electrode.get_energy_density(), rel=1e-9)
    assert pair.volume_change == pytest.approx(electrode.max_delta_volume, rel=1e-9)


@pytest.mark.parametrize(
    ("ion", "discharged", "charged"), [("Mg", "MgMn2O4", "Mn2O4"), ("Na", "Na2Fe2(SO4)3", "NaFe2(SO4)3")]
)
def test_voltage_and_capacity_per_ion_charge(ion: str, discharged: str, charged: str) -> None:
    comp_d, comp_c = Composition(discharged), Composition(charged)
    ef_d, ef_c = -2.3, -2.0
    e_d = ComputedEntry(comp_d, ef_d * comp_d.num_atoms)
    e_c = ComputedEntry(comp_c, ef_c * comp_c.num_atoms)
    metal = ComputedEntry(ion, 0.0)
    vpair = InsertionVoltagePair.from_entries(e_d, e_c, metal)
    electrode = InsertionElectrode.from_entries([e_d, e_c], metal)
    voltage = voltage_from_formation_energies(comp_d, ef_d, comp_c, ef_c, ion)
    assert voltage == pytest.approx(vpair.voltage, rel=1e-9)
    pair = insertion_pair(comp_d, comp_c, ion)
    assert pair.capacity_grav == pytest.approx(electrode.get_capacity_grav(), rel=1e-9)
    assert pair.specific_energy(voltage) == pytest.approx(electrode.get_specific_energy(), rel=1e-9)
    assert pair.capacity_vol is None and pair.energy_density(voltage) is None
