r"""Energy above the convex hull of reference formation energies, vectorised per chemical system.

The stability of a candidate is its formation energy ``E`` (eV/atom) minus the lower convex hull
of the reference formation energies at its composition ``x`` (atomic fractions), with every
element at 0 eV/atom:

.. math::
    E_\mathrm{hull}(x) = \min\{ \textstyle\sum_i \lambda_i E_i : \sum_i \lambda_i x_i = x,
    \ \lambda \ge 0 \}, \qquad \Delta E = E - E_\mathrm{hull}(x)

(negative when the candidate lies below the references: it would be a new stable phase).

:class:`LowerHull` builds the hull of one chemical system the way pymatgen's ``PhaseDiagram``
does (lowest entry per composition, only entries below the elements, an extra point above the
centroid so that the hull is full-dimensional, scipy's qhull with ``Qt``, facets holding the
extra point dropped, degenerate facets dropped) and keeps each lower facet as the plane
``E = a . x' + b`` over the reduced coordinates ``x'`` (fractions of all elements but the first).
Because the lower hull is a convex piecewise-linear function whose pieces' planes support it,
``E_hull(x) = max_k (a_k . x' + b_k)`` on the composition simplex: one matrix product answers
many queries, where ``PhaseDiagram.get_decomp_and_e_above_hull`` searches the facets of every
query in Python and building a ``PhaseDiagram`` costs 30-150 ms of Python per system. The tests
compare both on the mp-36k references (agreement to 1e-8 eV/atom); ``PhaseDiagram`` remains
available from :meth:`HullReference.phase_diagram` (decompositions, plots).
"""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition
from scipy.spatial import ConvexHull

from crystalgnn.data.catalog import catalog_path, is_catalog_name

_SYMBOL = re.compile(r"[A-Z][a-z]?")
FORMATION_TOL = 1e-11
"""Entries must lie this far below the elements (eV/atom) to take part (pymatgen's tolerance)."""


def chemical_system(formula: str) -> frozenset[str]:
    """The element symbols of a formula string, read without parsing it into a ``Composition``."""
    return frozenset(_SYMBOL.findall(formula))


def fractions(composition: Composition, elements: Sequence[str]) -> np.ndarray:
    """Atomic fractions of ``composition`` over ``elements`` (0 for absent ones)."""
    return _fractions(composition.get_el_amt_dict(), elements)


def _fractions(amounts: dict[str, float], elements: Sequence[str]) -> np.ndarray:
    total = sum(amounts.values())
    return np.array([amounts.get(el, 0.0) / total for el in elements])


class LowerHull:
    """The lower convex hull of one chemical system as a set of supporting planes.

    Args:
        elements: the system's element symbols (any order; kept sorted).
        points: ``(fractions over the sorted elements, formation energy per atom)`` rows; each
            element is added at 0 eV/atom.
    """

    def __init__(self, elements: Iterable[str], points: Sequence[tuple[np.ndarray, float]]) -> None:
        self.elements = tuple(sorted(set(elements)))
        dim = len(self.elements)
        frac = np.vstack([np.eye(dim)] + [np.asarray(f, dtype=float).reshape(1, dim) for f, _ in points])
        energy = np.concatenate([np.zeros(dim), np.array([e for _, e in points], dtype=float)])
        # lowest energy per composition (rounded against float noise in the fractions)
        _, group = np.unique(np.round(frac, 12), axis=0, return_inverse=True)
        order = np.lexsort((energy, group.ravel()))
        _, first = np.unique(group.ravel()[order], return_index=True)
        idx = np.sort(order[first])
        frac, energy = frac[idx], energy[idx]
        pure = frac.max(axis=1) > 1 - 1e-12
        refs = np.array([energy[pure & (frac[:, k] > 0.5)].min() for k in range(dim)])
        keep = pure | (energy - frac @ refs < -FORMATION_TOL)
        frac, energy = frac[keep], energy[keep]
        self.points = len(energy)
        if dim == 1:
            self._a, self._b = np.zeros((1, 0)), np.array([energy.min()])
            return
        data = np.column_stack([frac[:, 1:], energy])
        extra = np.full(dim, 1.0 / dim)
        extra[-1] = data.max() + 1  # above every point: present in every upper facet
        data = np.vstack([data, extra])
        simplices = ConvexHull(data, qhull_options="Qt i").simplices
        lower = simplices[(simplices != len(data) - 1).all(axis=1)]  # drop the extra point's
        mats = np.concatenate([data[lower][:, :, :-1], np.ones((len(lower), dim, 1))], axis=2)
        ok = np.abs(np.linalg.det(mats)) > 1e-14  # degenerate facets
        coef = np.linalg.solve(mats[ok], data[lower[ok], -1][:, :, None])[:, :, 0]
        self._a, self._b = coef[:, :-1], coef[:, -1]

    def energy(self, frac: np.ndarray) -> np.ndarray:
        """Hull energies (eV/atom) at the rows of ``frac`` (fractions over :attr:`elements`)."""
        frac = np.atleast_2d(np.asarray(frac, dtype=float))
        return (frac[:, 1:] @ self._a.T + self._b).max(axis=1)


