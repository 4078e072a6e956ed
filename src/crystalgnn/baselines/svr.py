"""SOAP -> SVR: scikit-learn's RBF support-vector regression on standardised SOAP vectors.

As in the seed thesis, the SVR keeps scikit-learn's defaults (``C=1.0``, ``epsilon=0.1``,
``gamma="scale"``); features go through a ``StandardScaler`` (inside the pipeline, so fitted on
the training set only) and the target is standardised with the training mean and standard
deviation, so ``epsilon`` is in units of the target's standard deviation. ``grid_search=True``
picks ``C`` and ``gamma`` by 3-fold cross-validation on the training set (mean absolute error).
The model needs no validation set.

The RBF kernel matrix is computed once with BLAS (:class:`RBFKernelSVR`) and handed to libsvm as
a precomputed kernel: the same model as ``SVR(kernel="rbf")`` (same C, epsilon, gamma), but
libsvm's own kernel loop evaluates the thousands of SOAP dimensions per pair one multiply at a
time and re-evaluates rows that fall out of its cache, which took over half an hour for 8,000
structures here; the BLAS Gram matrix takes about a minute.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

#: default C values tried by the grid search
C_GRID = (0.1, 1.0, 10.0, 100.0)
#: gamma values tried, as multiples of gamma="scale" (1 / (n_features * Var(X_scaled)))
GAMMA_FACTORS = (0.1, 1.0, 10.0)


#: above this many training rows the (n x n) kernel matrix is not stored: libsvm's own RBF kernel
#: (``None``: as many as fit in half the physical memory as one float64 matrix)
KERNEL_MATRIX_MAX_ROWS: int | None = None


def _max_kernel_rows() -> int:
    if KERNEL_MATRIX_MAX_ROWS is not None:
        return KERNEL_MATRIX_MAX_ROWS
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        memory = 8 << 30
    return int((memory / 2 / 8) ** 0.5)


def _sq_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Squared euclidean distances between the rows of A and B, (len(A), len(B)), >= 0."""
    d = A @ B.T  # the only (len(A), len(B)) array; the rest is done in place
    d *= -2.0
    d += (A * A).sum(1)[:, None]
    d += (B * B).sum(1)[None, :]
    return np.maximum(d, 0.0, out=d)


