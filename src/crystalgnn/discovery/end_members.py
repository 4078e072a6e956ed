"""The other end member of an insertion electrode: charged from discharged, and back.

Supported:

- **discharged -> charged, fully** (:func:`charged_end_member`, ``fraction=1``): every
  working-ion site removed, the framework kept (``Structure.remove_species``);
- **discharged -> charged, partly** (``0 < fraction < 1``): ``k = fraction * n`` of the ``n``
  working-ion sites removed (``k`` must be an integer for the cell; use a supercell otherwise).
  Ion sites become ``A^{z+}`` at occupancy ``1 - fraction``; the removed charge ``k z`` is
  compensated evenly on the transition-metal sites (their formal charge rises by
  ``k z / n_TM``, a mean-field oxidation), then pymatgen's
  ``OrderDisorderedStructureTransformation`` (Ewald-energy minimiser, ``EwaldSummation``)
  ranks orderings and the lowest electrostatic energy one is kept. At most ``max_orderings``
  orderings are ranked;
- **charged -> discharged** (:func:`discharged_end_member`): only for candidates built from a
  prototype (:mod:`~crystalgnn.discovery.prototypes`), whose discharged partner is the
  decorated prototype itself. Inserting ions into an arbitrary charged host needs interstitial
  site finding and is **not supported** (a one-line error says so).

Neither end member is relaxed; the charged one keeps the discharged lattice (volume change
between end members then comes from a model or DFT, not from this module).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

from pymatgen.core import Element, Species, Structure
from pymatgen.transformations.standard_transformations import (
    OrderDisorderedStructureTransformation,
)

from crystalgnn.data.dataset import Rejection
from crystalgnn.discovery.candidates import Candidate, oxidation_guess
from crystalgnn.discovery.prototypes import build_prototype


class EndMemberError(ValueError):
    """An end member that cannot be built (one-line message)."""


def _partial_removal(structure: Structure, ion: str, fraction: float, max_orderings: int) -> Structure:
    guess = oxidation_guess(structure.composition)
    if guess is None:
        raise EndMemberError(f"{structure.composition.reduced_formula}: no oxidation states")
    n_ion = int(structure.composition[ion])
    k = fraction * n_ion
    if abs(k - round(k)) > 1e-6:
        raise EndMemberError(f"removing {fraction:g} of {n_ion} {ion} sites is not a whole number; use a supercell")
    redox = [el for el in guess if el != ion and Element(el).is_transition_metal]
    redox = redox or [el for el in guess if el != ion and guess[el] > 0]
    n_redox = sum(structure.composition[el] for el in redox)
    z = guess[ion]
    shift = round(k) * z / n_redox
    decorated = structure.copy()
    species_map: dict[str, Any] = {}
    for el, q in guess.items():
        if el == ion:
            species_map[el] = {Species(el, z): 1.0 - fraction}
        elif el in redox:
            species_map[el] = Species(el, q + shift)
        else:
            species_map[el] = Species(el, q)
    decorated.replace_species(species_map)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked: Any = OrderDisorderedStructureTransformation().apply_transformation(
            decorated, return_ranked_list=max_orderings
        )
    best = min(ranked, key=lambda r: r["energy"])["structure"]
    best.remove_oxidation_states()
    return best


def charged_end_member(candidate: Candidate, fraction: float = 1.0, max_orderings: int = 20) -> Candidate:
    """The charged partner of a discharged ``candidate``: ``fraction`` of its working ion removed.

    Metadata ``discharged_id`` links back to ``candidate``; ``ion_fraction_removed`` is
    ``fraction``. Raises :class:`EndMemberError` (no working ion, bad fraction, ...).
    """
    ion = candidate.working_ion
    if ion is None or Element(ion) not in candidate.structure.composition.elements:
        raise EndMemberError(f"{candidate.id}: no working ion to remove")
    if not 0 < fraction <= 1:
        raise EndMemberError(f"fraction of {ion} removed must be in (0, 1], got {fraction}")
    if fraction == 1:
        structure = candidate.structure.copy()
        structure.remove_species([ion])
    else:
        structure = _partial_removal(candidate.structure, ion, fraction, max_orderings)
    if len(structure) == 0:
        raise EndMemberError(f"{candidate.id}: nothing left after removing {ion}")
    return candidate.derive(
        structure,
        f"charged -{fraction:g}{ion}",
        discharged_id=candidate.id,
        ion_fraction_removed=fraction,
    )


def discharged_end_member(candidate: Candidate) -> Candidate:
    """The discharged partner of a charged candidate that came from a prototype.

    The prototype parameters in ``metadata["prototype"]`` rebuild the fully discharged
    decoration. Any other charged host raises :class:`EndMemberError` (not supported).
    """
    params = candidate.metadata.get("prototype")
    if not isinstance(params, dict):
        raise EndMemberError(f"{candidate.id}: inserting ions into a charged host is only supported for prototypes")
    rescale = "volume" in candidate.metadata
    return build_prototype(
        params["name"], params["metal"], params["working_ion"], params["anion"], params["polyanion"], rescale
    )


def end_member_pairs(
    discharged: Iterable[Candidate], fraction: float = 1.0, max_orderings: int = 20
) -> tuple[list[tuple[Candidate, Candidate]], list[Rejection]]:
    """``(discharged, charged)`` pairs; candidates whose charged member fails are rejected."""
    pairs: list[tuple[Candidate, Candidate]] = []
    rejected: list[Rejection] = []
    for cand in discharged:
        try:
            pairs.append((cand, charged_end_member(cand, fraction, max_orderings)))
        except (EndMemberError, ValueError) as err:
            rejected.append(Rejection(cand.id, cand.lineage, f"charged end member: {err}"))
    return pairs, rejected
