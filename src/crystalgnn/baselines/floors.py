"""Floor baselines every model must beat: the training mean and a per-element linear fit.

:class:`MeanBaseline` predicts the training-set mean for every structure.
:class:`PerElementBaseline` fits ``y ~ sum_e x_e w_e`` where ``x_e`` is the fraction of element
``e`` in the structure (fractions sum to 1, so no separate intercept is needed); it is exact for
any target that is a composition-weighted average of per-element constants, and so measures how
much of a target composition alone explains. Both are fitted on the training structures only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np


def _composition(obj: Any) -> Any:
    """The pymatgen ``Composition`` of a ``Structure`` (or of anything with ``.composition``)."""
    from pymatgen.core import Composition

    if isinstance(obj, Composition):
        return obj
    if hasattr(obj, "composition"):
        return obj.composition
    return Composition(obj)


def element_fractions(structures: Sequence[Any]) -> list[dict[str, float]]:
    """Atomic fraction of each element, one dict per structure (partial occupancies allowed)."""
    out = []
    for s in structures:
        comp = _composition(s)
        total = comp.num_atoms
        if total <= 0:
            raise ValueError(f"structure with no atoms: {s!r}")
        amounts = comp.get_el_amt_dict()
        out.append({el: float(amt) / total for el, amt in amounts.items()})
    return out


def _clean_y(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=float).reshape(-1)
    if len(y) != n:
        raise ValueError(f"{n} structures but {len(y)} targets")
    if not np.all(np.isfinite(y)):
        raise ValueError("targets contain NaN or infinite values; drop those entries first")
    if n == 0:
        raise ValueError("cannot fit on zero structures")
    return y


class MeanBaseline:
    """Predicts the mean of the training targets for every structure."""

    def __init__(self) -> None:
        self.mean_: float | None = None

    def fit(self, structures: Sequence[Any], y: Any) -> MeanBaseline:
        y = _clean_y(y, len(structures))
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, structures: Sequence[Any]) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("MeanBaseline is not fitted")
        return np.full(len(structures), self.mean_, dtype=float)

    @property
    def n_parameters(self) -> int:
        return 1


class PerElementBaseline:
    """Least squares on element fractions: ``y_i ~ sum_e X[i, e] w_e``.

    Args:
        ridge: optional L2 penalty ``ridge * ||w||^2`` (0 = plain least squares; ``lstsq`` gives
            the minimum-norm solution when elements are collinear in the training set).

    After :meth:`fit`, ``elements_`` lists the fitted elements and ``weights_`` their values.
    Elements that :meth:`predict` meets but training never saw contribute 0; they are stored in
    ``unseen_elements_`` (element -> number of structures affected, for the last ``predict``)
    and reported with a ``UserWarning``.
    """

    def __init__(self, ridge: float = 0.0) -> None:
        if ridge < 0:
            raise ValueError("ridge must be >= 0")
        self.ridge = float(ridge)
        self.elements_: list[str] = []
        self.weights_: np.ndarray | None = None
        self.unseen_elements_: dict[str, int] = {}
        self.rank_: int | None = None

    def _matrix(self, fractions: list[dict[str, float]]) -> tuple[np.ndarray, dict[str, int]]:
        col = {el: k for k, el in enumerate(self.elements_)}
        X = np.zeros((len(fractions), len(col)))
        unseen: dict[str, int] = {}
        for i, fr in enumerate(fractions):
            for el, x in fr.items():
                if el in col:
                    X[i, col[el]] = x
                else:
                    unseen[el] = unseen.get(el, 0) + 1
        return X, unseen

    def fit(self, structures: Sequence[Any], y: Any) -> PerElementBaseline:
        from pymatgen.core import Element

        y = _clean_y(y, len(structures))
        fractions = element_fractions(structures)
        self.elements_ = sorted({el for fr in fractions for el in fr}, key=lambda e: Element(e).Z)
        X, _ = self._matrix(fractions)
        A, b = X, y
        if self.ridge > 0:
            k = X.shape[1]
            A = np.vstack([X, np.sqrt(self.ridge) * np.eye(k)])
            b = np.concatenate([y, np.zeros(k)])
        w, _, rank, _ = np.linalg.lstsq(A, b, rcond=None)
        self.weights_ = w
        self.rank_ = int(rank)
        return self

    def predict(self, structures: Sequence[Any]) -> np.ndarray:
        if self.weights_ is None:
            raise RuntimeError("PerElementBaseline is not fitted")
        X, unseen = self._matrix(element_fractions(structures))
        self.unseen_elements_ = unseen
        if unseen:
            listed = ", ".join(f"{el} ({n})" for el, n in sorted(unseen.items()))
            warnings.warn(
                f"PerElementBaseline: elements not in the training set contribute 0 "
                f"(element (structures affected)): {listed}",
                UserWarning,
                stacklevel=2,
            )
        return X @ self.weights_

    @property
    def weights(self) -> dict[str, float]:
        """Fitted element -> weight."""
        if self.weights_ is None:
            return {}
        return dict(zip(self.elements_, self.weights_.tolist(), strict=True))

    @property
    def n_parameters(self) -> int:
        return len(self.elements_)
