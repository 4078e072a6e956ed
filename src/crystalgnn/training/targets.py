r"""What a run learns: the target spec (graph or site level; regression or classification; names,
units, normaliser) and the labels attached to the graphs.

Regression targets are learned normalised, :math:`\tilde y = (y - \mu) / \sigma` with the
training labels' mean and standard deviation (NaN labels masked, never dropped); graph-level
labels are ``g.y`` (1, T), per-site labels ``g.site_y`` (|V|,), one per atom in site order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.graphs.cache import CachedGraphs

LEVELS = ("graph", "site")
KINDS = ("regression", "classification")


@dataclass
class TargetSpec:
    """The targets of a run.

    Attributes:
        names: target names (several for multi-target regression; one per-site target).
        level: ``"graph"`` (one label per structure) or ``"site"`` (one per atom).
        kind: ``"regression"`` or ``"classification"`` (graph level, one target, integer labels).
        units: target -> unit.
        mean, std: the normaliser (regression), one value per target.
        n_classes: classes (classification).
    """

    names: list[str]
    level: str = "graph"
    kind: str = "regression"
    units: dict[str, str] = field(default_factory=dict)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    n_classes: int = 2

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"unknown target level {self.level!r}; use graph or site")
        if self.kind not in KINDS:
            raise ValueError(f"unknown task {self.kind!r}; use regression or classification")
        if self.level == "site" and self.kind != "regression":
            raise ValueError("per-site targets are regression only")
        if self.kind == "classification" and len(self.names) != 1:
            raise ValueError("classification takes exactly one target")
        if not self.mean:
            self.mean = [0.0] * len(self.names)
        if not self.std:
            self.std = [1.0] * len(self.names)

    @property
    def out_dim(self) -> int:
        """Model outputs: classes, or one per target."""
        return self.n_classes if self.kind == "classification" else len(self.names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetSpec:
        return cls(**d)


def infer_task(ds: CrystalDataset, targets: Sequence[str], requested: str) -> str:
    """``requested`` when explicit; for ``auto``, classification for one target whose labels are
    all 0/1 or whose unit is ``class``, else regression. Classification on non-integer labels
    raises a ``ValueError`` that says so.
    """
    if requested == "regression":
        return requested
    if requested == "classification":
        for t in targets:
            y = ds.targets[t]
            y = y[np.isfinite(y)]
            if len(y) and not np.all(y == np.round(y)):
                raise ValueError(f"classification needs integer class labels; {t!r} has non-integer values")
        return requested
    if requested != "auto":
        raise ValueError(f"unknown task {requested!r}; use regression, classification or auto")
    if len(targets) == 1:
        y = ds.targets[targets[0]]
        y = y[np.isfinite(y)]
        if ds.units.get(targets[0]) == "class" or (len(y) and set(np.unique(y)) <= {0.0, 1.0}):
            return "classification"
    return "regression"


def fit_normalizer(y_train: np.ndarray) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of each training target (NaN-aware; std 1 if constant)."""
    y = np.asarray(y_train, dtype=float).reshape(len(y_train), -1)
    if len(y) == 0 or not np.isfinite(y).any(axis=0).all():
        raise ValueError("a target has no finite label in the training split: cannot fit the normaliser")
    mean = np.nanmean(y, axis=0)
    std = np.nanstd(y, axis=0)
    std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
    return [float(m) for m in mean], [float(s) for s in std]


def fit_site_normalizer(arrays: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    """Mean and standard deviation over the finite training-site labels (std 1 if constant)."""
    flat = np.concatenate([np.asarray(a, dtype=float) for a in arrays]) if arrays else np.zeros(0)
    flat = flat[np.isfinite(flat)]
    if len(flat) == 0:
        raise ValueError("no labelled training site: cannot fit the per-site normaliser")
    std = float(flat.std())
    return [float(flat.mean())], [std if std > 1e-12 else 1.0]


def attach_targets(graphs: Sequence[Data] | CachedGraphs, y: np.ndarray) -> list[Data] | CachedGraphs:
    """Set ``g.y`` (1, T) float32 and ``g.idx`` (position in the dataset) on each graph
    (graphs on disk get them as they are read).
    """
    y = np.asarray(y, dtype=np.float32).reshape(len(graphs), -1)
    if isinstance(graphs, CachedGraphs):
        return CachedGraphs(graphs.cache, graphs.keys, y)
    for i, g in enumerate(graphs):
        g.y = torch.from_numpy(y[i : i + 1].copy())
        g.idx = torch.tensor([i])
    return list(graphs)


def attach_site_targets(graphs: Sequence[Data], arrays: Sequence[np.ndarray | None]) -> list[Data]:
    """Set ``g.site_y`` (|V|,) float32 (NaN = missing) and ``g.idx`` on each graph."""
    for i, (g, a) in enumerate(zip(graphs, arrays, strict=True)):
        n = int(g.num_nodes)
        y = np.full(n, np.nan, dtype=np.float32) if a is None else np.asarray(a, dtype=np.float32)
        if len(y) != n:
            raise ValueError(f"graph {i}: {len(y)} per-site labels for {n} sites")
        g.site_y = torch.from_numpy(y.copy())
        g.idx = torch.tensor([i])
    return list(graphs)


def site_label_counts(arrays: Sequence[np.ndarray | None], idx: Sequence[int] | np.ndarray) -> dict[str, int]:
    """Labelled and unlabelled (NaN) sites among the structures ``idx``."""
    n_sites = n_lab = 0
    for i in idx:
        a = arrays[int(i)]
        if a is None:
            continue
        n_sites += len(a)
        n_lab += int(np.isfinite(a).sum())
    return {"structures": len(idx), "sites": n_sites, "labelled": n_lab, "unlabelled": n_sites - n_lab}
