"""Lattice rescaling of generated structures to a predicted volume (no candidate is relaxed).

Generated candidates keep the host's (or the prototype's) fractional coordinates and cell shape;
only the lattice is scaled isotropically, ``L' = L (V_pred / V)^(1/3)``. Two pymatgen predictors:

- with a reference (the host of a substitution, the parent compound of a prototype):
  ``RLSVolumePredictor``, reference lattice scaling by ionic radii, ``V_pred = V_ref
  (sum_k r_k n_k^(1/3) / sum_k r_ref,k n_ref,k^(1/3))^3`` over species ``k`` with ``n_k`` sites
  (Shannon radii at the oxidation states of the composition guess); the reference must be
  isostructural (true by construction for substitutions and decorations, so pymatgen's matcher
  check is skipped). :func:`rls_volume` gives pymatgen's number from the compositions and
  cached radii, without decorating copies of the structures;
- without one, or when RLS fails: ``DLSVolumePredictor``, data-mined lattice scaling (Chu et
  al., Phys. Rev. B 97, 014103 (2018)): the cell is scaled so that its shortest bond ratio
  ``d_ij / (r_i + r_j)`` reaches 1 with data-mined radii, clamped to ``[0.5, 1.5] V``.

Measured on the bundled cathodes (benchmarks/RESULTS.md, section 11): RLS from an isostructural
host is within a few percent; DLS alone underestimates layered oxides by ~25 %. Either way
these are *unrelaxed* guesses: any reported number depending on the volume says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

from pymatgen.analysis.structure_prediction.volume_predictor import (
    DLSVolumePredictor,
    RLSVolumePredictor,
)
from pymatgen.core import Composition, Species, Structure

from crystalgnn.discovery.oxidation import oxidation_guess

RADII = ("ionic", "atomic")
"""RLS radius kinds in pymatgen's order (``radii_type="ionic-atomic"``)."""


def _guess_for_undecorated(comp: Composition) -> dict[str, float] | None:
    """The cached oxidation guess of ``comp``; ``None`` when it has oxidation states already
    (they are used as given) or has no guess.
    """
    if any(hasattr(sp, "oxi_state") for sp in comp):
        return None
    return oxidation_guess(comp)


def _with_oxidation_states(structure: Structure) -> Structure:
    """``structure`` decorated with the cached composition guess (much faster than the bond
    valence analysis RLS runs otherwise); unchanged when decorated already or without a guess.
    """
    guess = _guess_for_undecorated(structure.composition)
    if guess is None:
        return structure
    decorated = structure.copy()
    decorated.add_oxidation_state_by_element(guess)
    return decorated


def pymatgen_rls_volume(structure: Structure, reference: Structure) -> float:
    """Pymatgen's ``RLSVolumePredictor(check_isostructural=False).predict`` on copies of both
    structures decorated with :func:`~crystalgnn.discovery.oxidation.oxidation_guess` (bond
    valence analysis when there is no guess); raises what pymatgen raises.
    """
    rls = RLSVolumePredictor(check_isostructural=False)
    return float(rls.predict(_with_oxidation_states(structure), _with_oxidation_states(reference)))


@lru_cache(maxsize=4096)
def _radius(symbol: str, oxidation_state: float, kind: str) -> float | None:
    """``Species(symbol, oxidation_state).ionic_radius`` (or ``.atomic_radius``), cached; pymatgen's
    notes on fallback radii (high-spin data for fractional states) are silenced.
    """
    species = Species(symbol, oxidation_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        radius = species.ionic_radius if kind == "ionic" else species.atomic_radius
    return None if radius is None else float(radius)


def _species_amounts(structure: Structure) -> list[tuple[str, float, float]] | None:
    """``(element, guessed state, amount)`` in the order of ``structure.composition`` (that of
    the decorated composition pymatgen iterates), or ``None`` when decorated or without a guess.
    """
    comp = structure.composition
    guess = _guess_for_undecorated(comp)
    if guess is None:
        return None
    return [(el.symbol, guess[el.symbol], amount) for el, amount in comp.items()]


def _radius_sum(species: Sequence[tuple[str, float, float]], kind: str) -> float | None:
    """``sum_k r_k n_k^(1/3)`` added in pymatgen's order (from 0), ``None`` if a radius is missing."""
    total: float = 0
    for symbol, state, amount in species:
        radius = _radius(symbol, state, kind)
        if radius is None:
            return None
        total += radius * amount ** (1 / 3)
    return total


def rls_volume(structure: Structure, reference: Structure) -> float | None:
    """Pymatgen's RLS volume (:func:`pymatgen_rls_volume`) computed from the compositions alone.

    ``V = V_ref (sum_k r_k n_k^(1/3) / sum_k r_ref,k n_ref,k^(1/3))^3`` with the Shannon ionic
    radii of the cached oxidation guesses (atomic radii when an ionic radius is missing, as in
    pymatgen), summed in the same order: the same float, without copying or decorating either
    structure. ``None`` when that shortcut does not apply (a structure already decorated or
    without a guess, a missing radius, a zero sum): use :func:`pymatgen_rls_volume` then.
    """
    try:
        species = _species_amounts(structure)
        ref_species = _species_amounts(reference)
        if species is None or ref_species is None:
            return None
        for kind in RADII:
            numerator = _radius_sum(species, kind)
            denominator = _radius_sum(ref_species, kind)
            if numerator is None or denominator is None:
                continue
            if denominator == 0:
                return None
            return float(reference.volume * (numerator / denominator) ** 3)
    except Exception:  # anything unusual: pymatgen's own path decides
        return None
    return None


def predicted_volume(structure: Structure, reference: Structure | None = None) -> tuple[float, str]:
    """Predicted cell volume (Angstrom^3) and the method used (``"rls"`` or ``"dls"``).

    For RLS both structures get oxidation states from
    :func:`~crystalgnn.discovery.oxidation.oxidation_guess` (element averages, cached per
    formula) and the volume comes from :func:`rls_volume` (pymatgen's number from cached radii);
    pymatgen's predictor (:func:`pymatgen_rls_volume`, bond-valence analysis when there is no
    guess) runs only where that shortcut does not apply.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if reference is not None:
            volume = rls_volume(structure, reference)
            if volume is not None:
                return volume, "rls"
            try:
                return pymatgen_rls_volume(structure, reference), "rls"
            except Exception:
                pass
        return float(DLSVolumePredictor().predict(structure)), "dls"


def rescale_volume(structure: Structure, reference: Structure | None = None) -> tuple[Structure, str]:
    """A copy of ``structure`` scaled to :func:`predicted_volume`, and the method used."""
    volume, method = predicted_volume(structure, reference)
    out = structure.copy()
    out.scale_lattice(volume)
    return out, method
