"""Tests for crystalgnn.baselines.soap: invariances, species handling, parallel path, disk cache."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation

import crystalgnn.baselines.soap as soap_mod
from crystalgnn.baselines.soap import SoapConfig, dataset_species, default_cache_dir, soap_features


def _rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(a).max())


def _rotated(s: Structure, seed: int = 0) -> Structure:
    R = Rotation.random(random_state=seed).as_matrix()
    return Structure(Lattice(s.lattice.matrix @ R.T), s.species, s.frac_coords)


def _permuted(s: Structure, perm: list[int]) -> Structure:
    return Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm])


def test_shape_dtype_and_feature_count(triclinic):
    X = soap_features([triclinic, triclinic], cache_dir=False)
    assert X.dtype == np.float32
    # n_max = 1, no compression: S (S + 1) / 2 species pairs x (l_max + 1) degrees; S = 3 (O, Ti, Sr)
    assert X.shape == (2, 3 * 4 // 2 * 3)
    assert np.all(np.isfinite(X)) and np.abs(X).max() > 0


@pytest.mark.parametrize("average", ["inner", "outer"])
def test_invariant_to_rotation_and_atom_order(triclinic, average):
    cfg = SoapConfig(average=average)
    variants = [triclinic, _rotated(triclinic, 1), _rotated(triclinic, 2), _permuted(triclinic, [3, 1, 4, 0, 2])]
    X = soap_features(variants, cfg, cache_dir=False)
    for k in range(1, len(variants)):
        assert _rel_diff(X[0], X[k]) < 1e-5


@pytest.mark.parametrize("average", ["inner", "outer"])
def test_invariant_to_supercells(triclinic, average):
    # Every atom of a supercell has the environment of its image in the primitive cell, so the
    # averaged coefficients (inner) and the averaged power spectra (outer) are unchanged; this
    # holds (to float32 round-off) for diagonal and non-diagonal supercells.
    diag = triclinic.copy()
    diag.make_supercell([2, 1, 3])
    skew = triclinic.copy()
    skew.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 2]])
    X = soap_features([triclinic, diag, skew], SoapConfig(average=average), cache_dir=False)
    assert _rel_diff(X[0], X[1]) < 1e-5
    assert _rel_diff(X[0], X[2]) < 1e-5


def test_distortion_changes_the_vector(triclinic):
    # the invariance tests are not vacuous: moving one atom, or straining, changes the vector
    moved = triclinic.copy()
    moved.translate_sites([1], [0.1, 0.0, 0.0])
    strained = triclinic.copy()
    strained.scale_lattice(triclinic.volume * 1.1)
    X = soap_features([triclinic, moved, strained], cache_dir=False)
    assert _rel_diff(X[0], X[1]) > 1e-3
    assert _rel_diff(X[0], X[2]) > 1e-3


def test_species_default_and_explicit(triclinic):
    assert dataset_species([triclinic]) == ["O", "Ti", "Sr"]  # sorted by atomic number
    wide = soap_features([triclinic], species=["Sr", "Ti", "O", "Ba"], cache_dir=False)
    assert wide.shape == (1, 4 * 5 // 2 * 3)
    from_cfg = soap_features([triclinic], SoapConfig(species=("Ba", "O", "Sr", "Ti")), cache_dir=False)
    np.testing.assert_array_equal(wide, from_cfg)
    with pytest.raises(ValueError, match="do not cover"):
        soap_features([triclinic], species=["Sr", "O"], cache_dir=False)
    with pytest.raises(ValueError, match="average"):
        SoapConfig(average="off")


def test_parallel_chunks_match_serial(triclinic, monkeypatch):
    structures = [_rotated(triclinic, k) for k in range(5)] + [triclinic]
    serial = soap_features(structures, n_jobs=1, cache_dir=False)
    monkeypatch.setattr(soap_mod, "PARALLEL_MIN", 1)
    monkeypatch.setattr(soap_mod, "CHUNK", 2)
    parallel = soap_features(structures, n_jobs=2, cache_dir=False)
    np.testing.assert_allclose(parallel, serial, rtol=1e-6, atol=1e-7)


def test_cache_second_call_loads_without_computing(triclinic, tmp_path, monkeypatch):
    structures = [triclinic, _rotated(triclinic, 3)]
    first = soap_features(structures, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("compute_soap called although the result is cached")

    monkeypatch.setattr(soap_mod, "compute_soap", fail)
    second = soap_features(structures, cache_dir=tmp_path)
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32

    # a changed structure, config or species list is a different key and must be computed
    moved = triclinic.copy()
    moved.translate_sites([0], [0.01, 0, 0])
    for call in (
        lambda: soap_features([moved, structures[1]], cache_dir=tmp_path),
        lambda: soap_features(structures, SoapConfig(r_cut=4.0), cache_dir=tmp_path),
        lambda: soap_features(structures, species=["O", "Ti", "Sr", "Ba"], cache_dir=tmp_path),
    ):
        with pytest.raises(AssertionError, match="compute_soap called"):
            call()


def test_default_cache_dir_follows_env(tmp_path, monkeypatch, triclinic):
    monkeypatch.setenv("CRYSTALGNN_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "soap"
    soap_features([triclinic])
    assert len(list((tmp_path / "soap").glob("*.npy"))) == 1
