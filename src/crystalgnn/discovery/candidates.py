"""Candidate records, host checks, validity filters and duplicate removal.

A :class:`Candidate` is one proposed crystal: its id, its (unrelaxed) ``Structure``, its lineage
(the host it came from and the generator steps applied, in order) and the working ion whose
insertion it is meant to host.

Validity filters (:func:`invalid_reason`), each cheap and applied in this order:

1. *minimum interatomic distance*: ``min_{i != j} |r_i - r_j + L n| >= d_min`` over periodic
   images, including a site and its own images (the shortest lattice vector);
2. *charge neutrality*: a set of integer oxidation states ``q_e`` with ``sum_e n_e q_e = 0``
   exists for the composition (pymatgen's ``Composition.oxi_state_guesses`` answer, ICSD-frequency
   ranked, computed by :mod:`~crystalgnn.discovery.oxidation`);
3. *electronegativity*: in that assignment the most electronegative element (Pauling ``chi``)
   is an anion (``q < 0``) and the least electronegative is a cation (``q > 0``), the ordering
   rule behind ionic-compound screens such as SMACT (Davies et al., Chem 1, 617 (2016)).

Duplicates are found with pymatgen's ``StructureMatcher`` (Ong et al., Comput. Mater. Sci. 68,
314 (2013); default tolerances, primitive-cell reduction so that translated, rotated and
supercell copies match) *inside groups of equal reduced formula*: structures of different
formulas never match, so the quadratic matcher only runs within each group
(:func:`remove_duplicates`). :func:`flag_known` marks candidates that match a reference set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, DummySpecies, Element, Lattice, Structure

from crystalgnn.data.dataset import Rejection
from crystalgnn.discovery.oxidation import electronegativity_reason, oxidation_guess

WORKING_IONS: tuple[str, ...] = ("Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Zn", "Al", "Y")
"""Working ions the generators accept: the ten of the MP insertion-electrode data set."""

DEFAULT_MIN_DISTANCE = 0.9
"""Default minimum interatomic distance in Angstrom (shorter than any real bond but O-H)."""


@dataclass(frozen=True)
class Candidate:
    """One proposed crystal with its lineage.

    Attributes:
        id: unique id, by convention ``<host id>|<step>|<step>...``.
        structure: the (unrelaxed) structure.
        host_id: id of the host structure or prototype it was derived from.
        steps: generator steps applied to the host, in order (e.g. ``("sub Co->Ni",)``).
        working_ion: the ion the candidate stores (``None`` when not a battery material).
        known: ``True`` when it matches a reference structure, ``None`` until checked.
        metadata: free-form details (prototype parameters, substitution probability, ...).
    """

    id: str
    structure: Structure
    host_id: str
    steps: tuple[str, ...] = ()
    working_ion: str | None = None
    known: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def composition(self) -> Composition:
        """The structure's composition (computed once: pymatgen rebuilds it at every access;
        candidates are not mutated after they are made).
        """
        return self.structure.composition

    @cached_property
    def formula(self) -> str:
        """Reduced formula of the structure."""
        return self.composition.reduced_formula

    @property
    def lineage(self) -> str:
        """Host and steps as one string, e.g. ``mp-22526 > sub Co->Ni > charged x=0``."""
        return " > ".join((self.host_id, *self.steps))

    def derive(self, structure: Structure, step: str, **metadata: Any) -> Candidate:
        """A child candidate: this lineage plus ``step``, with ``structure``."""
        return replace(
            self,
            id=f"{self.id}|{step}",
            structure=structure,
            steps=(*self.steps, step),
            known=None,
            metadata={**self.metadata, **metadata},
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle the structure as arrays (lattice, species, fractional coordinates, site
        properties), not as pymatgen's site objects: an engine ships candidates to its workers
        and back at every stage, and unpickling ``Structure`` objects site by site cost more
        than the stages themselves. The cached composition is not sent.
        """
        return (
            _candidate_from_state,
            (
                self.id,
                _structure_state(self.structure),
                self.host_id,
                self.steps,
                self.working_ion,
                self.known,
                self.metadata,
            ),
        )


def _structure_state(s: Structure) -> tuple[Any, ...]:
    species = [site.species for site in s]  # each site's Composition: occupancies as stored (1 vs 1.0)
    return (
        s.lattice.matrix,
        s.lattice.pbc,
        species,
        s.frac_coords,
        s.site_properties,
        s.labels,
        dict(s.properties),
        s._charge,
    )


def _candidate_from_state(
    cid: str,
    state: tuple[Any, ...],
    host_id: str,
    steps: tuple[str, ...],
    ion: str | None,
    known: bool | None,
    metadata: dict[str, Any],
) -> Candidate:
    matrix, pbc, species, frac, site_properties, labels, properties, charge = state
    structure = Structure(
        Lattice(matrix, pbc=pbc),
        species,
        frac,
        charge=charge,
        site_properties=site_properties or None,
        labels=labels,
        properties=properties,
    )
    return Candidate(cid, structure, host_id, steps, ion, known, metadata)


