"""The orbital field matrix (crystalgnn.graphs.orbital_field_matrix) against matminer's
``OrbitalFieldMatrix``: reference numbers in tests/fixtures/ofm_reference.json, written by
tests/fixtures/make_ofm_reference.py in an environment with matminer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystalgnn.graphs.crystal_graph import GraphConfig, build_graph
from crystalgnn.graphs.orbital_field_matrix import (
    ANGSTROM_IN_BOHR,
    ORBITAL_LABELS,
    orbital_field_matrices,
    valence_one_hot,
    valence_table,
)

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "ofm_reference.json").read_text())
VORONOI = GraphConfig(neighbors="voronoi", max_neighbors=None)


def dense(entries: list[list[float]]) -> np.ndarray:
    m = np.zeros((32, 32))
    for row, col, value in entries:
        m[int(row), int(col)] = value
    return m


def ofms_of(s: Structure) -> np.ndarray:
    g = build_graph(s, VORONOI)
    one_hot = torch.from_numpy(valence_table())[g.z]
    out = orbital_field_matrices(one_hot, g.edge_index, g.edge_dist.double(), g.edge_weight.double(), flatten=False)
    return out.numpy()


def test_valence_vectors_equal_matminer_for_elements_1_to_94():
    table = valence_table()
    for z, ones in REFERENCE["valence_one_hot"].items():
        assert np.flatnonzero(table[int(z)]).tolist() == ones, z
    assert len(ORBITAL_LABELS) == 32 and ORBITAL_LABELS[17] == "d10"


def test_valence_conventions_differ_only_below_the_outermost_shell():
    label = lambda v: [ORBITAL_LABELS[k] for k in np.flatnonzero(v)]  # noqa: E731
    assert label(valence_one_hot(26, "pham")) == ["s2", "d6"]  # Fe [Ar] 3d6 4s2
    assert label(valence_one_hot(26, "matminer")) == ["s2", "p6", "d6"]  # + 3s2 3p6 (semicore)
    assert label(valence_one_hot(8, "pham")) == label(valence_one_hot(8)) == ["s2", "p4"]  # O


@pytest.mark.parametrize("name", sorted(REFERENCE["structures"]))
def test_site_and_mean_ofms_equal_matminer(name):
    ref = REFERENCE["structures"][name]
    s = Structure(Lattice(ref["lattice"]), ref["species"], ref["frac_coords"])
    ofm = ofms_of(s)
    for i, entries in enumerate(ref["site_ofms"]):
        expected = dense(entries)
        np.testing.assert_allclose(ofm[i], expected, rtol=1e-6, atol=1e-7 * np.abs(expected).max())
    mean = dense(ref["mean_ofm"])
    np.testing.assert_allclose(ofm.mean(axis=0), mean, rtol=1e-6, atol=1e-7 * np.abs(mean).max())


def test_fcc_by_hand():
    """fcc Cu: 12 equal faces at a / sqrt(2), so X = 12 / (r in bohr) o o^T."""
    a = 3.61
    s = Structure(Lattice.cubic(a), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    o = valence_one_hot(29)
    expected = 12.0 / (a / np.sqrt(2) * ANGSTROM_IN_BOHR) * np.outer(o, o)
    np.testing.assert_allclose(ofms_of(s), np.broadcast_to(expected, (4, 32, 32)), rtol=1e-6)


def test_rows_are_the_neighbours_orbitals():
    """Rocksalt NaCl: Na's cell is a cube of 6 Cl faces, so its rows hold Cl's orbitals (s2 p5)
    and its columns Na's (s1)."""
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    na = ofms_of(s)[next(k for k, site in enumerate(s) if site.specie.symbol == "Na")]
    rows, cols = np.nonzero(na)
    assert {ORBITAL_LABELS[r] for r in rows} == {"s2", "p5"} and {ORBITAL_LABELS[c] for c in cols} == {"s1"}
