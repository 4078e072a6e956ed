r"""Voronoi-tessellation neighbours of a periodic structure, with solid-angle weights.

The neighbours of atom :math:`i` are the atoms whose Voronoi cells share a face with the cell of
:math:`i` (Park & Wolverton, Phys. Rev. Mater. 4, 063801, 2020: iCGCNN's crystal graph; the
orbital field matrix of Pham et al. 2017 weighs neighbours the same way). Each face :math:`F_{ij}`
is weighted by the solid angle it subtends at :math:`i`,

.. math::
    \Omega_{ij} = \int_{F_{ij}} \frac{(\mathbf x - \mathbf r_i)\cdot \hat{\mathbf n}}
        {|\mathbf x - \mathbf r_i|^3}\, dA, \qquad \sum_j \Omega_{ij} = 4\pi,

computed exactly as a sum over the triangles of a fan of the (convex) face with the formula of
Van Oosterom & Strackee (IEEE Trans. Biomed. Eng. 30, 125, 1983),
:math:`\tan(\Omega/2) = |\mathbf a\cdot(\mathbf b\times\mathbf c)| / (abc + (\mathbf a\cdot\mathbf
b)c + (\mathbf a\cdot\mathbf c)b + (\mathbf b\cdot\mathbf c)a)`. The graph stores the fraction
:math:`w_{ij} = \Omega_{ij}/4\pi` (the weights of an atom sum to 1); pymatgen's ``VoronoiNN``
reports :math:`\Omega_{ij}/\max_k \Omega_{ik}` instead (:func:`max_normalised`).

Periodicity: the tessellation (``scipy.spatial.Voronoi``, i.e. Qhull) is built for the atoms of
the cell plus every periodic image within a search radius :math:`R` of one of them. The cell of
atom :math:`i` is exact when all its vertices lie within :math:`R/2` of :math:`i` (an atom
farther than :math:`R` has its bisecting plane beyond every vertex); otherwise :math:`R` grows by
1.4 up to the graph radius, and a cell still open is refused. The first :math:`R` is sized to hold
about 60 atoms at the cell's density. Faces subtending less than :data:`MIN_FRACTION` of the
sphere (degenerate Qhull ridges of highly symmetric cells, zero area) are dropped, as
``VoronoiNN`` drops weights of zero. Everything after the Qhull call is array arithmetic over
all faces and triangles of the structure at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crystalgnn.graphs.neighbors import NeighborBackend, periodic_neighbors

#: faces subtending less than this fraction of the full sphere are dropped (zero-area ridges)
MIN_FRACTION = 1e-6
#: atoms the first image-search sphere holds, at the cell's density
START_ATOMS = 60


class VoronoiError(ValueError):
    """A Voronoi cell that is not closed within the search radius (message: the reason)."""


@dataclass
class VoronoiNeighbors:
    """The Voronoi faces of every atom of a cell (one row per directed pair, sorted by centre,
    then distance).

    Attributes:
        center: (P,) int64, atom i.
        neighbor: (P,) int64, atom j (index in the cell).
        shift: (P, 3) int64, the lattice image of j.
        vector: (P, 3) float64, ``r_j + shift @ lattice - r_i``.
        distance: (P,) float64.
        solid_angle: (P,) float64, the face's solid angle at i over 4 pi (sums to 1 per atom).
    """

    center: np.ndarray
    neighbor: np.ndarray
    shift: np.ndarray
    vector: np.ndarray
    distance: np.ndarray
    solid_angle: np.ndarray


def triangle_solid_angles(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Solid angles (sr) of triangles with vertices ``a, b, c`` (each (T, 3), relative to the
    viewpoint), by Van Oosterom & Strackee's formula.
    """
    la, lb, lc = (np.linalg.norm(v, axis=1) for v in (a, b, c))
    triple = np.abs(np.einsum("ij,ij->i", a, np.cross(b, c)))
    den = (
        la * lb * lc
        + np.einsum("ij,ij->i", a, b) * lc
        + np.einsum("ij,ij->i", a, c) * lb
        + np.einsum("ij,ij->i", b, c) * la
    )
    omega: np.ndarray = 2.0 * np.arctan2(triple, den)
    return omega


def polygon_solid_angles(vertices: np.ndarray, faces: list[list[int]], origins: np.ndarray) -> np.ndarray:
    """Solid angle of each convex polygon ``faces[k]`` (vertex indices in cyclic order) seen
    from ``origins[k]``: a fan of triangles from the first vertex, all faces at once.

    Shapes:
        vertices (V, 3), faces K lists, origins (K, 3) -> (K,)
    """
    sizes = np.fromiter((len(f) for f in faces), dtype=np.int64, count=len(faces))
    flat = np.fromiter((v for f in faces for v in f), dtype=np.int64, count=int(sizes.sum()))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    n_tri = np.maximum(sizes - 2, 0)
    face_of = np.repeat(np.arange(len(faces)), n_tri)
    k = np.arange(int(n_tri.sum())) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri)  # triangle number in its fan
    first = flat[starts[face_of]]
    second = flat[starts[face_of] + k + 1]
    third = flat[starts[face_of] + k + 2]
    o = origins[face_of]
    omega = triangle_solid_angles(vertices[first] - o, vertices[second] - o, vertices[third] - o)
    return np.bincount(face_of, weights=omega, minlength=len(faces))


