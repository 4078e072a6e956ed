"""One Predictor for every checkpoint: a run folder, a ``.ckpt`` file, a shipped model name or an
original CGCNN ``.pth.tar`` (converted on the fly); graph-level or per-site, regression or
classification. It turns any source the readers accept (files, folders, tables, pymatgen
``Structure`` or ASE ``Atoms`` objects) into graphs the model can read and predicts them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data

from crystalgnn.data.dataset import CrystalDataset, Rejection
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.cache import CachedGraphs, GraphCache
from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.prediction.results import NonFiniteWarning, Predictions, SitePredictions
from crystalgnn.training.checkpoints import load_task
from crystalgnn.training.resolve import resolve_model
from crystalgnn.training.run import predict_inputs
from crystalgnn.training.task import CrystalTask


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
    return [graphs[i] for i in keep], keep, rejected


class Predictor:
    """A trained model plus what it needs to turn structures into inputs.

    Attributes:
        task: the :class:`~crystalgnn.training.task.CrystalTask` (in eval mode).
        kind: ``"regression"``, ``"classification"`` or ``"site"`` (one value per atom).
        targets, units: what it predicts, with units.
        graph_config: the graphs it reads.
    """

    def __init__(self, task: CrystalTask, source: str = "") -> None:
        self.task = task.eval()
        self.source = source
        hp: Any = task.hparams  # attribute access (Lightning types hparams as a MutableMapping)
        spec = task.spec
        self.graph_config = GraphConfig.from_dict(hp.graph_config)
        self.targets: list[str] = list(spec.names)
        self.units: dict[str, str] = dict(spec.units)
        self.level: str = spec.level
        self.kind: str = "site" if spec.level == "site" else spec.kind
        self.model_name: str = hp.model_name
        self.site_target: str | None = spec.names[0] if spec.level == "site" else None

    @classmethod
    def load(cls, ref: str | Path) -> Predictor:
        """Any checkpoint: run folder, ``.ckpt`` (any format), shipped name or original ``.pth.tar``."""
        path = resolve_model(ref)
        if path.name.endswith(".pth.tar"):
            from crystalgnn.prediction.cgcnn_import import import_cgcnn_task

            return cls(import_cgcnn_task(path), source=str(path))
        return cls(load_task(path), source=str(path))

    def supported_elements(self) -> list[int]:
        return self.task.model.atom_features.supported_elements()

    def predict_graphs(self, graphs: list[Data] | CachedGraphs, batch_size: int = 256) -> Any:
        """(N, T) values, (N,) P(class 1), or one (n_sites,) array per graph (per-site models)."""
        if not isinstance(graphs, CachedGraphs):  # graphs on disk are read per batch
            for g in graphs:
                if getattr(g, "y", None) is None:
                    g.y = torch.zeros(1, len(self.targets))
        return predict_inputs(self.task, graphs, batch_size)

    def predict(
        self,
        data: Any,
        *,
        batch_size: int = 256,
        cache: GraphCache | None = None,
        n_jobs: int | None = None,
        show_progress: bool = False,
    ) -> Predictions | SitePredictions:
        """Predict a :class:`~crystalgnn.data.dataset.CrystalDataset`, or anything
        :func:`~crystalgnn.data.readers.load_source` reads (a path, a dataset name, one or a list
        of pymatgen ``Structure`` / ASE ``Atoms``). Entries without a graph are in ``.rejected``.
        NaN or infinite predictions give one :class:`~crystalgnn.prediction.results.NonFiniteWarning`.
        """
        if not isinstance(data, CrystalDataset):
            from crystalgnn.data.readers import load_source

            data = load_source(data, show_progress=show_progress)
        graphs, keep, rejected = predictable_graphs(
            data, self.graph_config, self.supported_elements(), cache=cache, n_jobs=n_jobs, show_progress=show_progress
        )
        values = self.predict_graphs(graphs, batch_size)
        ids = [data.ids[i] for i in keep]
        res: Predictions | SitePredictions
        if self.level == "site":
            res = SitePredictions(ids, values, self.targets[0], self.units, rejected)
        else:
            formulas = [data.structures[i].composition.reduced_formula for i in keep]
            res = Predictions(ids, values, self.targets, self.units, self.kind, rejected, formulas)
        bad = res.nonfinite_message()
        if bad:
            warnings.warn(bad, NonFiniteWarning, stacklevel=2)
        return res

    def __repr__(self) -> str:
        return f"Predictor({self.model_name} -> {', '.join(self.targets)} [{self.kind}], from {self.source or '?'})"
