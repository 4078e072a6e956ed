r"""Crystallographic site roles: the A, B and X sites of ABX\ :sub:`3` perovskites, from coordination.

A perovskite ABX\ :sub:`3` has corner-sharing BX\ :sub:`6` octahedra (B-X is the shortest
cation-anion bond, :math:`a/2` in the cubic cell) and a large A cation in the 12-fold cavity
between them (A-X :math:`a/\sqrt 2`); Goldschmidt's tolerance factor
:math:`t = (r_A + r_X) / \sqrt 2 (r_B + r_X)` describes the same geometry. The roles are found
per structure as follows (:func:`perovskite_roles`):

1. **Composition.** The cell must hold :math:`5f` sites (:math:`f` formula units). The X sites are
   the :math:`3f` sites of the most electronegative species (Pauling electronegativity, pymatgen
   ``Element.X``); mixed anions (ABO\ :sub:`2`\ N, ABO\ :sub:`2`\ F, ...) are allowed. The cut must
   be clean: the least electronegative X species must be strictly more electronegative than every
   remaining (cation) site, else the structure is not treated as ABX\ :sub:`3`.
2. **Coordination.** For each of the :math:`2f` cations, the distance to its 6th-nearest X site
   (periodic images included, pymatgen ``Structure.get_neighbor_list``) is :math:`d_6`. A cation
   in an octahedron has all six X at the shortest cation-anion distance, so the B sites are the
   :math:`f` cations with the smallest :math:`d_6`; the other :math:`f` cations are A (12-fold in
   the cubic cell, 8-12 in tilted ones).
3. **Separation.** The smallest :math:`d_6` of an A site must exceed the largest of a B site by
   ``min_ratio`` (default 1.1; :math:`\sqrt 2` in the cubic cell, ~1.25-1.35 in tilted
   orthorhombic ones). Structures where both cations are octahedral (ilmenite FeTiO\ :sub:`3`,
   LiNbO\ :sub:`3`: ratio ~1.05) are therefore not given perovskite roles.

Structures that fail a step get no roles (empty strings): roles are only claimed where the rule
applies. Cost: one neighbour list per structure (measured in ``benchmarks/RESULTS.md``, section 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: role names of :func:`perovskite_roles`
PEROVSKITE_ROLES = ("A", "B", "X")
#: what :func:`site_roles` understands
ROLE_SCHEMES = ("auto", "perovskite", "none")


def _electronegativities(structure: Any) -> np.ndarray:
    out = []
    for site in structure:
        if not site.is_ordered:
            return np.full(len(structure), np.nan)
        el = getattr(site.specie, "element", site.specie)  # Species (with oxidation state) -> Element
        x = getattr(el, "X", float("nan"))
        out.append(float(x) if x is not None else float("nan"))
    return np.asarray(out, dtype=float)


def perovskite_roles(structure: Any, *, min_ratio: float = 1.1, cutoff: float = 4.5) -> list[str] | None:
    r"""The role (``"A"``, ``"B"`` or ``"X"``) of each site of an ABX\ :sub:`3` perovskite, or None
    when the structure is not one by the rule of this module's docstring.

    Args:
        structure: a pymatgen ``Structure``.
        min_ratio: smallest allowed ratio of the A sites' to the B sites' 6th-nearest-anion distance.
        cutoff: first neighbour search radius (Å); doubled (up to 4 times) while a cation has fewer
            than six X neighbours inside it.
    """
    n = len(structure)
    if n == 0 or n % 5:
        return None
    f = n // 5
    en = _electronegativities(structure)
    if not np.isfinite(en).all():
        return None
    order = np.argsort(-en, kind="stable")
    anions, cations = order[: 3 * f], order[3 * f :]
    if not en[anions].min() > en[cations].max():
        return None
    is_anion = np.zeros(n, dtype=bool)
    is_anion[anions] = True
    d6 = _sixth_anion_distance(structure, cations, is_anion, cutoff)
    if d6 is None:
        return None
    rank = np.argsort(d6, kind="stable")
    b_sites, a_sites = cations[rank[:f]], cations[rank[f:]]
    if not d6[rank[f:]].min() > min_ratio * d6[rank[:f]].max():
        return None
    roles = [""] * n
    for i in anions:
        roles[int(i)] = "X"
    for i in b_sites:
        roles[int(i)] = "B"
    for i in a_sites:
        roles[int(i)] = "A"
    return roles


def _sixth_anion_distance(
    structure: Any, cations: np.ndarray, is_anion: np.ndarray, cutoff: float
) -> np.ndarray | None:
    """Distance from each cation to its 6th-nearest anion (periodic images included)."""
    r = cutoff
    for _ in range(4):
        centers, points, _, dists = structure.get_neighbor_list(r)
        keep = is_anion[points]
        centers, dists = centers[keep], dists[keep]
        out = np.empty(len(cations))
        for k, c in enumerate(cations):
            mine = np.sort(dists[centers == c])
            if len(mine) < 6:
                break
            out[k] = mine[5]
        else:
            return out
        r *= 2
    return None


def site_roles(structures: Sequence[Any], scheme: str = "auto", *, show_progress: bool = False) -> list[list[str]]:
    """One list of site roles per structure.

    Args:
        structures: pymatgen ``Structure`` objects.
        scheme: ``"perovskite"`` / ``"auto"`` (A/B/X by :func:`perovskite_roles` where the rule
            applies, ``""`` for the sites of other structures; the two are the same rule, ``auto``
            being the name for mixed data sets) or ``"none"`` (no roles: every site ``""``).
    """
    if scheme not in ROLE_SCHEMES:
        raise ValueError(f"unknown site-role scheme {scheme!r}; choose one of {', '.join(ROLE_SCHEMES)}")
    if scheme == "none":
        return [[""] * len(s) for s in structures]
    from crystalgnn.progress import progress

    out = []
    with progress(total=len(structures), desc="site roles", disable=not show_progress) as bar:
        for s in structures:
            out.append(perovskite_roles(s) or [""] * len(s))
            bar.update(1)
    return out