class HullReference:
    """Reference formation energies with one cached :class:`LowerHull` per chemical system.

    Args:
        entries: ``(composition, formation energy per atom)`` pairs (eV/atom). Elements are
            added at 0 eV/atom, so every hull is complete.
    """

    def __init__(self, entries: Iterable[tuple[Composition | str, float]]) -> None:
        # raw rows by chemical system; compositions are parsed only for systems in use
        self._by_system: dict[frozenset[str], list[tuple[Composition | str, float]]] = defaultdict(list)
        for comp, ef in entries:
            if isinstance(comp, Composition):
                key = frozenset(el.symbol for el in comp.elements)
            else:
                key = chemical_system(comp)
            self._by_system[key].append((comp, float(ef)))
        self._parsed: dict[frozenset[str], list[tuple[dict[str, float], float]]] = {}
        self._hulls: dict[frozenset[str], LowerHull] = {}
        self._diagrams: dict[frozenset[str], PhaseDiagram] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_system.values())

    def _rows(self, system: frozenset[str]) -> list[tuple[dict[str, float], float]]:
        """Reference rows (element amounts, E_f) whose elements are a subset of ``system``."""
        out: list[tuple[dict[str, float], float]] = []
        for r in range(1, len(system) + 1):
            for sub in combinations(sorted(system), r):
                key = frozenset(sub)
                if key not in self._parsed:
                    rows = self._by_system.get(key, [])
                    self._parsed[key] = [(Composition(c).get_el_amt_dict(), ef) for c, ef in rows]
                out += self._parsed[key]
        return out

    def hull(self, elements: Iterable[str]) -> LowerHull:
        """The lower hull of the chemical system ``elements`` (built once, then cached)."""
        system = frozenset(elements)
        if system not in self._hulls:
            order = sorted(system)
            points = [(_fractions(amounts, order), ef) for amounts, ef in self._rows(system)]
            self._hulls[system] = LowerHull(order, points)
        return self._hulls[system]

    def phase_diagram(self, elements: Iterable[str]) -> PhaseDiagram:
        """Pymatgen's ``PhaseDiagram`` of the same references (decompositions, plots; cached)."""
        system = frozenset(elements)
        if system not in self._diagrams:
            entries = [PDEntry(Composition(el), 0.0) for el in sorted(system)]
            for amounts, ef in self._rows(system):
                c = Composition(amounts)
                entries.append(PDEntry(c, ef * c.num_atoms))
            self._diagrams[system] = PhaseDiagram(entries)
        return self._diagrams[system]

    def e_above_hull(self, composition: Composition | str, formation_energy: float) -> float:
        """Energy above the hull (eV/atom) of ``composition`` at ``formation_energy`` eV/atom.

        Negative when the energy lies below the reference hull (the phase would be new and
        stable against the references).
        """
        comp = Composition(composition)
        return float(self.e_above_hull_many([comp], [formation_energy])[0])

    def e_above_hull_many(
        self,
        compositions: Sequence[Composition],
        formation_energies: Sequence[float] | np.ndarray,
        systems: Sequence[Iterable[str]] | None = None,
    ) -> np.ndarray:
        """:meth:`e_above_hull` of many compositions at once, one matrix product per system.

        ``systems[i]`` (default: the composition's own elements) may be a superset of the
        composition's elements, so that a discharged electrode and its charged member share the
        hull of the discharged system. Non-finite energies give NaN.
        """
        energies = np.asarray(formation_energies, dtype=float)
        out = np.full(len(compositions), np.nan)
        groups: dict[frozenset[str], list[int]] = defaultdict(list)
        for i, comp in enumerate(compositions):
            if np.isfinite(energies[i]):
                own = frozenset(el.symbol for el in comp.elements)
                groups[own if systems is None else frozenset(systems[i]) | own].append(i)
        for system, idx in groups.items():
            hull = self.hull(system)
            frac = np.vstack([fractions(compositions[i], hull.elements) for i in idx])
            out[idx] = energies[idx] - hull.energy(frac)
        return out


def load_reference_energies(
    source: str | Path = "mp-36k",
    energy_key: str = "formation_energy_per_atom",
    max_abs: float = 5.0,
    source_file: str | None = None,
) -> list[tuple[str, float]]:
    """``(formula, formation energy per atom)`` rows of a shared-data ``.jsonl.gz`` file.

    Args:
        source: a catalog short name (``"mp-36k"``, ``"computed-entries"``) or a file path.
        energy_key: the column holding formation energies per atom.
        max_abs: skip rows with ``|E_f|`` above this (eV/atom).
        source_file: for ``computed-entries``, keep only rows of this ``source_file`` (its
            README: never mix phase diagrams across source files).

    Structures are not parsed. Rows with a missing energy or ``|E_f| > max_abs`` eV/atom are
    skipped (the mp-36k README names six broken legacy entries beyond 5 eV/atom). Do not mix
    files in one :class:`HullReference`: their energies come from different MP versions.
    """
    path = catalog_path(str(source)) if is_catalog_name(str(source)) else Path(source)
    out: list[tuple[str, float]] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            ef = row.get(energy_key)
            if source_file is not None and row.get("source_file") != source_file:
                continue
            if ef is None or abs(ef) > max_abs:
                continue
            out.append((row["formula"], float(ef)))
    return out