class RBFKernelSVR(RegressorMixin, BaseEstimator):
    """``sklearn.svm.SVR(kernel="rbf")`` with the kernel matrix computed by BLAS.

    ``gamma="scale"`` means ``1 / (n_features * X.var())`` as in scikit-learn. Training builds
    ``K_ij = exp(-gamma |x_i - x_j|^2)`` (columns that are zero in every training row add nothing
    to training distances and are skipped) and fits ``SVR(kernel="precomputed")``; only the
    support vectors are kept for prediction. Beyond the rows whose kernel matrix fits in memory
    (:data:`KERNEL_MATRIX_MAX_ROWS`; ~39,000 with 24 GB) it falls back to libsvm's own RBF
    kernel. A scikit-learn estimator, so it works inside ``Pipeline`` and ``GridSearchCV``.
    """

    def __init__(
        self, C: float = 1.0, epsilon: float = 0.1, gamma: float | str = "scale", cache_size: float = 1000.0
    ) -> None:
        self.C, self.epsilon, self.gamma, self.cache_size = C, epsilon, gamma, cache_size

    def _gamma(self, X: np.ndarray) -> float:
        if self.gamma == "scale":
            var = float(X.var())
            return 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        if self.gamma == "auto":
            return 1.0 / X.shape[1]
        return float(self.gamma)

    def fit(self, X: Any, y: Any) -> RBFKernelSVR:
        from sklearn.svm import SVR

        X = np.asarray(X, dtype=np.float64)
        self.gamma_ = self._gamma(X)
        if len(X) > _max_kernel_rows():
            self.svr_ = SVR(kernel="rbf", C=self.C, epsilon=self.epsilon, gamma=self.gamma_, cache_size=self.cache_size)
            self.svr_.fit(X, y)
            self.support_vectors_ = self.svr_.support_vectors_
            return self
        used = np.flatnonzero(np.any(X != 0.0, axis=0))
        Xu = np.ascontiguousarray(X[:, used])
        K = _sq_distances(Xu, Xu)
        np.multiply(K, -self.gamma_, out=K)
        np.exp(K, out=K)
        self.svr_ = SVR(kernel="precomputed", C=self.C, epsilon=self.epsilon, cache_size=self.cache_size).fit(K, y)
        self.support_vectors_ = X[self.svr_.support_]
        self.n_train_ = len(X)
        return self

    def predict(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.svr_.kernel != "precomputed":
            return self.svr_.predict(X)
        out = np.empty(len(X))
        for start in range(0, len(X), 2048):  # bounded memory for large test sets
            block = X[start : start + 2048]
            K = np.zeros((len(block), self.n_train_))
            K[:, self.svr_.support_] = np.exp(-self.gamma_ * _sq_distances(block, self.support_vectors_))
            out[start : start + 2048] = self.svr_.predict(K)
        return out


class SoapSVR:
    """RBF SVR on standardised features with a standardised target.

    Args:
        C, epsilon, gamma: ``sklearn.svm.SVR`` parameters (defaults are scikit-learn's).
        grid_search: choose ``C`` and ``gamma`` by ``GridSearchCV`` on the training set.
        param_grid: grid for the search, keys ``"C"`` and/or ``"gamma"`` (default: ``C_GRID``
            and ``GAMMA_FACTORS`` times the ``"scale"`` value of the training features).
        cv: folds of the grid search.
        n_jobs: parallel fits of the grid search.
        cache_size: libsvm kernel cache in MB (speed only; results do not change).

    After :meth:`fit`: ``model_`` (the fitted ``Pipeline``), ``y_mean_``, ``y_std_`` and, with a
    grid search, ``best_params_`` and ``cv_results_``.
    """

    def __init__(
        self,
        C: float = 1.0,
        epsilon: float = 0.1,
        gamma: float | str = "scale",
        *,
        grid_search: bool = False,
        param_grid: dict[str, Sequence[Any]] | None = None,
        cv: int = 3,
        n_jobs: int | None = None,
        cache_size: float = 1000.0,
    ) -> None:
        self.C = C
        self.epsilon = epsilon
        self.gamma = gamma
        self.grid_search = grid_search
        self.param_grid = param_grid
        self.cv = cv
        self.n_jobs = n_jobs
        self.cache_size = cache_size
        self.model_: Any = None
        self.y_mean_ = 0.0
        self.y_std_ = 1.0
        self.best_params_: dict[str, Any] | None = None
        self.cv_results_: dict[str, Any] | None = None

    def _pipeline(self) -> Any:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        svr = RBFKernelSVR(C=self.C, epsilon=self.epsilon, gamma=self.gamma, cache_size=self.cache_size)
        return Pipeline([("scale", StandardScaler()), ("svr", svr)])

    def _grid(self, X: np.ndarray) -> dict[str, list[Any]]:
        from sklearn.preprocessing import StandardScaler

        grid = dict(self.param_grid or {})
        if "gamma" not in grid:
            var = float(StandardScaler().fit_transform(X).var())
            scale = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
            grid["gamma"] = [f * scale for f in GAMMA_FACTORS]
        grid.setdefault("C", list(C_GRID))
        return {f"svr__{k}": list(v) for k, v in grid.items()}

    def fit(self, X: Any, y: Any) -> SoapSVR:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError(f"X must be (n, n_features) with n = len(y); got {X.shape} and {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError("targets contain NaN or infinite values; drop those entries first")
        self.y_mean_ = float(y.mean())
        std = float(y.std())
        self.y_std_ = std if std > 0 else 1.0
        z = (y - self.y_mean_) / self.y_std_
        if self.grid_search:
            from sklearn.model_selection import GridSearchCV, KFold

            search = GridSearchCV(
                self._pipeline(),
                self._grid(X),
                cv=KFold(self.cv, shuffle=True, random_state=0),
                scoring="neg_mean_absolute_error",
                n_jobs=self.n_jobs,
                refit=True,
            )
            search.fit(X, z)
            self.model_ = search.best_estimator_
            self.best_params_ = {k.removeprefix("svr__"): v for k, v in search.best_params_.items()}
            self.cv_results_ = search.cv_results_
        else:
            self.model_ = self._pipeline().fit(X, z)
        return self

    def predict(self, X: Any) -> np.ndarray:
        if self.model_ is None:
            raise RuntimeError("SoapSVR is not fitted")
        z = self.model_.predict(np.asarray(X, dtype=np.float64))
        return z * self.y_std_ + self.y_mean_

    @property
    def n_support(self) -> int:
        return 0 if self.model_ is None else int(self.model_.named_steps["svr"].support_vectors_.shape[0])

    @property
    def n_parameters(self) -> int:
        """Stored numbers of the fitted SVR: support vectors x features, one dual coefficient
        per support vector, and the intercept (the scaler's 2 x n_features are not counted).
        """
        if self.model_ is None:
            return 0
        sv = self.model_.named_steps["svr"].support_vectors_
        return int(sv.shape[0] * sv.shape[1] + sv.shape[0] + 1)
