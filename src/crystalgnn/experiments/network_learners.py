"""The networks as learners: the GNNs (through :func:`crystalgnn.training.run.train`) and SOAP -> MLP
(through :func:`crystalgnn.baselines.soap_mlp.train_soap_mlp`).

Both train in a resumable run folder (``out_dir``): a finished folder returns its metrics
without training, an interrupted one resumes from ``checkpoints/last.ckpt``. The run evaluates
the test part of the split itself and writes ``predictions``/``metrics.json``; the
:class:`~crystalgnn.experiments.learners.FitReport` carries those metrics (``run_metrics``).
:meth:`predict` reloads the best checkpoint.

A GNN run reads its data from disk: ``source`` (the benchmark's dataset file, or the source
itself) and the split as an id file (``split_file``). Without them the learner writes the
dataset (``data.jsonl.gz``) and the split (``split_ids.json``) into the run folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.baselines.soap_mlp import train_soap_mlp
from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.splits import Split
from crystalgnn.experiments.learners import (
    SOAP_MLP_VARIANTS,
    FitReport,
    SoapFeatures,
    model_kind,
)
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.run import train

#: TrainConfig fields the benchmark sets itself (not allowed in ``train_options``)
OWN_FIELDS = (
    "source",
    "targets",
    "site_target",
    "model",
    "subset",
    "subset_seed",
    "split",
    "split_file",
    "seed",
    "epochs",
    "out",
)


def train_config_for(train_options: dict[str, Any]) -> TrainConfig:
    """``TrainConfig(**train_options)`` after refusing unknown fields and those of :data:`OWN_FIELDS`."""
    bad = sorted(set(train_options) - {f.name for f in dataclasses.fields(TrainConfig)})
    own = sorted(set(train_options) & set(OWN_FIELDS))
    if bad or own:
        raise KeyError(f"train_options: unknown {bad} / set by the benchmark {own}")
    return TrainConfig(**train_options)


def write_dataset_file(ds: CrystalDataset, path: str | Path, targets: Sequence[str]) -> Path:
    """Entries as gzipped JSON lines (id, structure dict, targets), readable by ``load_source``."""
    import gzip

    from monty.json import MontyEncoder

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        for i, (entry_id, s) in enumerate(zip(ds.ids, ds.structures, strict=True)):
            row = {"id": entry_id, "structure": s.as_dict(), **{t: float(ds.targets[t][i]) for t in targets}}
            f.write(json.dumps(row, cls=MontyEncoder) + "\n")
    os.replace(tmp, path)
    return path


class NetworkLearner:
    """What the GNN and SOAP -> MLP learners share: the run's ``TrainConfig`` and its report."""

    level = "graph"

    def __init__(
        self,
        name: str,
        *,
        epochs: int = 30,
        train_options: dict[str, Any] | None = None,
        source: str | None = None,
        show_progress: bool = True,
    ) -> None:
        self.name = name
        self.epochs = int(epochs)
        self.train_options = dict(train_options or {})
        train_config_for(self.train_options)
        self.source = source
        self.show_progress = show_progress
        self.run_dir: Path | None = None

    def train_config(
        self, source: str, target: str, out_dir: Path, seed: int, split_file: str | Path | None
    ) -> TrainConfig:
        """The run's configuration (as the benchmark has always built it: resumable folders)."""
        cfg = TrainConfig(
            **self.train_options,
            source=source,
            targets=[target],
            model=self.name if model_kind(self.name) == "gnn" else "soap-mlp",
            split_file=str(split_file) if split_file else None,
            seed=int(seed),
            epochs=self.epochs,
            out=str(out_dir),
        )
        cfg.progress = bool(self.show_progress) and cfg.progress
        return cfg

    def _report(self, metrics: dict[str, Any], feature_time: float) -> FitReport:
        return FitReport(
            n_train=int(metrics["n_train"]),
            n_val=int(metrics["n_val"]),
            train_time_s=metrics["train_time_s"],
            feature_time_s=feature_time,
            n_parameters=metrics["n_parameters"],
            model_bytes=metrics.get("checkpoint_bytes"),
            run_metrics=metrics,
        )

    def checkpoint(self) -> Path:
        if self.run_dir is None:
            raise RuntimeError(f"{self.name}: fit() first")
        return self.run_dir / "checkpoints" / "best.ckpt"


