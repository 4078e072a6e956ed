"""RBFKernelSVR (BLAS kernel matrix + libsvm precomputed) is scikit-learn's RBF SVR."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import SVR

import crystalgnn.baselines.svr as svr_mod
from crystalgnn.baselines.svr import RBFKernelSVR


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 30))
    X[:, 4:8] = 0.0  # columns unused in training (species pairs absent from the training set)
    y = np.sin(X[:, 0]) + 0.1 * X[:, 1] ** 2 + rng.normal(scale=0.05, size=300)
    Xt = rng.normal(size=(2500, 30))  # > one prediction block; nonzero in the unused columns
    return X, y, Xt


@pytest.mark.parametrize("gamma", ["scale", "auto", 0.02])
def test_equals_sklearn_rbf(gamma) -> None:
    X, y, Xt = _data()
    ref = SVR(kernel="rbf", C=3.0, epsilon=0.05, gamma=gamma).fit(X, y)
    ours = RBFKernelSVR(C=3.0, epsilon=0.05, gamma=gamma).fit(X, y)
    np.testing.assert_allclose(ours.predict(Xt), ref.predict(Xt), rtol=1e-9, atol=1e-9)
    assert len(ours.support_vectors_) == len(ref.support_)


def test_large_sets_fall_back_to_libsvm_kernel(monkeypatch) -> None:
    X, y, Xt = _data(1)
    monkeypatch.setattr(svr_mod, "KERNEL_MATRIX_MAX_ROWS", 100)
    ours = RBFKernelSVR().fit(X, y)
    assert ours.svr_.kernel == "rbf"
    np.testing.assert_allclose(ours.predict(Xt), SVR().fit(X, y).predict(Xt), rtol=1e-12, atol=1e-12)
