"""Classic cathode frameworks built in code and decorated with chosen ions.

Each prototype is the published structure of a parent compound, generated with
``Structure.from_spacegroup`` from its space group, lattice parameters and Wyckoff positions
(conventional cell). Roles: ``A`` the working ion, ``M`` the redox metal, ``X`` the anion,
``P`` the polyanion centre.

| name | formula | space group | parent and source |
|---|---|---|---|
| `layered-O3` | A M X2 | R-3m (166) | LiCoO2, Akimoto et al., J. Solid State Chem. 141, 298 (1998) |
| `spinel` | A M2 X4 | Fd-3m (227) | LiMn2O4, Thackeray et al., Mater. Res. Bull. 18, 461 (1983) |
| `olivine` | A M P X4 | Pnma (62) | LiFePO4 (triphylite), Streltsov et al., Acta Cryst. B 49, 147 (1993) |
| `nasicon` | A M2 (P X4)3 | R-3c (167) | LiTi2(PO4)3, a = 8.511, c = 20.843 A; coordinates of the usual R-3c refinements |
| `rocksalt-ordered` | A M X2 | I4_1/amd ordering of Fm-3m (225) | disordered rocksalt (Li,Fe)O, a = 4.15 A (Lee et al., Science 343, 519 (2014)), ordered in a 2x1x1 cell with the lowest Ewald energy (gamma-LiFeO2 type) |

The decorated structure keeps the parent's fractional coordinates; its lattice is rescaled to a
predicted volume relative to the parent (:mod:`~crystalgnn.discovery.volume`; RLS, DLS as
fallback). **No candidate is relaxed**: the structures are starting guesses for a model or a DFT
relaxation. Any working ion (Li, Na, K, Rb, Cs, Mg, Ca, Zn, Al, Y) fills every A site; the decorated
composition must have charge-balanced oxidation states (checked, so that a divalent ion needs
a metal in a lower state, e.g. MgMn2O4 with Mn3+), otherwise the combination is rejected.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pymatgen.core import Element, Lattice, Structure
from pymatgen.transformations.standard_transformations import (
    OrderDisorderedStructureTransformation,
)

from crystalgnn.data.dataset import Rejection
from crystalgnn.discovery.candidates import WORKING_IONS, Candidate, oxidation_guess
from crystalgnn.discovery.volume import rescale_volume


class PrototypeError(ValueError):
    """A prototype decoration that cannot be built (one-line message)."""


@dataclass(frozen=True)
class Prototype:
    """A framework: space group, lattice, Wyckoff sites (role, fractional coordinates)."""

    name: str
    formula: str
    spacegroup: str
    lattice: Callable[[], Lattice]
    sites: tuple[tuple[str, tuple[float, float, float]], ...]
    parent: dict[str, str]


PROTOTYPES: dict[str, Prototype] = {
    p.name: p
    for p in (
        Prototype(
            "layered-O3",
            "AMX2",
            "R-3m",
            lambda: Lattice.hexagonal(2.8156, 14.0542),
            (("A", (0, 0, 0.5)), ("M", (0, 0, 0)), ("X", (0, 0, 0.2396))),
            {"A": "Li", "M": "Co", "X": "O"},
        ),
        Prototype(
            "spinel",
            "AM2X4",
            "Fd-3m",
            lambda: Lattice.cubic(8.245),  # origin choice 1
            (("A", (0, 0, 0)), ("M", (0.625, 0.625, 0.625)), ("X", (0.3875, 0.3875, 0.3875))),
            {"A": "Li", "M": "Mn", "X": "O"},
        ),
        Prototype(
            "olivine",
            "AMPX4",
            "Pnma",
            lambda: Lattice.orthorhombic(10.3290, 6.0065, 4.6908),
            (
                ("A", (0, 0, 0)),
                ("M", (0.28222, 0.25, 0.97472)),
                ("P", (0.09486, 0.25, 0.41820)),
                ("X", (0.09678, 0.25, 0.74279)),
                ("X", (0.45710, 0.25, 0.20602)),
                ("X", (0.16558, 0.04646, 0.28478)),
            ),
            {"A": "Li", "M": "Fe", "P": "P", "X": "O"},
        ),
        Prototype(
            "nasicon",
            "AM2(PX4)3",
            "R-3c",
            lambda: Lattice.hexagonal(8.511, 20.843),
            (
                ("A", (0, 0, 0)),
                ("M", (0, 0, 0.14204)),
                ("P", (0.28903, 0, 0.25)),
                ("X", (0.18339, -0.00817, 0.19091)),
                ("X", (0.19052, 0.16863, 0.08160)),
            ),
            {"A": "Li", "M": "Ti", "P": "P", "X": "O"},
        ),
        Prototype(
            "rocksalt-ordered",
            "AMX2",
            "Fm-3m",
            lambda: Lattice.cubic(4.15),
            (("A", (0, 0, 0)), ("X", (0.5, 0.5, 0.5))),
            {"A": "Li", "M": "Fe", "X": "O"},
        ),
    )
}
"""The prototypes by name (see the module docstring for sources)."""


def _raw(proto: Prototype) -> Structure:
    """The parent compound in its published cell (the A sites shared with M for rocksalt)."""
    species: list[Any] = []
    for role, _ in proto.sites:
        if proto.name == "rocksalt-ordered" and role == "A":
            species.append({proto.parent["A"]: 0.5, proto.parent["M"]: 0.5})
        else:
            species.append(proto.parent[role])
    coords = [list(c) for _, c in proto.sites]
    return Structure.from_spacegroup(proto.spacegroup, proto.lattice(), species, coords)


def _ordered_rocksalt(disordered: Structure, oxidation: dict[str, float]) -> Structure:
    """Lowest-Ewald-energy ordering of the A/M sublattice in a 2x1x1 conventional cell."""
    cell = disordered * (2, 1, 1)
    cell.add_oxidation_state_by_element(oxidation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked: Any = OrderDisorderedStructureTransformation().apply_transformation(cell, return_ranked_list=1)
    best: Structure = ranked[0]["structure"]
    best.remove_oxidation_states()
    return best


@lru_cache(maxsize=16)
def parent_structure(name: str) -> Structure:
    """The ordered parent compound of prototype ``name`` (primitive cell, not rescaled)."""
    proto = prototype(name)
    raw = _raw(proto)
    if not raw.is_ordered:
        guess = oxidation_guess(raw.composition.element_composition * 2)
        if guess is None:
            raise PrototypeError(f"prototype {name}: parent not charge balanced")
        raw = _ordered_rocksalt(raw, guess)
    return raw.get_primitive_structure()


def prototype(name: str) -> Prototype:
    """The :class:`Prototype` called ``name``; one-line error naming the known ones."""
    if name not in PROTOTYPES:
        raise PrototypeError(f"unknown prototype {name!r} (choose from {', '.join(PROTOTYPES)})")
    return PROTOTYPES[name]


def _symbol(value: str, role: str) -> str:
    if not Element.is_valid_symbol(value):
        raise PrototypeError(f"{role} {value!r} is not an element")
    return value


def build_prototype(
    name: str,
    metal: str,
    working_ion: str = "Li",
    anion: str = "O",
    polyanion: str = "P",
    rescale: bool = True,
) -> Candidate:
    """The discharged prototype ``name`` decorated with ``working_ion``, ``metal``, ``anion``.

    Args:
        name: a key of :data:`PROTOTYPES`.
        metal: the redox metal on the M sites.
        working_ion: the ion on every A site (one of
            :data:`~crystalgnn.discovery.candidates.WORKING_IONS`).
        anion: the anion on the X sites (O, S, F, Se, ...).
        polyanion: the polyanion centre on the P sites (P, Si, S, As, ...; olivine, nasicon).
        rescale: scale the lattice to the predicted volume (relative to the parent compound).

    Raises:
        PrototypeError: unknown prototype or element, or no charge-balanced oxidation states.
    """
    proto = prototype(name)
    if working_ion not in WORKING_IONS:
        raise PrototypeError(f"unsupported working ion {working_ion!r} ({', '.join(WORKING_IONS)})")
    roles = {
        "A": working_ion,
        "M": _symbol(metal, "metal"),
        "X": _symbol(anion, "anion"),
        "P": _symbol(polyanion, "polyanion centre"),
    }
    parent = parent_structure(name)
    mapping = {proto.parent[r]: roles[r] for r in proto.parent if proto.parent[r] != roles[r]}
    structure = parent.copy()
    if mapping:
        structure.replace_species(mapping)
    formula = structure.composition.reduced_formula
    if len(structure.composition.elements) < len(set(roles[r] for r in proto.parent)):
        raise PrototypeError(f"{name} {formula}: two roles given the same element")
    if oxidation_guess(structure.composition) is None:
        raise PrototypeError(f"{name} {formula}: no charge-balanced oxidation states")
    meta: dict[str, object] = {
        "prototype": {"name": name, "metal": metal, "working_ion": working_ion, "anion": anion, "polyanion": polyanion}
    }
    if rescale:
        structure, method = rescale_volume(structure, reference=parent)
        meta["volume"] = method
    used = "-".join(roles[r] for r in ("A", "M", "P", "X") if r in proto.parent)
    host_id = f"prototype:{name}"
    step = f"decorate {used}"
    return Candidate(f"{host_id}|{step}", structure, host_id, (step,), working_ion, None, meta)


def decorate_prototypes(
    names: Iterable[str],
    metals: Iterable[str],
    working_ions: Iterable[str] = ("Li",),
    anions: Iterable[str] = ("O",),
    polyanions: Iterable[str] = ("P",),
    rescale: bool = True,
) -> tuple[list[Candidate], list[Rejection]]:
    """Every combination of the arguments through :func:`build_prototype`.

    Combinations that fail (charge balance, unknown element) are rejected with their reason;
    the polyanion choices only multiply prototypes that have P sites.
    """
    out: list[Candidate] = []
    rejected: list[Rejection] = []
    metals, ions, anions_, centres = list(metals), list(working_ions), list(anions), list(polyanions)
    for name in names:
        try:
            proto = prototype(name)
        except PrototypeError as err:
            rejected.append(Rejection(str(name), "prototypes", str(err)))
            continue
        centre_choices = centres if "P" in proto.parent else [proto.parent.get("P", "P")]
        for metal, ion, anion, centre in itertools.product(metals, ions, anions_, centre_choices):
            try:
                out.append(build_prototype(name, metal, ion, anion, centre, rescale))
            except PrototypeError as err:
                used = [ion, metal, centre, anion] if "P" in proto.parent else [ion, metal, anion]
                rejected.append(Rejection(f"{name}:{'-'.join(used)}", "prototypes", str(err)))
    return out, rejected
