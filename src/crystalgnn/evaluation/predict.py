"""Prediction from a checkpoint alone: run folder, ``.ckpt`` file, shipped model name, or an
original CGCNN ``.pth.tar`` (converted on the fly)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch_geometric.data import Data

from crystalgnn.data.dataset import CrystalDataset, Rejection
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.cache import CachedGraphs, GraphCache
from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.training.data import make_loader
from crystalgnn.training.task import CrystalTask

if TYPE_CHECKING:
    from crystalgnn.training.site_task import SitePredictor


def load_checkpoint_file(path: str | Path) -> dict[str, Any]:
    """``torch.load`` restricted to tensors and plain containers (never arbitrary pickles)."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable crystalgnn checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from exc


def task_from_checkpoint(ckpt: dict[str, Any]) -> CrystalTask:
    """Rebuild a :class:`CrystalTask` from a checkpoint dict (strict weight loading)."""
    hp = dict(ckpt["hyper_parameters"])
    state = ckpt["state_dict"]
    table = state["model.atom_features.table"]
    task = CrystalTask(**hp, atom_table=table)
    task.load_state_dict(state, strict=True)
    task.eval()
    return task


def shipped_models_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "pretrained"


def resolve_model(ref: str | Path) -> Path:
    """Find the checkpoint behind a run folder, a file, or a shipped model name."""
    p = Path(ref)
    if p.is_dir():
        for cand in (p / "checkpoints" / "best.ckpt", p / "model.ckpt", p / "checkpoints" / "last.ckpt"):
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"{p}: run folder without checkpoints/best.ckpt")
    if p.is_file():
        return p
    shipped = shipped_models_dir() / f"{ref}.ckpt"
    if shipped.is_file():
        return shipped
    names = sorted(f.stem for f in shipped_models_dir().glob("*.ckpt"))
    raise FileNotFoundError(f"{ref}: not a file, run folder or shipped model (shipped: {', '.join(names) or 'none'})")


def predictable_graphs(
    dataset: CrystalDataset,
    graph_config: GraphConfig,
    supported_elements: list[int],
    *,
    cache: GraphCache | None = None,
    n_jobs: int | None = None,
    show_progress: bool = True,
) -> tuple[list[Data], list[int], list[Rejection]]:
    """The graphs a model can read, for :class:`Predictor` and the per-site ``SitePredictor``.

    Returns the graphs, the dataset positions they belong to, and the rejections: the dataset's
    own, then the entries without a graph (an element outside ``supported_elements``, ...).
    """
    graphs, report = build_graph_list(
        dataset.structures,
        graph_config,
        cache=cache,
        supported_elements=supported_elements,
        n_jobs=n_jobs,
        show_progress=show_progress,
    )
    keep = [i for i, g in enumerate(graphs) if g is not None]
    rejected = list(dataset.rejections) + [
        Rejection(dataset.ids[i], str(dataset.metadata[i].get("source", dataset.name)), why)
        for i, why in report.rejected
    ]
    return [graphs[i] for i in keep], keep, rejected  # type: ignore[misc]


@dataclass
class Predictions:
    """Predictions for the structures of a dataset that could be turned into graphs."""

    ids: list[str]
    values: np.ndarray  # (N, T) regression values, or (N,) P(class 1)
    targets: list[str]
    units: dict[str, str]
    task: str
    rejected: list[Rejection] = field(default_factory=list)

    def to_frame(self, dataset: CrystalDataset | None = None) -> Any:
        """A table: id, formula, then target/prediction columns (target where labels exist)."""
        import pandas as pd

        df = pd.DataFrame({"id": self.ids})
        idx = dataset.index_of(self.ids) if dataset is not None else None
        if dataset is not None and idx is not None:
            df["formula"] = [dataset.structures[i].composition.reduced_formula for i in idx]
        if self.task == "classification":
            name = self.targets[0]
            if dataset is not None and name in dataset.targets and idx is not None:
                df["target"] = dataset.targets[name][idx]
            df["prediction"] = self.values
        else:
            for k, name in enumerate(self.targets):
                suffix = "" if len(self.targets) == 1 else f"_{name}"
                if dataset is not None and name in dataset.targets and idx is not None:
                    df["target" + suffix] = dataset.targets[name][idx]
                df["prediction" + suffix] = self.values[:, k]
        return df


class Predictor:
    """A trained model plus what it needs to turn structures into inputs."""

    def __init__(self, task: CrystalTask, source: str = "") -> None:
        self.task = task.eval()
        self.source = source
        hp = task.hparams
        self.graph_config = GraphConfig.from_dict(hp.graph_config)
        self.targets: list[str] = list(hp.targets)
        self.units: dict[str, str] = dict(hp.units or {})
        self.kind: str = hp.task
        self.model_name: str = hp.model_name

    @classmethod
    def load(cls, ref: str | Path) -> Predictor | SitePredictor:
        """A :class:`Predictor`, or a per-site ``SitePredictor`` for a per-site checkpoint."""
        path = resolve_model(ref)
        if path.name.endswith(".pth.tar"):
            from crystalgnn.models.cgcnn_import import import_cgcnn_task

            return cls(import_cgcnn_task(path), source=str(path))
        ckpt = load_checkpoint_file(path)
        if "site_target" in dict(ckpt.get("hyper_parameters") or {}):
            from crystalgnn.training.site_task import SitePredictor, site_task_from_checkpoint

            return SitePredictor(site_task_from_checkpoint(ckpt), source=str(path))
        return cls(task_from_checkpoint(ckpt), source=str(path))

    def supported_elements(self) -> list[int]:
        return self.task.model.atom_features.supported_elements()

    @torch.no_grad()
    def predict_graphs(self, graphs: list[Data] | CachedGraphs, batch_size: int = 256) -> np.ndarray:
        if not graphs:
            return np.zeros((0, len(self.targets)))
        if not isinstance(graphs, CachedGraphs):  # graphs on disk are read per batch
            for g in graphs:
                if getattr(g, "y", None) is None:
                    g.y = torch.zeros(1, len(self.targets))
        outs = [self.task(b) for b in make_loader(graphs, batch_size)]
        out = torch.cat(outs).cpu().numpy()
        return out[:, 1] if self.kind == "classification" else out

    def predict(
        self,
        dataset: CrystalDataset,
        *,
        batch_size: int = 256,
        cache: GraphCache | None = None,
        n_jobs: int | None = None,
        show_progress: bool = True,
    ) -> Predictions:
        graphs, keep, rejected = predictable_graphs(
            dataset, self.graph_config, self.supported_elements(), cache=cache, n_jobs=n_jobs, show_progress=show_progress
        )
        values = self.predict_graphs(graphs, batch_size)
        return Predictions([dataset.ids[i] for i in keep], values, self.targets, self.units, self.kind, rejected)
