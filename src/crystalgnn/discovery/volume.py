"""Lattice rescaling of generated structures to a predicted volume (no candidate is relaxed).

Generated candidates keep the host's (or the prototype's) fractional coordinates and cell shape;
only the lattice is scaled isotropically, ``L' = L (V_pred / V)^(1/3)``. Two pymatgen predictors:

- with a reference (the host of a substitution, the parent compound of a prototype):
  ``RLSVolumePredictor``, reference lattice scaling by ionic radii, ``V_pred = V_ref
  (sum_k r_k n_k^(1/3) / sum_k r_ref,k n_ref,k^(1/3))^3`` over species ``k`` with ``n_k`` sites
  (Shannon radii at bond-valence oxidation states); the reference must be isostructural (true
  by construction for substitutions and decorations, so pymatgen's matcher check is skipped);
- without one, or when RLS fails: ``DLSVolumePredictor``, data-mined lattice scaling (Chu et
  al., Phys. Rev. B 97, 014103 (2018)): the cell is scaled so that its shortest bond ratio
  ``d_ij / (r_i + r_j)`` reaches 1 with data-mined radii, clamped to ``[0.5, 1.5] V``.

Measured on the bundled cathodes (benchmarks/notes/discovery.md): RLS from an isostructural
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


def predicted_volume(structure: Structure, reference: Structure | None = None) -> tuple[float, str]:
    """Predicted cell volume (Angstrom^3) and the method used (``"rls"`` or ``"dls"``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if reference is not None:
            try:
                return float(RLSVolumePredictor(check_isostructural=False).predict(structure, reference)), "rls"
            except Exception:
                pass
        return float(DLSVolumePredictor().predict(structure)), "dls"


def rescale_volume(structure: Structure, reference: Structure | None = None) -> tuple[Structure, str]:
    """A copy of ``structure`` scaled to :func:`predicted_volume`, and the method used."""
    volume, method = predicted_volume(structure, reference)
    out = structure.copy()
    out.scale_lattice(volume)
    return out, method
