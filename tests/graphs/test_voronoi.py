"""Voronoi neighbours with solid-angle weights (crystalgnn.graphs.voronoi) and the Voronoi graph
option of the graph builder, against pymatgen's VoronoiNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.analysis.local_env import VoronoiNN
from pymatgen.core import Lattice, Structure

from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.cache import GraphCache
from crystalgnn.graphs.columns import GraphColumns, pack_records, unpack_records
from crystalgnn.graphs.crystal_graph import (
    GraphBuildError,
    GraphConfig,
    build_graph,
    build_graph_arrays,
    structure_arrays,
)
from crystalgnn.graphs.voronoi import (
    VoronoiError,
    cap_by_solid_angle,
    max_normalised,
    triangle_solid_angles,
    voronoi_neighbors,
)
from tinydata import low_symmetry_cells, strained_crystals

VORONOI = GraphConfig(neighbors="voronoi", max_neighbors=None)


def fcc(conventional: bool = True) -> Structure:
    s = Structure(Lattice.cubic(3.61), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    return s if conventional else s.get_primitive_structure()


def bcc(conventional: bool = True) -> Structure:
    s = Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return s if conventional else s.get_primitive_structure()


def faces(s: Structure):
    return voronoi_neighbors(s.cart_coords, s.lattice.matrix)


def reference(s: Structure) -> list[list[tuple[int, float, float]]]:
    """VoronoiNN's faces of every site: (neighbour index, distance, weight = solid angle / largest),
    sorted.
    """
    s = Structure(s.lattice, s.species, s.frac_coords % 1.0)  # VoronoiNN wraps its centres
    info = VoronoiNN(allow_pathological=True).get_all_nn_info(s)
    out = []
    for i, site in enumerate(info):
        rows = [(int(d["site_index"]), round(float(np.linalg.norm(d["site"].coords - s[i].coords)), 5), d["weight"])
                for d in site]  # fmt: skip
        out.append(sorted(rows))
    return out


@pytest.mark.parametrize("conventional", [True, False])
def test_fcc_has_twelve_equal_faces(conventional):
    s = fcc(conventional)
    v = faces(s)
    assert np.bincount(v.center).tolist() == [12] * len(s)
    np.testing.assert_allclose(v.solid_angle, 1 / 12, rtol=1e-9)  # 12 congruent rhombi
    np.testing.assert_allclose(v.distance, 3.61 / np.sqrt(2), rtol=1e-9)


@pytest.mark.parametrize("conventional", [True, False])
def test_bcc_has_eight_hexagons_and_six_squares(conventional):
    s = bcc(conventional)
    v = faces(s)
    assert np.bincount(v.center).tolist() == [14] * len(s)
    for i in range(len(s)):
        d = v.distance[v.center == i]
        w = v.solid_angle[v.center == i]
        near = np.isclose(d, 2.87 * np.sqrt(3) / 2)
        assert near.sum() == 8 and np.isclose(d[~near], 2.87).all()
        assert np.isclose(w.sum(), 1.0, atol=1e-12)
        # the truncated octahedron: the hexagons subtend more than the squares
        assert np.ptp(w[near]) < 1e-12 and np.ptp(w[~near]) < 1e-12 and w[near][0] > w[~near][0]
    np.testing.assert_allclose(sorted(max_normalised(v.solid_angle, v.center, len(s))[v.center == 0]),
                               sorted(w for _, _, w in reference(s)[0]), rtol=1e-9)  # fmt: skip


def test_low_symmetry_cells_match_voronoinn():
    for s in [*low_symmetry_cells(4), *strained_crystals(3, seed=5)]:
        v = faces(s)
        weight = max_normalised(v.solid_angle, v.center, len(s))
        ref = reference(s)
        np.testing.assert_allclose(np.bincount(v.center, weights=v.solid_angle), 1.0, atol=1e-9)
        for i in range(len(s)):
            at = v.center == i
            mine = sorted(
                (int(j), round(float(d), 5), float(w))
                for j, d, w in zip(v.neighbor[at], v.distance[at], weight[at], strict=True)
            )
            assert [m[:2] for m in mine] == [r[:2] for r in ref[i]]
            np.testing.assert_allclose([m[2] for m in mine], [r[2] for r in ref[i]], rtol=1e-6, atol=1e-9)


def test_vectors_point_from_centre_to_neighbour_image():
    s = low_symmetry_cells(4)[0]
    v = faces(s)
    expected = s.cart_coords[v.neighbor] + v.shift @ s.lattice.matrix - s.cart_coords[v.center]
    np.testing.assert_allclose(v.vector, expected, atol=1e-9)
    np.testing.assert_allclose(v.distance, np.linalg.norm(expected, axis=1), atol=1e-9)


def test_triangle_solid_angle_of_an_octant():
    one = np.eye(3)
    octant = triangle_solid_angles(one[[0]], one[[1]], one[[2]])
    np.testing.assert_allclose(octant, 4 * np.pi / 8)


def test_cap_keeps_the_largest_faces():
    s = bcc()
    v = faces(s)
    capped = cap_by_solid_angle(v, len(s), 8)
    assert np.bincount(capped.center).tolist() == [8, 8]
    np.testing.assert_allclose(capped.distance, 2.87 * np.sqrt(3) / 2)  # the hexagons
    assert cap_by_solid_angle(v, len(s), None) is v


def test_open_cell_within_the_radius_is_refused():
    s = Structure(Lattice.cubic(3.0), ["Na"], [[0, 0, 0]])
    with pytest.raises(VoronoiError, match="not closed"):
        voronoi_neighbors(s.cart_coords, s.lattice.matrix, max_radius=1.0)
    cfg = GraphConfig(neighbors="voronoi", radius=0.5, min_distance=0.1)
    with pytest.raises(GraphBuildError, match="not closed"):
        build_graph_arrays(*structure_arrays(s), cfg)


# ----------------------------------------------------------------------------- the graph option
def test_voronoi_graph_fields_and_config():
    s = low_symmetry_cells(4)[1]
    g = build_graph(s, VORONOI)
    v = faces(s)
    assert torch.equal(g.edge_index, torch.from_numpy(np.stack((v.neighbor, v.center))))
    torch.testing.assert_close(g.edge_weight, torch.from_numpy(v.solid_angle).float())
    capped = build_graph(s, GraphConfig(neighbors="voronoi", max_neighbors=6))
    assert int(torch.bincount(capped.edge_index[1]).max()) <= 6
    # nearest-neighbour graphs keep the cache keys they had before the option existed
    assert '"neighbors"' not in GraphConfig().cache_key() and '"voronoi"' in VORONOI.cache_key()
    assert GraphConfig.from_dict(VORONOI.to_dict()) == VORONOI
    with pytest.raises(ValueError, match="neighbors"):
        GraphConfig(neighbors="delaunay")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nearest"):
        GraphConfig(neighbors="voronoi", pad_to_max_neighbors=True)


def test_edge_weight_survives_columns_records_and_the_cache(tmp_path):
    structs = strained_crystals(5, seed=2)
    arrays = [build_graph_arrays(*structure_arrays(s), VORONOI) for s in structs]
    cols = GraphColumns.from_arrays(arrays)
    back = unpack_records(pack_records(cols))
    assert back.optional_fields() == ["edge_weight"]
    np.testing.assert_array_equal(back.fields["edge_weight"], cols.fields["edge_weight"])
    batch = back.to_batch()
    assert batch.edge_weight.shape == (int(cols.n_edges.sum()),)
    # nearest-neighbour records are unchanged (no optional field)
    plain = GraphColumns.from_arrays([build_graph_arrays(*structure_arrays(s), GraphConfig()) for s in structs])
    assert unpack_records(pack_records(plain)).optional_fields() == []
    cache = GraphCache(tmp_path / "cache")
    first, rep1 = build_graph_list(structs, VORONOI, cache=cache, show_progress=False, n_jobs=1)
    again, rep2 = build_graph_list(structs, VORONOI, cache=cache, show_progress=False, n_jobs=1)
    assert rep1.n_built == 5 and rep2.n_from_cache == 5
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.edge_weight, b.edge_weight)
