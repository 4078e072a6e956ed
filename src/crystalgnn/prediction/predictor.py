"""One Predictor for every checkpoint: a run folder, a ``.ckpt`` file, a shipped model name, an
original CGCNN ``.pth.tar`` (converted on the fly) or a deep ensemble's folder (the members' mean
and spread, :class:`EnsemblePredictor`); graph-level or per-site, regression or
classification. It turns any source the readers accept (files, folders, tables, pymatgen
``Structure`` or ASE ``Atoms`` objects) into graphs the model can read and predicts them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from crystalgnn.data.dataset import CrystalDataset, Rejection
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.cache import CachedGraphs, GraphCache
from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.prediction.results import NonFiniteWarning, Predictions, SitePredictions
from crystalgnn.training.checkpoints import load_task
from crystalgnn.training.ensemble import ensemble_members, is_ensemble
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
        """Any checkpoint: run folder, ``.ckpt`` (any format), shipped name, original ``.pth.tar``,
        or an ensemble folder (``train --ensemble N``: an
        :class:`EnsemblePredictor`).
        """
        if is_ensemble(ref):
            return EnsemblePredictor.load(ref)
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

    def predict_graphs_with_spread(self, graphs: list[Data] | CachedGraphs, batch_size: int = 256) -> tuple[Any, Any]:
        """:meth:`predict_graphs` and the spread of an ensemble's members (``None`` for one model)."""
        return self.predict_graphs(graphs, batch_size), None

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
        values, std = self.predict_graphs_with_spread(graphs, batch_size)
        ids = [data.ids[i] for i in keep]
        res: Predictions | SitePredictions
        if self.level == "site":
            res = SitePredictions(ids, values, self.targets[0], self.units, rejected)
        else:
            formulas = [data.structures[i].composition.reduced_formula for i in keep]
            res = Predictions(ids, values, self.targets, self.units, self.kind, rejected, formulas, std)
        bad = res.nonfinite_message()
        if bad:
            warnings.warn(bad, NonFiniteWarning, stacklevel=2)
        return res

    def __repr__(self) -> str:
        return f"Predictor({self.model_name} -> {', '.join(self.targets)} [{self.kind}], from {self.source or '?'})"


class EnsemblePredictor(Predictor):
    """A :class:`Predictor` whose values are the mean of its members and whose
    :class:`~crystalgnn.prediction.results.Predictions` carry ``std``.

    Attributes:
        members: one :class:`Predictor` per member (the first also serves as ``self``'s model).
    """

    def __init__(self, members: list[Predictor], source: str = "") -> None:
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members (got {len(members)})")
        super().__init__(members[0].task, source=source)
        if self.level == "site":
            raise ValueError(f"{source}: ensembles of per-site models are not supported")
        for m in members[1:]:
            if (m.graph_config, m.targets, m.kind) != (self.graph_config, self.targets, self.kind):
                raise ValueError(
                    f"{m.source}: its graphs, targets or task differ from {members[0].source}: not one ensemble"
                )
            if m.supported_elements() != self.supported_elements():
                raise ValueError(f"{m.source}: its atom features differ from {members[0].source}: not one ensemble")
        self.members = members

    @classmethod
    def load(cls, ref: str | Path) -> EnsemblePredictor:
        """The ensemble folder ``ref`` (``ensemble.json`` names the member run folders)."""
        members = [Predictor(load_task(resolve_model(p)), source=str(p)) for p in ensemble_members(ref)]
        return cls(members, source=str(ref))

    def predict_graphs(self, graphs: list[Data] | CachedGraphs, batch_size: int = 256) -> Any:
        """The members' mean."""
        return self.predict_graphs_with_spread(graphs, batch_size)[0]

    def predict_graphs_with_spread(self, graphs: list[Data] | CachedGraphs, batch_size: int = 256) -> tuple[Any, Any]:
        """The members' mean and population standard deviation, each shaped as one member's values."""
        stacked = np.stack([np.asarray(Predictor.predict_graphs(m, graphs, batch_size)) for m in self.members])
        return stacked.mean(axis=0), stacked.std(axis=0)

    def __repr__(self) -> str:
        return f"EnsemblePredictor({len(self.members)} x {self.model_name} -> {', '.join(self.targets)}, from {self.source})"