class GNNLearner(NetworkLearner):
    """A graph network of the model registry (``cgcnn``, ``megnet``, ``schnet``, ``alignn``...)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        if model_kind(name) != "gnn":
            raise ValueError(f"{name!r} is not a graph network")
        super().__init__(name, **kwargs)

    def fit(
        self,
        dataset: CrystalDataset,
        split: Split,
        *,
        target: str,
        out_dir: str | Path,
        seed: int = 0,
        split_file: str | Path | None = None,
    ) -> FitReport:
        out_dir = Path(out_dir)
        source = self.source
        if source is None or split_file is None:
            out_dir.mkdir(parents=True, exist_ok=True)
        if source is None:
            source = str(out_dir / "data.jsonl.gz")
            if not Path(source).is_file():
                write_dataset_file(dataset, source, [target])
        if split_file is None:
            split_file = out_dir / "split_ids.json"
            if not split_file.is_file():
                split.save(split_file, dataset.ids)
        metrics = train(self.train_config(source, target, out_dir, seed, split_file)).metrics
        self.run_dir = out_dir
        return self._report(metrics, 0.0)

    def predict(self, dataset: CrystalDataset, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """Predictions of the best checkpoint (NaN for entries the graph builder rejects)."""
        from crystalgnn.prediction import Predictor

        idx = np.asarray(idx, dtype=np.int64)
        out = np.full(len(idx), np.nan)
        if len(idx) == 0:
            return out
        predictor = Predictor.load(self.checkpoint())
        sub = dataset.subset(idx)
        res = predictor.predict(sub, show_progress=False)
        values = np.asarray(res.values, dtype=float)
        out[sub.index_of(res.ids)] = values if values.ndim == 1 else values[:, 0]
        return out


class SoapMLPLearner(NetworkLearner):
    """SOAP vector -> CGCNN's post-pooling network (variants: :data:`SOAP_MLP_VARIANTS`)."""

    def __init__(
        self, name: str = "soap-mlp", *, features: SoapFeatures | None = None, n_jobs: int | None = None, **kwargs: Any
    ) -> None:
        if name not in SOAP_MLP_VARIANTS:
            raise ValueError(f"unknown SOAP -> MLP variant {name!r}; choose from {', '.join(SOAP_MLP_VARIANTS)}")
        super().__init__(name, **kwargs)
        self.features = features
        self.n_jobs = n_jobs

    def _soap(self, dataset: CrystalDataset) -> SoapFeatures:
        if self.features is None:
            self.features = SoapFeatures(dataset, n_jobs=self.n_jobs, show_progress=self.show_progress)
        return self.features

    def fit(
        self,
        dataset: CrystalDataset,
        split: Split,
        *,
        target: str,
        out_dir: str | Path,
        seed: int = 0,
        split_file: str | Path | None = None,
    ) -> FitReport:
        features = self._soap(dataset)
        X = features.for_dataset(dataset)
        source = self.source if self.source is not None else dataset.name
        cfg = self.train_config(source, target, Path(out_dir), seed, split_file)
        metrics = train_soap_mlp(
            dataset, X, split, cfg, model_options=SOAP_MLP_VARIANTS[self.name], soap_config=features.config
        )
        self.run_dir = Path(out_dir)
        return self._report(metrics, features.time_s)

    def predict(self, dataset: CrystalDataset, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """Predictions of the best checkpoint on the entries' SOAP vectors."""
        from crystalgnn.baselines.soap_mlp import soap_items
        from crystalgnn.training.checkpoints import load_task
        from crystalgnn.training.holdout import predict_inputs

        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == 0:
            return np.zeros(0)
        task = load_task(self.checkpoint())
        X = self._soap(dataset).for_dataset(dataset)
        values = predict_inputs(task, soap_items(X, np.zeros((len(X), 1)), idx), 1024)
        return np.asarray(values if values.ndim == 1 else values[:, 0], dtype=float)


__all__ = ["OWN_FIELDS", "GNNLearner", "NetworkLearner", "SoapMLPLearner", "train_config_for", "write_dataset_file"]
