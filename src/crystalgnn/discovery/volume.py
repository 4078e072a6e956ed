"""Lattice rescaling of generated structures to a predicted volume (no candidate is relaxed).

Generated candidates keep the host's (or the prototype's) fractional coordinates and cell shape;
only the lattice is scaled isotropically, ``L' = L (V_pred / V)^(1/3)``. Two pymatgen predictors:

- with a reference (the host of a substitution, the parent compound of a prototype):
  ``RLSVolumePredictor``, reference lattice scaling by ionic radii, ``V_pred = V_ref
  (sum_k r_k n_k^(1/3) / sum_k r_ref,k n_ref,k^(1/3))^3`` over species ``k`` with ``n_k`` sites
  (Shannon radii at the oxidation states of the composition guess); the reference must be isostructural (true
  by construction for substitutions and decorations, so pymatgen's matcher check is skipped);
- without one, or when RLS fails: ``DLSVolumePredictor``, data-mined lattice scaling (Chu et
  al., Phys. Rev. B 97, 014103 (2018)): the cell is scaled so that its shortest bond ratio
  ``d_ij / (r_i + r_j)`` reaches 1 with data-mined radii, clamped to ``[0.5, 1.5] V``.

Measured on the bundled cathodes (benchmarks/RESULTS.md, section 11): RLS from an isostructural
host is within a few percent; DLS alone underestimates layered oxides by ~25 %. Either way
these are *unrelaxed* guesses: any reported number depending on the volume says so.
"""

from __future__ import annotations

import warnings

from pymatgen.analysis.structure_prediction.volume_predictor import (
    DLSVolumePredictor,
    RLSVolumePredictor,
)
from pymatgen.core import Structure

from crystalgnn.discovery.candidates import oxidation_guess


def _with_oxidation_states(structure: Structure) -> Structure:
    """``structure`` decorated with the cached composition guess (much faster than the bond
    valence analysis RLS runs otherwise); unchanged when there is no guess.
    """
    if any(hasattr(sp, "oxi_state") for sp in structure.composition):
        return structure
    guess = oxidation_guess(structure.composition)
    if guess is None:
        return structure
    decorated = structure.copy()
    decorated.add_oxidation_state_by_element(guess)
    return decorated


def predicted_volume(structure: Structure, reference: Structure | None = None) -> tuple[float, str]:
    """Predicted cell volume (Angstrom^3) and the method used (``"rls"`` or ``"dls"``).

    For RLS both structures get oxidation states from
    :func:`~crystalgnn.discovery.candidates.oxidation_guess` (element averages, cached per
    formula); pymatgen's bond-valence analysis is used only when there is no guess.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if reference is not None:
            try:
                rls = RLSVolumePredictor(check_isostructural=False)
                volume = rls.predict(_with_oxidation_states(structure), _with_oxidation_states(reference))
                return float(volume), "rls"
            except Exception:
                pass
        return float(DLSVolumePredictor().predict(structure)), "dls"


def rescale_volume(structure: Structure, reference: Structure | None = None) -> tuple[Structure, str]:
    """A copy of ``structure`` scaled to :func:`predicted_volume`, and the method used."""
    volume, method = predicted_volume(structure, reference)
    out = structure.copy()
    out.scale_lattice(volume)
    return out, method
