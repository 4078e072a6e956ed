"""Tests for crystalgnn.baselines.floors: the training-mean and per-element floors."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition

from crystalgnn.baselines.floors import MeanBaseline, PerElementBaseline, element_fractions

CONSTANTS = {"Li": -1.9, "Fe": -8.3, "O": -4.9, "P": -5.4, "Mn": 0.7, "Co": 3.1}


def additive(structures) -> np.ndarray:
    """sum over atoms of a per-element constant, divided by the number of atoms."""
    return np.array([sum(CONSTANTS[site.specie.symbol] for site in s) / len(s) for s in structures])


def test_mean_baseline_predicts_training_mean(make_structures):
    train = make_structures(list(CONSTANTS), 30, seed=0)
    y = np.random.default_rng(0).normal(3.0, 2.0, size=30)
    model = MeanBaseline().fit(train, y)
    pred = model.predict(make_structures(list(CONSTANTS), 7, seed=1))
    assert pred.shape == (7,)
    np.testing.assert_allclose(pred, y.mean(), rtol=0, atol=1e-12)
    assert model.n_parameters == 1
    with pytest.raises(ValueError, match="NaN"):
        MeanBaseline().fit(train[:2], [1.0, np.nan])
    with pytest.raises(RuntimeError):
        MeanBaseline().predict(train)


def test_element_fractions():
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(4), ["Li", "Fe", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0]])
    (fr,) = element_fractions([s])
    assert fr == pytest.approx({"Li": 0.25, "Fe": 0.25, "O": 0.5})
    (fr,) = element_fractions([Composition("Li0.5FePO4")])  # partial occupancy via a Composition
    assert sum(fr.values()) == pytest.approx(1.0)


def test_per_element_exact_on_additive_target_and_new_compositions(make_structures):
    elements = list(CONSTANTS)
    train = make_structures(elements, 60, seed=2)
    model = PerElementBaseline().fit(train, additive(train))
    assert model.n_parameters == len(elements)
    assert model.rank_ == len(elements)
    for el, w in model.weights.items():
        assert w == pytest.approx(CONSTANTS[el], abs=1e-8)
    np.testing.assert_allclose(model.predict(train), additive(train), rtol=0, atol=1e-8)

    # compositions never seen in training (larger cells, other ratios) are predicted exactly
    test = make_structures(elements, 40, seed=3, max_atoms=20)
    train_formulas = {s.composition.reduced_formula for s in train}
    assert any(s.composition.reduced_formula not in train_formulas for s in test)
    np.testing.assert_allclose(model.predict(test), additive(test), rtol=0, atol=1e-8)
    assert model.unseen_elements_ == {}


def test_per_element_is_fitted_on_training_set_only(make_structures):
    train = make_structures(["Li", "Fe", "O"], 20, seed=4)
    y = additive(train)
    model = PerElementBaseline().fit(train, y)
    assert model.elements_ == ["Li", "O", "Fe"]  # by atomic number
    # predicting other structures does not change the fitted weights
    before = model.weights_.copy()
    model.predict(make_structures(["Li", "Fe", "O"], 10, seed=5))
    np.testing.assert_array_equal(model.weights_, before)


def test_unseen_elements_contribute_zero_and_are_reported(make_structures):
    from pymatgen.core import Lattice, Structure

    train = make_structures(["Li", "Fe", "O"], 20, seed=6)
    model = PerElementBaseline().fit(train, additive(train))
    new = Structure(Lattice.cubic(5), ["Li", "Co", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0]])
    with pytest.warns(UserWarning, match="Co"):
        pred = model.predict([new, train[0]])[0]
    assert model.unseen_elements_ == {"Co": 1}
    assert pred == pytest.approx((CONSTANTS["Li"] + 2 * CONSTANTS["O"]) / 4, abs=1e-8)


def test_ridge_shrinks_and_handles_collinear_training_sets(make_structures):
    # every training structure is LiO: Li and O fractions are collinear (rank 1)
    from pymatgen.core import Lattice, Structure

    train = [Structure(Lattice.cubic(4 + 0.1 * k), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]) for k in range(5)]
    y = np.full(5, 2.0)
    plain = PerElementBaseline().fit(train, y)
    assert plain.rank_ == 1
    np.testing.assert_allclose(plain.predict(train), 2.0, atol=1e-10)  # minimum-norm solution
    ridge = PerElementBaseline(ridge=10.0).fit(train, y)
    assert np.all(np.abs(ridge.weights_) < np.abs(plain.weights_))
    with pytest.raises(ValueError):
        PerElementBaseline(ridge=-1.0)
