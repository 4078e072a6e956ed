"""Checks that a parsed structure can be a crystal-graph input, with one-line reasons.

Every reader names a bad entry with the first problem these checks find (empty, non-finite
lattice or coordinates, disorder, unknown elements, zero volume) and keeps the valid ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymatgen.core import Structure


class StructureParseError(ValueError):
    """A structure could not be read; the message says why."""


def structure_problem(structure: Structure) -> str | None:
    """Why a parsed structure cannot be used as a crystal graph input, or ``None``.

    Checks: no sites, a non-finite lattice or non-finite coordinates (NaN, or numbers such as
    ``1e400`` that overflow to infinity), partial occupancy / disorder, species that are not
    chemical elements (dummy species such as ``X``), and a degenerate (zero-volume) lattice.
    """
    if len(structure) == 0:
        return "empty structure (no sites)"
    matrix = structure.lattice.matrix
    if not np.all(np.isfinite(matrix)):
        return lattice_problem(matrix)
    frac = structure.frac_coords
    if not np.isfinite(frac).all():
        return coordinates_problem(frac, [site.species_string for site in structure])
    if not structure.is_ordered:
        return "partial occupancy / disordered sites"
    for site in structure:
        sp = site.specie
        if not hasattr(sp, "Z") or getattr(sp, "Z", 0) <= 0 or type(sp).__name__.startswith("Dummy"):
            return f"unknown element: {sp}"
    return lattice_problem(structure.lattice.matrix)


def lattice_problem(matrix: np.ndarray) -> str | None:
    """``"non-finite lattice ..."`` for a cell with NaN or infinite numbers, ``"degenerate
    lattice ..."`` for a zero-volume one, else ``None``.
    """
    matrix = np.asarray(matrix, dtype=float)
    if not np.all(np.isfinite(matrix)):
        return f"non-finite lattice (lattice vectors {_show(matrix)})"
    if abs(np.linalg.det(matrix)) <= 1e-6:
        return "degenerate lattice (zero volume)"
    return None


def coordinates_problem(coords: Any, symbols: Any = None, kind: str = "fractional ") -> str | None:
    """``"non-finite coordinates (site k ...)"`` naming the first site whose coordinates are NaN or
    infinite (``1e400`` overflows to infinity), else ``None``.
    """
    xyz = np.asarray(coords, dtype=float).reshape(-1, 3)
    bad = np.flatnonzero(~np.isfinite(xyz).all(axis=1))
    if len(bad) == 0:
        return None
    k = int(bad[0])
    label = f", {symbols[k]}" if symbols is not None and k < len(symbols) else ""
    more = f"; {len(bad) - 1} more sites" if len(bad) > 1 else ""
    return f"non-finite coordinates (site {k}{label}: {kind}{_show(xyz[k])}{more})"


def _show(values: np.ndarray) -> str:
    """A short text of a vector or matrix of floats, ``(nan, 0.5, 0.5)`` (no square brackets: a
    terminal printing the reason with rich markup would take them for a style).
    """
    a = np.asarray(values, dtype=float)
    if a.ndim > 1:
        return "(" + ", ".join(_show(row) for row in a) + ")"
    return "(" + ", ".join(f"{v:.6g}" for v in a) + ")"