def host_reason(structure: Structure, working_ion: str | None = None) -> str | None:
    """Why ``structure`` cannot serve as a host, or ``None`` when it can.

    A host must be ordered (every site one species at full occupancy), hold only real chemical
    elements (no dummy species, no element beyond Pu, which pymatgen's data tables do not cover
    for oxidation states) and, when ``working_ion`` is given, contain that ion.
    """
    if len(structure) == 0:
        return "empty structure"
    if not structure.is_ordered:
        return "disordered structure (partial occupancies); order it first"
    species = structure.composition.elements
    unknown = sorted({str(sp) for sp in species if isinstance(sp, DummySpecies) or getattr(sp, "Z", 0) > 94})
    if unknown:
        return f"unknown elements {', '.join(unknown)}"
    if working_ion is not None:
        if working_ion not in WORKING_IONS:
            return f"unsupported working ion {working_ion!r} (choose from {', '.join(WORKING_IONS)})"
        if Element(working_ion) not in species:
            return f"no {working_ion} in {structure.composition.reduced_formula}"
    return None


def hosts_from(
    structures: Iterable[tuple[str, Structure]], working_ion: str | None = None
) -> tuple[list[Candidate], list[Rejection]]:
    """Hosts as :class:`Candidate` records; bad ones named with their reason and skipped.

    Args:
        structures: ``(id, Structure)`` pairs, e.g. ``zip(dataset.ids, dataset.structures)``.
        working_ion: required ion (see :func:`host_reason`), or ``None``.
    """
    hosts: list[Candidate] = []
    rejected: list[Rejection] = []
    for host_id, structure in structures:
        try:
            reason = host_reason(structure, working_ion)
        except Exception as err:  # pymatgen raises many types on odd input
            reason = f"unreadable structure: {err}"
        if reason is None:
            hosts.append(Candidate(str(host_id), structure, str(host_id), (), working_ion))
        else:
            rejected.append(Rejection(str(host_id), "host", reason))
    return hosts, rejected


def load_hosts(
    source: Any, working_ion: str | None = None, **load_kwargs: Any
) -> tuple[list[Candidate], list[Rejection]]:
    """Hosts from any source :func:`~crystalgnn.data.readers.load_source` accepts.

    Entries the reader rejects and hosts that fail :func:`host_reason` are returned with their
    reasons. With ``working_ion=None``, a battery table's per-row ``working_ion`` column (the
    ``electrodes`` data set) is used as that host's required ion; other sources need none.
    ``load_kwargs`` go to ``load_source`` (``subset``, ``n_jobs``, ``end_member``, ...).
    """
    from crystalgnn.data.readers import load_source

    load_kwargs.setdefault("show_progress", False)
    ds = load_source(source, **load_kwargs)
    hosts: list[Candidate] = []
    rejected: list[Rejection] = list(ds.rejections)
    metadata = ds.metadata or [{} for _ in ds.ids]
    for host_id, structure, meta in zip(ds.ids, ds.structures, metadata, strict=True):
        ion = working_ion if working_ion is not None else meta.get("working_ion")
        found, bad = hosts_from([(host_id, structure)], ion)
        hosts += found
        rejected += bad
    return hosts, rejected


def min_distance(structure: Structure) -> float:
    """Shortest distance between two sites, periodic images included (Angstrom)."""
    shortest_lattice_vector = float(min(structure.lattice.get_lll_reduced_lattice().abc))
    if len(structure) < 2:
        return shortest_lattice_vector
    dm = structure.distance_matrix
    np.fill_diagonal(dm, np.inf)
    return min(float(dm.min()), shortest_lattice_vector)


def invalid_reason(
    structure: Structure, min_dist: float = DEFAULT_MIN_DISTANCE, check_charge: bool = True
) -> str | None:
    """Why ``structure`` fails the validity filters (module docstring), or ``None`` if valid."""
    if not structure.is_ordered:
        return "disordered structure"
    d = min_distance(structure)
    if d < min_dist:
        return f"sites {d:.2f} A apart (< {min_dist} A)"
    if not check_charge:
        return None
    oxidation = oxidation_guess(structure.composition)
    if oxidation is None:
        return f"no charge-balanced oxidation states for {structure.composition.reduced_formula}"
    return electronegativity_reason(oxidation)


def filter_valid(
    candidates: Iterable[Candidate],
    min_dist: float = DEFAULT_MIN_DISTANCE,
    check_charge: bool = True,
) -> tuple[list[Candidate], list[Rejection]]:
    """Candidates that pass :func:`invalid_reason`, and the others with their reasons."""
    kept: list[Candidate] = []
    rejected: list[Rejection] = []
    for cand in candidates:
        reason = invalid_reason(cand.structure, min_dist, check_charge)
        if reason is None:
            kept.append(cand)
        else:
            rejected.append(Rejection(cand.id, cand.lineage, reason))
    return kept, rejected


