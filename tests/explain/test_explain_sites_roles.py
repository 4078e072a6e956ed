"""Perovskite A/B/X site roles from coordination (:mod:`crystalgnn.explain.site_roles`)."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from crystalgnn.explain.site_roles import perovskite_roles, site_roles

CUBIC = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def cubic(a: str, b: str, x: tuple[str, str, str] = ("O", "O", "O"), lattice: float = 3.905) -> Structure:
    return Structure(Lattice.cubic(lattice), [a, b, *x], CUBIC)


def roles_by_element(s: Structure, roles: list[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for site, r in zip(s, roles, strict=True):
        out.setdefault(site.specie.symbol, set()).add(r)
    return out


def test_cubic_srtio3_in_any_site_order_and_as_a_supercell(structures) -> None:
    s = structures["srtio3"]
    assert perovskite_roles(s) == ["A", "B", "X", "X", "X"]
    shuffled = Structure(
        s.lattice, [s[i].species for i in (3, 1, 4, 0, 2)], [s[i].frac_coords for i in (3, 1, 4, 0, 2)]
    )
    assert perovskite_roles(shuffled) == ["X", "B", "X", "A", "X"]
    big = s * (2, 1, 2)
    roles = perovskite_roles(big)
    assert roles is not None and roles_by_element(big, roles) == {"Sr": {"A"}, "Ti": {"B"}, "O": {"X"}}
    assert roles.count("A") == roles.count("B") == 4 and roles.count("X") == 12


def test_distorted_orthorhombic_catio3() -> None:
    """Pnma CaTiO3 (GdFeO3-type tilts, 20 sites): Ti keeps six O at ~1.95 Å, Ca has 8 of 12 O within 2.8 Å."""
    s = Structure.from_spacegroup(
        "Pnma",
        Lattice.orthorhombic(5.44, 7.64, 5.38),
        ["Ca", "Ti", "O", "O"],
        [[0.0065, 0.25, 0.9925], [0, 0, 0.5], [0.5711, 0.25, 0.0161], [0.2897, 0.0371, 0.7108]],
    )
    assert len(s) == 20
    roles = perovskite_roles(s)
    assert roles is not None and roles_by_element(s, roles) == {"Ca": {"A"}, "Ti": {"B"}, "O": {"X"}}


def test_roles_follow_the_geometry_not_the_chemistry() -> None:
    """Ti in the 12-fold cavity and Sr in the octahedron: Ti is the A site there."""
    s = cubic("Ti", "Sr")
    assert perovskite_roles(s) == ["A", "B", "X", "X", "X"]
    assert [site.specie.symbol for site in s][:2] == ["Ti", "Sr"]


def test_a_and_b_must_be_separated_by_min_ratio() -> None:
    """Cubic cell: the A site's 6th-nearest X is sqrt(2) times farther than the B site's."""
    s = cubic("Sr", "Ti")
    assert perovskite_roles(s, min_ratio=1.40) == ["A", "B", "X", "X", "X"]
    assert perovskite_roles(s, min_ratio=1.42) is None


def test_mixed_anions_are_all_x_sites() -> None:
    s = cubic("La", "Ti", ("O", "O", "N"))
    assert perovskite_roles(s) == ["A", "B", "X", "X", "X"]


@pytest.mark.parametrize(
    "name",
    ["nacl", "lifeo2", "layered", "no_clean_anion_cut"],
)
def test_structures_that_are_not_abx3_perovskites_get_no_roles(structures, name) -> None:
    cases = {
        **structures,
        # a Castelli cell (KAlO3) relaxed into layers: Al and the three O in one plane, K in the other
        "layered": Structure(
            Lattice.cubic(4.2333),
            ["K", "Al", "O", "O", "O"],
            [[0.66, 0.5, 0.5], [0.16, 0, 0], [0.15, 0, 0.5], [0.15, 0.5, 0], [0.16, 0.5, 0.5]],
        ),
        # ABX3 whose A cation is the anion's element: the 3 X sites are no clean electronegativity cut
        "no_clean_anion_cut": cubic("O", "Ti", ("O", "O", "O")),
    }
    s = cases[name]
    assert perovskite_roles(s) is None
    assert site_roles([s]) == [[""] * len(s)]


def test_site_roles_schemes(structures) -> None:
    s = [structures["srtio3"], structures["nacl"]]
    assert site_roles(s, "auto") == site_roles(s, "perovskite") == [["A", "B", "X", "X", "X"], ["", ""]]
    assert site_roles(s, "none") == [[""] * 5, [""] * 2]
    with pytest.raises(ValueError, match="unknown site-role scheme 'abx'"):
        site_roles(s, "abx")
