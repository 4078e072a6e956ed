"""Substitution rules, probabilistic substitution, prototypes and end members."""

from __future__ import annotations

import pytest
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from crystalgnn.data.examples import cathode_examples
from crystalgnn.discovery.candidates import Candidate, hosts_from, invalid_reason, oxidation_guess
from crystalgnn.discovery.end_members import (
    EndMemberError,
    charged_end_member,
    discharged_end_member,
    end_member_pairs,
)
from crystalgnn.discovery.prototypes import (
    PROTOTYPES,
    PrototypeError,
    build_prototype,
    decorate_prototypes,
    parent_structure,
)
from crystalgnn.discovery.substitution import (
    RuleError,
    SubstitutionRule,
    apply_rules,
    parse_rules,
    probable_substitutions,
)


@pytest.fixture(scope="module")
def hosts() -> dict[str, Candidate]:
    found, rejected = hosts_from(cathode_examples().items(), working_ion="Li")
    assert not rejected
    return {h.id: h for h in found}


def test_parse_rules() -> None:
    rules = parse_rules("Co->Ni,Mn,Fe; P -> Si, S")
    assert rules == [SubstitutionRule("Co", ("Ni", "Mn", "Fe")), SubstitutionRule("P", ("Si", "S"))]
    assert parse_rules("co->ni fe->mn") == [SubstitutionRule("Co", ("Ni",)), SubstitutionRule("Fe", ("Mn",))]
    assert parse_rules(["Co->Ni"]) == [SubstitutionRule("Co", ("Ni",))]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Co->", "form"),
        ("Xx->Ni", "unknown element"),
        ("Co->Co", "by itself"),
        ("Co->Ni Co->Mn", "two rules"),
        ("", "no substitution"),
    ],
)
def test_bad_rules_give_one_line_errors(text: str, needle: str) -> None:
    with pytest.raises(RuleError, match=needle) as err:
        parse_rules(text)
    assert "\n" not in str(err.value)


def test_apply_rules(hosts: dict[str, Candidate]) -> None:
    cands, rejected = apply_rules(hosts.values(), parse_rules("Co->Ni,Mn,Ti P->Si Li->Na"))
    formulas = {c.formula for c in cands}
    assert {"LiNiO2", "LiMnO2", "LiTiO2", "LiFeSiO4", "LiMnSiO4"} <= formulas
    assert not any("Na" in f for f in formulas)  # the working ion is never replaced
    lico = [c for c in cands if c.host_id == "LiCoO2"]
    assert [c.steps for c in lico] == [("sub Co->Ni",), ("sub Co->Mn",), ("sub Co->Ti",)]
    assert all(oxidation_guess(c.structure.composition) for c in cands)
    assert all(len(c.structure) == len(hosts[c.host_id].structure) for c in cands)
    combined, _ = apply_rules([hosts["LiFePO4"]], parse_rules("Fe->Mn P->Si"), combine=True)
    assert sorted(c.formula for c in combined) == ["LiFeSiO4", "LiMnPO4", "LiMnSiO4"]
    _, rejected = apply_rules([hosts["LiCoO2"]], [SubstitutionRule("Co", ("Zn",))])
    assert len(rejected) == 1 and "not charge balanced" in rejected[0].reason


def test_rule_candidates_rescaled_from_host(hosts: dict[str, Candidate]) -> None:
    (cand,), _ = apply_rules([hosts["LiFePO4"]], parse_rules("Fe->Mn"), rescale=True)
    real = cathode_examples()["LiMnPO4"].volume
    assert cand.metadata["volume"] == "rls"
    assert abs(cand.structure.volume / real - 1) < 0.03


def test_probable_substitutions(hosts: dict[str, Candidate]) -> None:
    cands, rejected = probable_substitutions([hosts["LiCoO2"], hosts["LiMn2O4"]], threshold=2e-3)
    assert cands and all(c.host_id == "LiCoO2" for c in cands)
    assert all("Li" in c.formula and oxidation_guess(c.structure.composition) for c in cands)
    probs = [c.metadata["probability"] for c in cands]
    assert probs == sorted(probs, reverse=True) and min(probs) > 2e-3
    assert {"LiNiO2", "LiMnO2", "LiFeO2"} <= {c.formula for c in cands}
    assert [r.id for r in rejected] == ["LiMn2O4"]  # mixed valence Mn3.5+ not in the model