def default_matcher() -> StructureMatcher:
    """Pymatgen's ``StructureMatcher`` with its default tolerances (ltol 0.2, stol 0.3,
    angle_tol 5 degrees, primitive cells compared, supercells of one another matched).
    """
    return StructureMatcher(attempt_supercell=True)


def _groups_by_formula(structures: Sequence[Structure]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(structures):
        groups[s.composition.reduced_formula].append(i)
    return groups


def remove_duplicates(
    candidates: Sequence[Candidate], matcher: StructureMatcher | None = None
) -> tuple[list[Candidate], dict[str, str]]:
    """Unique candidates (first of each group kept, input order) and ``duplicate id -> kept id``.

    Candidates are grouped by reduced formula first; ``StructureMatcher.group_structures``
    runs within each group only.
    """
    sm = matcher or default_matcher()
    keep = np.zeros(len(candidates), dtype=bool)
    duplicate_of: dict[str, str] = {}
    for idx in _groups_by_formula([c.structure for c in candidates]).values():
        if len(idx) == 1:
            keep[idx[0]] = True
            continue
        # group_structures returns the input objects: map them back by identity (a structure
        # object shared by two candidates maps to both, in order)
        position: dict[int, list[int]] = defaultdict(list)
        for i in idx:
            position[id(candidates[i].structure)].append(i)
        for group in sm.group_structures([candidates[i].structure for i in idx]):
            members = sorted(position[id(s)].pop(0) for s in group)
            keep[members[0]] = True
            for j in members[1:]:
                duplicate_of[candidates[j].id] = candidates[members[0]].id
    return [c for c, k in zip(candidates, keep, strict=True) if k], duplicate_of


def flag_known(
    candidates: Sequence[Candidate],
    references: Iterable[tuple[str, Structure]],
    matcher: StructureMatcher | None = None,
) -> list[Candidate]:
    """Candidates with ``known`` set, and ``metadata["known_as"]`` naming the matched reference.

    A candidate identical to the reference of its own id (a host read from the reference data
    set: same cell, species and positions) is known as that reference without matching. Other
    candidates are compared with the references of their reduced formula only, in order, until
    one matches. With the default matcher every structure is reduced at most once, when first
    compared (Niggli cell, then primitive cell, as ``StructureMatcher`` does), and compared
    with ``skip_structure_reduction``: the same matches as ``fit`` on the raw structures
    without reducing (or looking up the reduction cache with full structure comparisons) once
    per pair.
    """
    sm = matcher or default_matcher()
    reduce_once = matcher is None
    wanted = {c.formula for c in candidates}
    by_formula: dict[str, list[_Reference]] = defaultdict(list)
    by_id: dict[str, Structure] = {}
    for ref_id, s in references:
        formula = s.composition.reduced_formula
        if formula in wanted:
            by_formula[formula].append(_Reference(str(ref_id), s, reduce_once))
            by_id.setdefault(str(ref_id), s)
    out: list[Candidate] = []
    for cand in candidates:
        match: str | None = None
        own = by_id.get(cand.id)
        if own is not None and identical_structures(cand.structure, own):
            match = cand.id
        else:
            refs = by_formula.get(cand.formula, [])
            mine = _matcher_cell(cand.structure) if refs and reduce_once else cand.structure
            match = next((r.id for r in refs if sm.fit(mine, r.cell(), skip_structure_reduction=reduce_once)), None)
        meta = cand.metadata if match is None else {**cand.metadata, "known_as": match}
        out.append(replace(cand, known=match is not None, metadata=meta))
    return out


class _Reference:
    """A reference structure whose matcher cell is made on first use."""

    def __init__(self, ref_id: str, structure: Structure, reduce: bool) -> None:
        self.id, self._structure, self._reduce = ref_id, structure, reduce
        self._cell: Structure | None = None

    def cell(self) -> Structure:
        if not self._reduce:
            return self._structure
        if self._cell is None:
            self._cell = _matcher_cell(self._structure)
        return self._cell


def identical_structures(a: Structure, b: Structure, tol: float = 1e-5) -> bool:
    """Same lattice (Angstrom), species in the same site order and fractional positions within
    ``tol`` (periodic images allowed): one structure read twice, not a tolerance match.
    """
    if len(a) != len(b) or a.species != b.species:
        return False
    if not np.allclose(a.lattice.matrix, b.lattice.matrix, atol=tol):
        return False
    d = a.frac_coords - b.frac_coords
    return bool(np.all(np.abs(d - np.round(d)) < tol))


def _matcher_cell(structure: Structure) -> Structure:
    """The cell ``StructureMatcher`` compares: Niggli-reduced, then primitive (its tolerances)."""
    return structure.get_reduced_structure(reduction_algo="niggli").get_primitive_structure()
