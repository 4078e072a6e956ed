"""Candidate records, host checks, validity filters, duplicate removal, known flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import DummySpecies, Lattice, Structure
from pymatgen.core.operations import SymmOp

from crystalgnn.data.examples import cathode_examples, examples_dir
from crystalgnn.discovery.candidates import (
    Candidate,
    electronegativity_reason,
    filter_valid,
    flag_known,
    hosts_from,
    identical_structures,
    invalid_reason,
    load_hosts,
    min_distance,
    oxidation_guess,
    remove_duplicates,
)


@pytest.fixture(scope="module")
def cathodes() -> dict[str, Structure]:
    return cathode_examples()


def test_charge_balance_known_cases() -> None:
    assert oxidation_guess("LiCoO2") == {"Li": 1.0, "Co": 3.0, "O": -2.0}
    assert oxidation_guess("LiFePO4")["Fe"] == 2.0
    assert oxidation_guess("LiCoO3") is None
    assert oxidation_guess("NaCl2") is None


def test_electronegativity_rule() -> None:
    assert electronegativity_reason({"Li": 1.0, "O": -2.0}) is None
    assert "not an anion" in (electronegativity_reason({"Li": -1.0, "O": 2.0}) or "")


def test_validity_filters(cathodes: dict[str, Structure]) -> None:
    good = cathodes["LiCoO2"]
    assert invalid_reason(good) is None
    squeezed = good.copy()
    squeezed.scale_lattice(good.volume * 0.05)
    assert "apart" in (invalid_reason(squeezed) or "")
    wrong = good.copy()
    wrong.append("O", [0.5, 0.0, 0.0])  # LiCoO3: no charge-balanced oxidation states
    kept, rejected = filter_valid(
        [Candidate("a", good, "a"), Candidate("b", squeezed, "b"), Candidate("c", wrong, "c")]
    )
    assert [c.id for c in kept] == ["a"]
    assert {r.id for r in rejected} == {"b", "c"}
    assert "charge-balanced" in rejected[1].reason
    assert all("\n" not in r.reason for r in rejected)


def test_min_distance_counts_periodic_images() -> None:
    s = Structure(Lattice.cubic(1.5), ["Cu"], [[0, 0, 0]])
    assert min_distance(s) == pytest.approx(1.5)
    assert invalid_reason(s, min_dist=2.0, check_charge=False) is not None


def test_bad_hosts_are_named_and_valid_kept(cathodes: dict[str, Structure]) -> None:
    disordered = cathodes["LiCoO2"].copy()
    disordered.replace_species({"Co": {"Co": 0.5, "Ni": 0.5}})
    dummy = cathodes["LiCoO2"].copy()
    dummy.replace_species({"Co": DummySpecies("X")})
    no_li = cathodes["LiCoO2"].copy()
    no_li.replace_species({"Li": "Na"})
    items = [("ok1", cathodes["LiCoO2"]), ("dis", disordered), ("dummy", dummy), ("noli", no_li)]
    items.append(("ok2", cathodes["LiFePO4"]))
    hosts, rejected = hosts_from(items, working_ion="Li")
    assert [h.id for h in hosts] == ["ok1", "ok2"]
    reasons = {r.id: r.reason for r in rejected}
    assert "disordered" in reasons["dis"]
    assert "unknown elements" in reasons["dummy"]
    assert "no Li" in reasons["noli"]
    # without a working ion requirement the Na host is fine
    hosts, _ = hosts_from([("noli", no_li)])
    assert len(hosts) == 1


def test_load_hosts_from_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "hosts"
    folder.mkdir()
    for name in ("LiCoO2", "LiFePO4"):
        (folder / f"{name}.cif").write_text((examples_dir() / f"{name}.cif").read_text())
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a 1\n")
    na = cathode_examples()["LiCoO2"].copy()
    na.replace_species({"Li": "Na"})
    na.to(filename=str(folder / "NaCoO2.cif"))
    hosts, rejected = load_hosts(folder, working_ion="Li", n_jobs=1)
    assert sorted(h.id for h in hosts) == ["LiCoO2", "LiFePO4"]
    assert all(h.working_ion == "Li" for h in hosts)
    reasons = {r.id: r.reason for r in rejected}
    assert set(reasons) == {"broken", "NaCoO2"}
    assert "no Li" in reasons["NaCoO2"]


def test_duplicates_translated_rotated_supercell(cathodes: dict[str, Structure]) -> None:
    base = cathodes["LiCoO2"]
    translated = base.copy()
    translated.translate_sites(list(range(len(base))), [0.13, 0.27, 0.41])
    rotated = base.copy()
    rotated.apply_operation(SymmOp.from_axis_angle_and_translation([1, 2, 3], 37.0))
    supercell = base * (2, 1, 1)
    cands = [
        Candidate("base", base, "h"),
        Candidate("t", translated, "h"),
        Candidate("nio2", cathodes["LiNiO2"], "h"),
        Candidate("r", rotated, "h"),
        Candidate("s", supercell, "h"),
        Candidate("same", base, "h2"),  # the very same Structure object
    ]
    unique, dup = remove_duplicates(cands)
    assert [c.id for c in unique] == ["base", "nio2"]
    assert dup == {"t": "base", "r": "base", "s": "base", "same": "base"}
    assert not np.allclose(rotated.lattice.matrix, base.lattice.matrix)


def test_flag_known(cathodes: dict[str, Structure]) -> None:
    cands = [Candidate("x", cathodes["LiCoO2"] * (1, 1, 2), "h"), Candidate("y", cathodes["LiFePO4"], "h")]
    flagged = flag_known(cands, [("mp-22526", cathodes["LiCoO2"]), ("other", cathodes["LiNiO2"])])
    assert [c.known for c in flagged] == [True, False]
    assert flagged[0].metadata["known_as"] == "mp-22526"


def test_flag_known_reduces_once_with_the_same_matches_as_pymatgen(cathodes: dict[str, Structure]) -> None:
    """The default path (each structure reduced once, then ``skip_structure_reduction``) flags
    exactly what ``StructureMatcher.fit`` on the raw structures matches."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    lco = cathodes["LiCoO2"]
    stretched = lco.copy()
    stretched.apply_strain([0.0, 0.0, 0.6])  # a shape change beyond ltol: no match
    strained = lco.copy()
    strained.apply_strain([0.02, -0.01, 0.03])  # within tolerances: a match
    shaken = lco * (2, 1, 1)
    shaken.perturb(0.05, min_distance=0.0)
    refs = [("r-strained", strained), ("r-other", cathodes["LiNiO2"])]
    probes = [lco * (1, 1, 2), stretched, shaken, cathodes["LiNiO2"] * (2, 2, 1)]
    cands = [Candidate(f"c{i}", s, "h") for i, s in enumerate(probes)]
    fast = flag_known(cands, refs)
    reference = flag_known(cands, refs, matcher=StructureMatcher(attempt_supercell=True))
    sm = StructureMatcher(attempt_supercell=True)
    expected = [
        any(sm.fit(s, r) for _, r in refs if r.composition.reduced_formula == s.composition.reduced_formula)
        for s in probes
    ]
    assert [c.known for c in fast] == [c.known for c in reference] == expected
    assert expected == [True, False, True, True]  # the case list exercises both outcomes
    assert [c.metadata.get("known_as") for c in fast] == ["r-strained", None, "r-strained", "r-other"]


