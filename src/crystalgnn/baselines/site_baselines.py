"""Per-site baselines every per-site model must beat.

* :class:`PerElementSiteBaseline`: each site gets the average label of its element over the
  training sites (elements never seen in training get the average over all training sites).
  Exact for any target that is a per-element constant.
* :class:`NeighbourMLPBaseline`: an MLP on a fixed-size description of each atom's
  neighbourhood, with no message passing: the atom's own feature vector (CGCNN's 92-dim table)
  concatenated with, for its ``k = 12`` nearest neighbours sorted by distance, the neighbour's
  feature vector and its Gaussian-expanded distance (the CGCNN graph's edges are reused;
  missing neighbours are zero-padded). It is the registered model ``neighbour-mlp``
  (:mod:`crystalgnn.models.neighbour_mlp`) with a per-site head, trained by the one training
  path (:class:`~crystalgnn.training.task.CrystalTask`, :func:`crystalgnn.training.loop.fit`:
  Adam, masked loss on normalised labels, best validation epoch kept), the same as
  ``crystalgnn train SOURCE --site-target T --model neighbour-mlp``.

Both are fitted on training structures only; NaN labels are ignored (never imputed).
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crystalgnn.models.neighbour_mlp import NeighbourMLPConfig
from crystalgnn.training.checkpoints import load_task
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.holdout import predict_inputs
from crystalgnn.training.loaders import make_loader
from crystalgnn.training.loop import fit
from crystalgnn.training.losses import check_loss
from crystalgnn.training.targets import TargetSpec, attach_site_targets, fit_site_normalizer
from crystalgnn.training.task import CrystalTask


def _site_symbols(structure: Any) -> list[str]:
    return [site.specie.symbol for site in structure]


# --------------------------------------------------------------------------- per-element average
class PerElementSiteBaseline:
    """Predicts, for each site, the mean (or median) training label of its element.

    Args:
        statistic: ``"mean"`` (default) or ``"median"``.
    """

    def __init__(self, statistic: str = "mean") -> None:
        if statistic not in ("mean", "median"):
            raise ValueError("statistic must be 'mean' or 'median'")
        self.statistic = statistic
        self.values_: dict[str, float] = {}
        self.counts_: dict[str, int] = {}
        self.fallback_: float = float("nan")
        self.n_unseen_: int = 0

    def _stat(self, v: np.ndarray) -> float:
        return float(np.mean(v) if self.statistic == "mean" else np.median(v))

    def fit(self, structures: Sequence[Any], site_labels: Sequence[np.ndarray | None]) -> PerElementSiteBaseline:
        if len(structures) != len(site_labels):
            raise ValueError(f"{len(structures)} structures but {len(site_labels)} label arrays")
        by_el: dict[str, list[float]] = {}
        for s, y in zip(structures, site_labels, strict=True):
            if y is None:
                continue
            y = np.asarray(y, dtype=float)
            if len(y) != len(s):
                raise ValueError(f"{len(y)} labels for a structure of {len(s)} sites")
            for el, v in zip(_site_symbols(s), y, strict=True):
                if np.isfinite(v):
                    by_el.setdefault(el, []).append(float(v))
        if not by_el:
            raise ValueError("no labelled training site")
        self.values_ = {el: self._stat(np.array(v)) for el, v in by_el.items()}
        self.counts_ = {el: len(v) for el, v in by_el.items()}
        self.fallback_ = self._stat(np.concatenate([np.array(v) for v in by_el.values()]))
        return self

    def predict(self, structures: Sequence[Any]) -> list[np.ndarray]:
        """One array per structure; unseen elements get the overall training average (counted in
        ``n_unseen_``).
        """
        if not self.values_:
            raise RuntimeError("fit() first")
        out, unseen = [], 0
        for s in structures:
            syms = _site_symbols(s)
            unseen += sum(el not in self.values_ for el in syms)
            out.append(np.array([self.values_.get(el, self.fallback_) for el in syms], dtype=float))
        self.n_unseen_ = unseen
        return out


# --------------------------------------------------------------------------- neighbour-list MLP
class NeighbourMLPBaseline:
    """The ``neighbour-mlp`` model (:mod:`crystalgnn.models.neighbour_mlp`) with a per-site head,
    trained on the labelled sites of training graphs by the one training path
    (:class:`~crystalgnn.training.task.CrystalTask` and :func:`crystalgnn.training.loop.fit`:
    Adam, constant learning rate, masked loss on normalised labels, best validation MAE kept).

    Args:
        atom_table: atom-feature table (default: CGCNN's 92-dim table).
        k: neighbours per atom (12, as the CGCNN graph).
        radius, step: Gaussian distance expansion (CGCNN: 8 Å, 0.2 Å).
        hidden, n_layers: the encoder's dense layers; the per-site head has one hidden layer of
            width ``hidden``.
        epochs, lr, weight_decay: the optimiser.
        batch_size: sites per batch, approximately: batches hold whole structures,
            ``batch_size`` / (mean sites per training structure) of them (at least one).
        loss: ``mse`` | ``l1`` | ``huber`` (:mod:`crystalgnn.training.losses`).
        patience: stop after this many epochs without a better validation MAE (None: never).
        seed: initialisation and shuffling.
        run_dir: the run folder (checkpoints, ``log/metrics.csv``); default a temporary folder,
            deleted after fitting. A folder holding ``checkpoints/last.ckpt`` is resumed.

    Attributes (after ``fit``): ``task_`` (the best epoch's task), ``mean_``, ``std_`` (the label
    normaliser), ``history_`` (one dict per epoch: ``epoch``, ``train_loss``, ``val_mae``),
    ``train_time_s_``.
    """

    def __init__(
        self,
        atom_table: Any = None,
        *,
        k: int = 12,
        radius: float = 8.0,
        step: float = 0.2,
        hidden: int = 128,
        n_layers: int = 2,
        epochs: int = 30,
        lr: float = 1e-3,
        batch_size: int = 512,
        weight_decay: float = 0.0,
        loss: str = "mse",
        patience: int | None = 10,
        seed: int = 0,
        run_dir: str | Path | None = None,
    ) -> None:
        if atom_table is None:
            from crystalgnn.graphs.atom_features import AtomFeaturizer

            atom_table = torch.tensor(AtomFeaturizer.cgcnn().matrix())
        self.atom_table = torch.as_tensor(atom_table, dtype=torch.float32)
        self.k, self.radius, self.step, self.hidden, self.n_layers = k, radius, step, hidden, n_layers
        self.epochs, self.lr, self.batch_size, self.weight_decay = epochs, lr, batch_size, weight_decay
        self.patience, self.seed, self.loss = patience, seed, check_loss(loss)
        self.run_dir = run_dir
        self.task_: CrystalTask | None = None
        self.mean_, self.std_ = 0.0, 1.0
        self.history_: list[dict[str, float]] = []
        self.train_time_s_ = 0.0

    def model_config(self) -> NeighbourMLPConfig:
        return NeighbourMLPConfig(
            radius=self.radius, max_neighbors=self.k, step=self.step, hidden=self.hidden, n_layers=self.n_layers
        )

    def fit(
        self,
        graphs: Sequence[Any],
        site_labels: Sequence[np.ndarray | None],
        val_graphs: Sequence[Any] | None = None,
        val_labels: Sequence[np.ndarray | None] | None = None,
    ) -> NeighbourMLPBaseline:
        t0 = time.perf_counter()
        if len(graphs) != len(site_labels):
            raise ValueError(f"{len(graphs)} graphs but {len(site_labels)} label arrays")
        mean, std = fit_site_normalizer([y for y in site_labels if y is not None])
        self.mean_, self.std_ = mean[0], std[0]
        # labels go on shallow copies: the caller's graphs are left as they were
        train = attach_site_targets([copy.copy(g) for g in graphs], list(site_labels))
        val: list[Any] = []
        if val_graphs:
            vy = list(val_labels) if val_labels is not None else [None] * len(val_graphs)
            if any(y is not None and np.isfinite(np.asarray(y, dtype=float)).any() for y in vy):
                val = attach_site_targets([copy.copy(g) for g in val_graphs], vy)
        n_sites = sum(int(g.num_nodes) for g in graphs)
        per_batch = max(1, round(self.batch_size * len(graphs) / max(n_sites, 1)))
        cfg = TrainConfig(
            epochs=self.epochs,
            batch_size=per_batch,
            seed=self.seed,
            early_stopping_patience=self.patience if val else None,
            progress=False,
        )
        model_cfg = self.model_config()
        spec = TargetSpec(["site"], level="site", mean=mean, std=std)
        optim = {"optimizer": "adam", "lr": self.lr, "weight_decay": self.weight_decay, "scheduler": "none",
                 "epochs": self.epochs, "loss": self.loss}  # fmt: skip
        torch.manual_seed(self.seed)
        module = CrystalTask(
            model_name="neighbour-mlp",
            model_config=model_cfg.to_dict(),
            graph_config=model_cfg.graph_config().to_dict(),
            target=spec.to_dict(),
            readout="site",
            readout_options={"site_head_hidden": self.hidden, "site_head_layers": 1},
            optim=optim,
            atom_table=self.atom_table,
            seed=self.seed,
            extra={"baseline": "neighbour-mlp", "n_train": len(graphs)},
        )
        train_loader = make_loader(train, per_batch, shuffle=True, seed=self.seed)
        val_loader = make_loader(val, 256) if val else None
        with contextlib.ExitStack() as stack:
            if self.run_dir is None:
                run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="neighbour-mlp-")))
            else:
                run_dir = Path(self.run_dir)
                run_dir.mkdir(parents=True, exist_ok=True)
            # without validation sites the best epoch is the one with the lowest training loss
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*but have no `val_dataloader`.*")
                result = fit(module, train_loader, val_loader, run_dir, cfg, monitor="val_mae" if val else "train_loss")
            self.task_ = load_task(result.best_path)
            self.history_ = _epoch_history(run_dir / "log" / "metrics.csv")
        self.train_time_s_ = time.perf_counter() - t0
        return self

    def predict(self, graphs: Sequence[Any]) -> list[np.ndarray]:
        """One array per graph, in site order."""
        if self.task_ is None:
            raise RuntimeError("fit() first")
        if not graphs:
            return []
        return list(predict_inputs(self.task_, list(graphs)))

    def n_parameters(self) -> int:
        return 0 if self.task_ is None else self.task_.n_parameters()


def _epoch_history(log_csv: Path) -> list[dict[str, float]]:
    """One dict per epoch (``epoch``, ``train_loss`` and, with validation, ``val_mae``) from a
    run's ``log/metrics.csv`` (training and validation metrics may sit on separate rows).
    """
    import pandas as pd

    if not log_csv.is_file():
        return []
    df = pd.read_csv(log_csv)
    if "epoch" not in df:
        return []
    cols = [c for c in ("train_loss", "val_mae") if c in df]
    per_epoch = df.groupby("epoch", sort=True)[cols].first()
    return [
        {"epoch": int(e), **{c: float(row[c]) for c in cols if pd.notna(row[c])}} for e, row in per_epoch.iterrows()
    ]


SITE_BASELINES = ("per-element", "neighbour-mlp")


def fit_predict_site_baseline(
    name: str,
    dataset: Any,
    site_target: str,
    split: Any,
    *,
    graphs: Sequence[Any] | None = None,
    **options: Any,
) -> tuple[list[np.ndarray], Any]:
    """Fit a per-site baseline on ``split.train`` and predict ``split.test`` (val if no test).

    ``graphs`` (one per dataset entry, same order) are needed by ``neighbour-mlp``; they are
    built with the default CGCNN graph config when omitted. Returns (predictions per test
    structure, the fitted baseline).
    """
    labels = dataset.site_targets[site_target]
    test = split.test if len(split.test) else split.val
    if name == "per-element":
        base = PerElementSiteBaseline(**options).fit(
            [dataset.structures[i] for i in split.train], [labels[i] for i in split.train]
        )
        return base.predict([dataset.structures[i] for i in test]), base
    if name == "neighbour-mlp":
        if graphs is None:
            from crystalgnn.graphs.builder import build_graph_list

            built, report = build_graph_list(dataset.structures, show_progress=False)
            if report.rejected:
                raise ValueError(f"{len(report.rejected)} structures have no graph; drop them first")
            graphs = built
        assert graphs is not None
        mlp = NeighbourMLPBaseline(**options).fit(
            [graphs[i] for i in split.train],
            [labels[i] for i in split.train],
            [graphs[i] for i in split.val],
            [labels[i] for i in split.val],
        )
        return mlp.predict([graphs[i] for i in test]), mlp
    raise KeyError(f"unknown per-site baseline {name!r}; available: {', '.join(SITE_BASELINES)}")
