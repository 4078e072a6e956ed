"""Hull distances: the vectorised lower hull against pymatgen's PhaseDiagram."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pymatgen.analysis.phase_diagram import PDEntry
from pymatgen.core import Composition

from crystalgnn.discovery.hull import HullReference, LowerHull, chemical_system, fractions


def test_hull_distances() -> None:
    ref = HullReference([("Li2O", -2.0), ("Li2O2", -1.5), ("CoO", -1.3), ("Li2O", -1.9)])
    assert len(ref) == 4
    assert ref.e_above_hull("Li2O", -2.0) == pytest.approx(0.0)
    assert ref.e_above_hull("Li2O", -1.9) == pytest.approx(0.1)
    # LiO at -1.0 eV/atom: hull between Li2O (x_O = 1/3, -2.0) and Li2O2 (x_O = 1/2, -1.5)
    assert ref.e_above_hull("LiO", -1.0) == pytest.approx(0.5)
    # an unstable mix above the Li2O-CoO tie line, and a new phase below the hull
    assert ref.e_above_hull("Li2CoO2", -1.0) > 0
    assert ref.e_above_hull("LiCoO2", -2.5) < 0
    assert ref.hull(["Li", "O"]) is ref.hull(["O", "Li"])  # cached per chemical system
    assert ref.e_above_hull("Co", 0.0) == pytest.approx(0.0)  # an element on its own reference
    assert ref.e_above_hull("Co", 0.25) == pytest.approx(0.25)


def test_lower_hull_of_a_binary_by_hand() -> None:
    # A (0), AB at x_B = 1/2 (-1.0), AB3 at 3/4 (-0.2, above the AB-B line at -0.5), B (0)
    hull = LowerHull(["A", "B"], [(np.array([0.5, 0.5]), -1.0), (np.array([0.25, 0.75]), -0.2)])
    x = np.array([[1.0, 0.0], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75], [0.0, 1.0]])
    assert hull.energy(x) == pytest.approx([0.0, -0.5, -1.0, -0.5, 0.0])
    assert hull.points == 4  # AB3 is below the elements: a qhull point, just not on the hull
    # an entry above the elements takes no part
    above = LowerHull(["A", "B"], [(np.array([0.5, 0.5]), 0.3)])
    assert above.points == 2
    assert above.energy(x) == pytest.approx(np.zeros(5))


def test_many_agrees_with_one_at_a_time_and_supersystems() -> None:
    ref = HullReference([("Li2O", -2.0), ("CoO", -1.3), ("LiCoO2", -1.8), ("Co3O4", -1.4)])
    comps = [Composition(f) for f in ("LiCoO2", "CoO2", "Li2O", "Li")]
    ef = np.array([-1.7, -1.0, -2.0, np.nan])
    one = [ref.e_above_hull(c, e) for c, e in zip(comps[:3], ef[:3], strict=True)]
    many = ref.e_above_hull_many(comps, ef)
    assert many[:3] == pytest.approx(one)
    assert np.isnan(many[3])
    # the charged member read on the discharged system's hull: the same number
    sup = ref.e_above_hull_many(comps[:3], ef[:3], systems=[["Li", "Co", "O"]] * 3)
    assert sup == pytest.approx(one, abs=1e-10)


def test_equal_to_phase_diagram_on_mp36k(shared_data) -> None:
    """Energy above hull from the planes equals PhaseDiagram's decomposition, on real systems."""
    from crystalgnn.discovery.hull import load_reference_energies

    rows = load_reference_energies("mp-36k")
    ref = HullReference(rows)
    lowest = min(ef for f, ef in rows if f == "LiFePO4")
    assert ref.e_above_hull("LiFePO4", lowest) == pytest.approx(0.0, abs=1e-6)
    assert ref.e_above_hull("Li2FeP2O8", -2.0) > 0
    rng = random.Random(0)
    picks = [r for r in rng.sample(rows, 400) if 2 <= len(chemical_system(r[0])) <= 4][:60]
    picks += [("LiCoO2", -1.5), ("LiMn2O4", -2.0), ("LiFePO4", -2.6), ("LiNi0.5Mn1.5O4", -1.9), ("FePO4", -2.0)]
    for formula, ef in picks:
        comp = Composition(formula)
        pd = ref.phase_diagram(el.symbol for el in comp.elements)
        for shift in (-0.3, 0.0, 0.2):
            entry = PDEntry(comp, (ef + shift) * comp.num_atoms)
            expected = pd.get_decomp_and_e_above_hull(entry, allow_negative=True)[1]
            assert ref.e_above_hull(comp, ef + shift) == pytest.approx(expected, abs=1e-8), formula
    # a quaternary hull is built from every sub-system's references
    assert ref.hull(["Li", "Fe", "P", "O"]).points > 20
    assert fractions(Composition("LiFePO4"), ["Fe", "Li", "O", "P"]) == pytest.approx([1 / 7, 1 / 7, 4 / 7, 1 / 7])