def voronoi_neighbors(
    cart: np.ndarray, lattice: np.ndarray, max_radius: float = 8.0, backend: NeighborBackend = "vesin"
) -> VoronoiNeighbors:
    """The Voronoi neighbours of every atom of a periodic cell, with solid-angle fractions.

    Args:
        cart: (N, 3) cartesian positions, Å.
        lattice: (3, 3) lattice vectors as rows, Å.
        max_radius: the largest image-search radius tried (Å); a cell not closed within half of
            it raises :class:`VoronoiError`.
        backend: neighbour-list library for the periodic images.

    Raises:
        VoronoiError: a Voronoi cell not closed within ``max_radius / 2`` of its atom.
    """
    from scipy.spatial import Voronoi

    cart = np.asarray(cart, dtype=np.float64)
    lattice = np.asarray(lattice, dtype=np.float64)
    n = len(cart)
    volume = abs(float(np.linalg.det(lattice)))
    radius = min(max_radius, (3.0 * START_ATOMS * volume / (4.0 * np.pi * max(n, 1))) ** (1.0 / 3.0))
    while True:
        pairs = periodic_neighbors(cart, lattice, radius, backend)
        # the image-extended point set: the cell's atoms first, then each distinct (atom, image)
        key = np.concatenate((pairs.neighbor[:, None], pairs.shift), axis=1)
        images = np.unique(key[(pairs.shift != 0).any(axis=1)], axis=0)
        atom = np.concatenate((np.arange(n), images[:, 0]))
        shift = np.concatenate((np.zeros((n, 3), dtype=np.int64), images[:, 1:]))
        points = cart[atom] + shift @ lattice
        if len(points) >= 5:  # Qhull needs d + 2 points in 3-d
            vor = Voronoi(points)
            closed, found = _faces(vor, points, atom, shift, n, radius)
            if closed:
                return found
        if radius >= max_radius:
            raise VoronoiError(f"Voronoi cells not closed within {max_radius} Å (too few periodic images)")
        radius = min(max_radius, radius * 1.4)


def _faces(
    vor: object, points: np.ndarray, atom: np.ndarray, shift: np.ndarray, n: int, radius: float
) -> tuple[bool, VoronoiNeighbors]:
    """The faces of the first ``n`` points' cells; ``False`` when one of them is not exact."""
    ridge_points = np.asarray(vor.ridge_points, dtype=np.int64)  # type: ignore[attr-defined]
    ridge_vertices: list[list[int]] = vor.ridge_vertices  # type: ignore[attr-defined]
    vertices = np.asarray(vor.vertices)  # type: ignore[attr-defined]
    # both directions of every ridge that touches an atom of the cell
    p, q = ridge_points[:, 0], ridge_points[:, 1]
    rows = np.concatenate((np.flatnonzero(p < n), np.flatnonzero(q < n)))
    centre = np.concatenate((p[p < n], q[q < n]))
    other = np.concatenate((q[p < n], p[q < n]))
    faces = [ridge_vertices[r] for r in rows.tolist()]
    sizes = np.fromiter((len(f) for f in faces), dtype=np.int64, count=len(faces))
    flat = np.fromiter((v for f in faces for v in f), dtype=np.int64, count=int(sizes.sum()))
    empty = VoronoiNeighbors(*(np.zeros((0,) + s, dtype=t) for s, t in _SHAPES))
    if (flat < 0).any():  # an unbounded cell among the cell's atoms
        return False, empty
    reach = np.linalg.norm(vertices[flat] - points[np.repeat(centre, sizes)], axis=1)
    if reach.size == 0 or reach.max() > radius / 2.0:
        return False, empty
    omega = polygon_solid_angles(vertices, faces, points[centre]) / (4.0 * np.pi)
    keep = omega > MIN_FRACTION
    centre, other, omega = centre[keep], other[keep], omega[keep]
    vec = points[other] - points[centre]
    dist = np.linalg.norm(vec, axis=1)
    order = np.lexsort((shift[other][:, 2], shift[other][:, 1], shift[other][:, 0], atom[other], dist, centre))
    return True, VoronoiNeighbors(
        centre[order],
        atom[other][order],
        shift[other][order],
        vec[order],
        dist[order],
        omega[order],
    )


_SHAPES = (((), np.int64), ((), np.int64), ((3,), np.int64), ((3,), np.float64), ((), np.float64), ((), np.float64))


def max_normalised(solid_angle: np.ndarray, center: np.ndarray, n: int) -> np.ndarray:
    """Solid angles divided by the largest of the same centre (``VoronoiNN``'s ``weight``)."""
    top = np.zeros(n)
    np.maximum.at(top, center, solid_angle)
    out: np.ndarray = solid_angle / top[center]
    return out


def cap_by_solid_angle(found: VoronoiNeighbors, n: int, k: int | None) -> VoronoiNeighbors:
    """Keep at most the ``k`` largest faces of each atom (ties: the nearer neighbour), in the
    original order (``None``: keep all).
    """
    if k is None or len(found.center) == 0:
        return found
    order = np.lexsort((found.distance, -found.solid_angle, found.center))
    counts = np.bincount(found.center, minlength=n)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts[found.center[order]]
    keep = rank < k
    return VoronoiNeighbors(
        found.center[keep],
        found.neighbor[keep],
        found.shift[keep],
        found.vector[keep],
        found.distance[keep],
        found.solid_angle[keep],
    )


__all__ = [
    "MIN_FRACTION",
    "VoronoiError",
    "VoronoiNeighbors",
    "cap_by_solid_angle",
    "max_normalised",
    "polygon_solid_angles",
    "triangle_solid_angles",
    "voronoi_neighbors",
]