def test_flag_known_names_a_host_read_from_the_references_by_its_own_id(cathodes: dict[str, Structure]) -> None:
    lco = cathodes["LiCoO2"]
    wrapped = lco.copy()  # the same cell read again, one position given as its periodic image
    wrapped.translate_sites([0], [1.0, 0.0, 0.0], frac_coords=True, to_unit_cell=False)
    moved = lco.copy()
    moved.apply_strain([0.5, 0.0, 0.0])  # same id, another structure: no shortcut, no match
    refs = [("first", lco), ("host-a", lco), ("host-b", lco)]
    cands = [Candidate("host-a", wrapped, "host-a"), Candidate("host-b", moved, "host-b"), Candidate("z", lco, "h")]
    flagged = flag_known(cands, refs)
    assert [c.metadata.get("known_as") for c in flagged] == ["host-a", None, "first"]
    assert identical_structures(lco, wrapped)
    assert not identical_structures(lco, moved)
    assert not identical_structures(lco, cathodes["LiNiO2"])


def test_lineage_of_derived_candidates(cathodes: dict[str, Structure]) -> None:
    host = Candidate("mp-1", cathodes["LiCoO2"], "mp-1", (), "Li")
    child = host.derive(cathodes["LiNiO2"], "sub Co->Ni", note=1).derive(cathodes["LiNiO2"], "x")
    assert child.lineage == "mp-1 > sub Co->Ni > x"
    assert child.id == "mp-1|sub Co->Ni|x"
    assert child.metadata == {"note": 1}
    assert child.working_ion == "Li"


def test_candidates_pickle_as_arrays_and_come_back_equal(cathodes: dict[str, Structure]) -> None:
    import json
    import pickle

    lco = cathodes["LiCoO2"].copy()
    lco.add_site_property("magmom", [0.5 * i for i in range(len(lco))])
    lco.properties["source"] = "test"
    disordered = cathodes["LiFePO4"].copy()
    disordered.replace(0, {"Li": 0.5, "Na": 0.5})
    float_occupancy = Structure(lco.lattice, [{"Co": 1.0}, {"O": 1}], [[0, 0, 0], [0.5, 0.5, 0.5]])
    for structure in (lco, disordered, float_occupancy):
        cand = Candidate("c|sub Co->Ni", structure, "c", ("sub Co->Ni",), "Li", True, {"known_as": "mp-1"})
        assert cand.formula  # fills the cached composition, which is not sent
        back = pickle.loads(pickle.dumps(cand))
        assert back == cand  # dataclass fields, the Structure by pymatgen's equality
        assert "composition" not in vars(back)
        s, t = cand.structure, back.structure
        assert np.array_equal(s.lattice.matrix, t.lattice.matrix)
        assert np.array_equal(s.frac_coords, t.frac_coords)
        assert [site.species for site in s] == [site.species for site in t]
        assert s.site_properties == t.site_properties
        assert s.labels == t.labels
        assert s.properties == t.properties
        assert json.dumps(s.as_dict()) == json.dumps(t.as_dict())  # what the screen's files hold
    big = Candidate("big", cathodes["LiFePO4"] * (2, 1, 1), "big")
    assert len(pickle.dumps(big)) < 0.5 * len(pickle.dumps(big.structure))  # arrays, not site objects