EXPECTED = {
    "layered-O3": ("LiCoO2", "R-3m"),
    "spinel": ("LiMn2O4", "Fd-3m"),
    "olivine": ("LiFePO4", "Pnma"),
    "nasicon": ("LiTi2(PO4)3", "R-3c"),
    "rocksalt-ordered": ("LiFeO2", "I4_1/amd"),
}


@pytest.mark.parametrize("name", list(PROTOTYPES))
def test_prototype_parents(name: str) -> None:
    parent = parent_structure(name)
    formula, symbol = EXPECTED[name]
    assert parent.composition.reduced_formula == formula
    assert SpacegroupAnalyzer(parent, symprec=0.01).get_space_group_symbol() == symbol
    assert invalid_reason(parent, min_dist=1.4) is None


def test_decorated_prototypes_keep_symmetry() -> None:
    cand = build_prototype("olivine", "Mn", working_ion="Na")
    assert cand.formula == "NaMnPO4"
    assert SpacegroupAnalyzer(cand.structure, symprec=0.01).get_space_group_symbol() == "Pnma"
    assert cand.structure.volume > parent_structure("olivine").volume  # Na is bigger than Li
    assert cand.lineage == "prototype:olivine > decorate Na-Mn-P-O"
    assert build_prototype("spinel", "Mn", "Mg").formula == "MgMn2O4"
    assert build_prototype("layered-O3", "Ti", anion="S", rescale=False).formula == "LiTiS2"


def test_prototype_rejections_are_named() -> None:
    cands, rejected = decorate_prototypes(["spinel", "nasicon", "nope"], ["Mn", "Fe"], ["Li", "Mg"])
    formulas = {c.formula for c in cands}
    assert {"LiMn2O4", "MgMn2O4"} <= formulas
    reasons = {r.id: r.reason for r in rejected}
    assert "unknown prototype" in reasons["nope"]
    assert any("MgFe2(PO4)3" in r and "charge" in r for r in reasons.values())
    with pytest.raises(PrototypeError, match="working ion"):
        build_prototype("olivine", "Fe", working_ion="Xe")


def test_charged_end_members() -> None:
    lfp = build_prototype("olivine", "Fe", rescale=False)
    charged = charged_end_member(lfp)
    assert charged.formula == "FePO4"
    assert charged.metadata["discharged_id"] == lfp.id
    half = charged_end_member(lfp, 0.5)
    assert half.structure.composition["Li"] == 2 and len(half.structure) == 26
    with pytest.raises(EndMemberError, match="whole number"):
        charged_end_member(build_prototype("layered-O3", "Co"), 0.5)
    back = discharged_end_member(charged)
    assert back.formula == "LiFePO4" and back.structure == lfp.structure
    with pytest.raises(EndMemberError, match="only supported for prototypes"):
        discharged_end_member(Candidate("x", charged.structure, "x", (), "Li"))


def test_partial_removal_is_lowest_ewald() -> None:
    lfp = build_prototype("olivine", "Fe", rescale=False)
    best = charged_end_member(lfp, 0.5).structure

    def ewald(s: Structure) -> float:
        d = s.copy()
        fe_charge = 2.5  # mean-field compensation, as in end_members
        d.add_oxidation_state_by_element({"Li": 1, "Fe": fe_charge, "P": 5, "O": -2})
        return EwaldSummation(d).total_energy

    li = [i for i, site in enumerate(lfp.structure) if site.specie.symbol == "Li"]
    for pair in [(li[0], li[1]), (li[0], li[2]), (li[0], li[3])]:
        other = lfp.structure.copy()
        other.remove_sites(list(pair))
        assert ewald(best) <= ewald(other) + 1e-6


def test_end_member_pairs_name_failures(hosts: dict[str, Candidate]) -> None:
    no_ion = Candidate("bare", build_prototype("olivine", "Fe").structure, "h", (), None)
    pairs, rejected = end_member_pairs([hosts["LiFePO4"], no_ion])
    assert [(d.formula, c.formula) for d, c in pairs] == [("LiFePO4", "FePO4")]
    assert rejected[0].id == "bare" and "no working ion" in rejected[0].reason
