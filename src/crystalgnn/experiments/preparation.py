"""The entries a benchmark runs on and its splits.

:func:`prepare_data` loads the source with every requested target, draws the subset, drops the
entries some graph network of the benchmark cannot make a graph of (so every model sees the
same entries and every row of a repeat has the same test set), writes ``rejected.csv`` and,
when the networks cannot read the source itself, ``subset.jsonl.gz``. :func:`make_splits`
gives the split of each repeat (seeded random splits or the Matbench folds).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.baselines.soap import SoapConfig
from crystalgnn.baselines.soap_mlp import THESIS_SOAP
from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.readers import load_source
from crystalgnn.data.splits import (
    MATBENCH_SEED,
    Split,
    kfold_splits,
    parse_ratios,
    random_split,
)
from crystalgnn.experiments.learners import SoapFeatures, model_kind
from crystalgnn.experiments.network_learners import train_config_for, write_dataset_file


@dataclass
class BenchmarkData:
    """The entries every model sees, where the networks read them from, and SOAP on demand."""

    dataset: CrystalDataset
    gnn_source: str
    soap_config: SoapConfig = THESIS_SOAP
    n_jobs: int | None = None
    show_progress: bool = True
    soap_features: SoapFeatures = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.soap_features = SoapFeatures(
            self.dataset, self.soap_config, n_jobs=self.n_jobs, show_progress=self.show_progress
        )

    def soap(self) -> np.ndarray:
        return self.soap_features.matrix()

    @property
    def feature_time_s(self) -> float:
        return self.soap_features.time_s


def _graph_rejections(
    ds: CrystalDataset,
    gnn_models: Sequence[str],
    train_options: dict[str, Any],
    n_jobs: int | None,
    show_progress: bool,
) -> list[tuple[int, str]]:
    """Entries some network in ``gnn_models`` cannot make a graph of (warms the graph cache)."""
    import torch

    from crystalgnn.graphs.atom_features import AtomFeaturizer
    from crystalgnn.graphs.builder import build_graph_list
    from crystalgnn.graphs.cache import GraphCache
    from crystalgnn.models.registry import make_config

    base = train_config_for(train_options)
    path = base.atom_init or ds.atom_init
    table = torch.tensor((AtomFeaturizer.from_json(path) if path else AtomFeaturizer.cgcnn()).matrix())
    supported = [int(z) for z in torch.nonzero(~torch.isnan(table).any(dim=1)).flatten()]
    cache = None
    if base.use_cache:
        cache = GraphCache(Path(base.cache_dir) / "graphs.lmdb" if base.cache_dir else None)
    out: dict[int, str] = {}
    seen = set()
    for m in gnn_models:
        gcfg = make_config(m, base.model_options if m == base.model else {}).graph_config()
        key = json.dumps(gcfg.to_dict(), sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        _, report = build_graph_list(
            ds.structures, gcfg, cache=cache, supported_elements=supported, n_jobs=n_jobs, show_progress=show_progress
        )
        for i, why in report.rejected:
            out.setdefault(i, f"{m}: {why}")
    return sorted(out.items())


def prepare_data(
    source: Any,
    targets: Sequence[str],
    out: str | Path,
    *,
    models: Sequence[str] = (),
    subset: int | None = None,
    subset_seed: int = 0,
    train_options: dict[str, Any] | None = None,
    n_jobs: int | None = None,
    show_progress: bool = True,
) -> BenchmarkData:
    """Load ``source`` with all ``targets``, draw the subset, drop entries without a graph.

    Networks read ``out/subset.jsonl.gz`` when a subset is drawn, some entries are dropped, or
    ``source`` is not a path/name; otherwise the source itself (their split files name the ids).
    """
    out = Path(out)
    ds = load_source(source, targets=list(targets), n_jobs=n_jobs, show_progress=show_progress)
    if len(ds) == 0:
        raise ValueError(f"{source}: no entries with all of {list(targets)}")
    n_loaded = len(ds)
    if subset is not None and subset < len(ds):
        if subset < 10:
            raise ValueError("subset must be at least 10 entries")
        keep = np.sort(np.random.default_rng(subset_seed).choice(len(ds), size=subset, replace=False))
        rejections = list(ds.rejections)
        ds = ds.subset(keep)
        ds.rejections = rejections
    gnns = [m for m in models if model_kind(m) == "gnn"]
    dropped = _graph_rejections(ds, gnns, dict(train_options or {}), n_jobs, show_progress) if gnns else []
    if dropped:
        ds.drop([i for i, _ in dropped], [why for _, why in dropped], source="graph builder")
    out.mkdir(parents=True, exist_ok=True)
    ds.write_rejections(out / "rejected.csv")
    gnn_source = str(source)
    if len(ds) != n_loaded or not isinstance(source, (str, Path)):
        gnn_source = str(out / "subset.jsonl.gz")
        if not Path(gnn_source).is_file():
            write_dataset_file(ds, gnn_source, targets)
    return BenchmarkData(ds, gnn_source, n_jobs=n_jobs, show_progress=show_progress)


def make_splits(n: int, protocol: str, repeats: int, split: str | Sequence[float]) -> list[Split]:
    """The split of each repeat: seeded random splits, or the Matbench folds (at most 5)."""
    ratios = parse_ratios(split)
    if protocol == "random":
        return [random_split(n, ratios, seed=r) for r in range(repeats)]
    if protocol == "matbench":
        if repeats > 5:
            raise ValueError("the Matbench protocol has 5 folds; --repeats must be <= 5")
        val_fraction = ratios[1] / (ratios[0] + ratios[1]) if ratios[0] + ratios[1] > 0 else 0.0
        return kfold_splits(n, 5, seed=MATBENCH_SEED, val_fraction=val_fraction)[:repeats]
    raise ValueError(f"unknown protocol {protocol!r}; use random or matbench")


__all__ = ["BenchmarkData", "make_splits", "prepare_data"]


def source_default_targets(source: Any) -> list[str]:
    """The source's only graph-level label when none is named (a CGCNN / ALIGNN folder's unnamed
    ``id_prop.csv`` column); several labels: a ``ValueError`` that lists them.
    """
    from crystalgnn.data.targets import default_targets

    return default_targets(load_source(source, show_progress=False, subset=64))
