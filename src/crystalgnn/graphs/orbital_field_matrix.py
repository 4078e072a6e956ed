r"""The orbital field matrix (OFM) of every atom (Pham et al., Sci. Technol. Adv. Mater. 18, 756,
2017), the atom features of OGCNN (Karamad et al., Phys. Rev. Mater. 4, 093801, 2020).

Each element is a 32-dimensional one-hot vector :math:`\mathbf o` of its valence subshells
(:func:`valence_one_hot`: :math:`s^1 \ldots s^2, p^1 \ldots p^6, d^1 \ldots d^{10}, f^1 \ldots
f^{14}`, a 1 at the occupation of each valence subshell: the s and p of shell n, the d of n - 1
and the f of n - 2, and every subshell above n). Which n: Pham et al. mean the outermost shell
(``convention="pham"``: Fe [Ar] 3d6 4s2 -> :math:`s^2, d^6`); matminer's ``OrbitalFieldMatrix``,
which OGCNN used, takes the n of the *last listed* subshell of pymatgen's electronic structure
(aufbau order, so 3 for Fe: 3s2 3p6 3d6 and 4s2 -> :math:`s^2, p^6, d^6`, the semicore s and p of
the d and f blocks included). ``convention="matminer"`` (the default, as OGCNN) reproduces it;
the two agree for the s and p blocks. The OFM of atom :math:`i` sums the outer products with its
Voronoi neighbours :math:`k`,

.. math::
    X_i = \sum_k \mathbf o_k\, \mathbf o_i^{\top}\; \frac{\theta_k}{\theta_{\max}}\;
        \zeta(r_{ik}), \qquad \zeta(r) = \frac{1}{r},

with :math:`\theta_k / \theta_{\max}` the solid angle of the shared Voronoi face relative to the
atom's largest one and :math:`r` in bohr (Eq. 3 of Pham et al.; rows: neighbour orbitals,
columns: the centre's, as matminer's ``OrbitalFieldMatrix``, which this matches, tested against
reference numbers it produced, ``tests/fixtures/ofm_reference.json``). Since :math:`\mathbf o_i`
is the same for every term, :math:`X_i = \mathbf s_i \mathbf o_i^\top` with :math:`\mathbf s_i =
\sum_k w_{ik}\zeta(r_{ik}) \mathbf o_k`: one scatter over the edges and one outer product per
atom, for a whole batch of graphs at once (:func:`orbital_field_matrices`).

The Voronoi graph comes from :class:`~crystalgnn.graphs.crystal_graph.GraphConfig` with
``neighbors="voronoi"`` (its ``edge_weight``: the solid angle / 4 pi).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
from torch import Tensor

#: the 32 valence subshell occupations: s1-s2, p1-p6, d1-d10, f1-f14
ORBITAL_LABELS = tuple(f"{kind}{k}" for kind, n in (("s", 2), ("p", 6), ("d", 10), ("f", 14)) for k in range(1, n + 1))
_OFFSET = {"s": 0, "p": 2, "d": 8, "f": 18}
#: 1 Å in bohr (scipy.constants: Angstrom star / Bohr radius, the value matminer divides by)
ANGSTROM_IN_BOHR = 1.00001495e-10 / 5.29177210544e-11


Convention = Literal["matminer", "pham"]


def valence_one_hot(z: int, convention: Convention = "matminer") -> np.ndarray:
    """The 32-dim valence-subshell one-hot vector of element ``z`` from pymatgen's electronic
    structure: the subshells of shell n and above, the d and f of n - 1 and the f of n - 2, with n
    the last listed subshell's (``"matminer"``) or the outermost shell (``"pham"``).
    """
    from pymatgen.core.periodic_table import Element

    shells = Element.from_Z(int(z)).full_electronic_structure
    top = shells[-1][0] if convention == "matminer" else max(n for n, _, _ in shells)
    vec = np.zeros(len(ORBITAL_LABELS), dtype=np.float32)
    for n, kind, electrons in shells:
        valence = n >= top or (n == top - 1 and kind in "df") or (n == top - 2 and kind == "f")
        if valence and electrons > 0:
            vec[_OFFSET[kind] + int(electrons) - 1] = 1.0
    return vec


@lru_cache(maxsize=4)
def valence_table(max_z: int = 100, convention: Convention = "matminer") -> np.ndarray:
    """(max_z + 1, 32) one-hot vectors of elements 1..max_z (row 0 zero)."""
    table = np.zeros((max_z + 1, len(ORBITAL_LABELS)), dtype=np.float32)
    for z in range(1, max_z + 1):
        table[z] = valence_one_hot(z, convention)
    return table


def orbital_field_matrices(
    one_hot: Tensor, edge_index: Tensor, edge_dist: Tensor, edge_weight: Tensor, *, flatten: bool = True
) -> Tensor:
    r"""The OFM of every atom of a (batched) Voronoi graph.

    Args:
        one_hot: (N, 32) valence one-hot vector of each atom (``valence_table()[z]``).
        edge_index: (2, E) ``(neighbour k, centre i)``.
        edge_dist: (E,) distances, Å.
        edge_weight: (E,) solid angles (any scale: normalised here by each centre's largest).
        flatten: return (N, 1024) instead of (N, 32, 32).

    Returns:
        :math:`X_i` of every atom, rows the neighbours' orbitals, columns the centre's, in the
        dtype of ``edge_dist`` and ``edge_weight``.
    """
    nbr, centre = edge_index
    n = one_hot.shape[0]
    top = edge_weight.new_zeros(n).scatter_reduce(0, centre, edge_weight, reduce="amax", include_self=False)
    scale = edge_weight / top[centre].clamp(min=1e-12) / (edge_dist * ANGSTROM_IN_BOHR)
    one_hot = one_hot.to(scale.dtype)
    field = one_hot.new_zeros(n, one_hot.shape[1]).index_add_(0, centre, one_hot[nbr] * scale[:, None])
    ofm = field[:, :, None] * one_hot[:, None, :]
    return ofm.reshape(n, -1) if flatten else ofm


__all__ = ["ANGSTROM_IN_BOHR", "ORBITAL_LABELS", "orbital_field_matrices", "valence_one_hot", "valence_table"]
