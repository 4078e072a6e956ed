"""SOAP -> SVR: scikit-learn's RBF support-vector regression on standardised SOAP vectors.

As in the seed thesis, the SVR keeps scikit-learn's defaults (``C=1.0``, ``epsilon=0.1``,
``gamma="scale"``); features go through a ``StandardScaler`` (inside the pipeline, so fitted on
the training set only) and the target is standardised with the training mean and standard
deviation, so ``epsilon`` is in units of the target's standard deviation. ``grid_search=True``
picks ``C`` and ``gamma`` by 3-fold cross-validation on the training set (mean absolute error).
The model needs no validation set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: default C values tried by the grid search
C_GRID = (0.1, 1.0, 10.0, 100.0)
#: gamma values tried, as multiples of gamma="scale" (1 / (n_features * Var(X_scaled)))
GAMMA_FACTORS = (0.1, 1.0, 10.0)


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
        from sklearn.svm import SVR

        svr = SVR(kernel="rbf", C=self.C, epsilon=self.epsilon, gamma=self.gamma, cache_size=self.cache_size)
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
        per support vector, and the intercept (the scaler's 2 x n_features are not counted)."""
        if self.model_ is None:
            return 0
        sv = self.model_.named_steps["svr"].support_vectors_
        return int(sv.shape[0] * sv.shape[1] + sv.shape[0] + 1)
