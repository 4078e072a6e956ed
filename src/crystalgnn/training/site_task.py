"""Per-site learning: the Lightning module, and the predictor that a site checkpoint restores.

A per-site checkpoint is recognised by the ``site_target`` hyper-parameter. Its graphs carry
``site_y`` (|V|,): one label per atom in site order, NaN where the label is missing. Missing
sites are masked out of the loss and the metrics (and counted), never dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from crystalgnn import __version__
from crystalgnn.data.dataset import CrystalDataset, Rejection
from crystalgnn.models.site_heads import SiteModel
from crystalgnn.training.losses import masked_regression_loss

SITE_FORMAT_VERSION = 1


def fit_site_normalizer(arrays: list[np.ndarray]) -> dict[str, float]:
    """Mean and standard deviation over the finite training-site labels (std 1 if constant)."""
    flat = np.concatenate([np.asarray(a, dtype=float) for a in arrays]) if arrays else np.zeros(0)
    flat = flat[np.isfinite(flat)]
    if len(flat) == 0:
        raise ValueError("no labelled training site: cannot fit the per-site normaliser")
    std = float(flat.std())
    return {"mean": float(flat.mean()), "std": std if std > 1e-12 else 1.0}


class SiteTask(L.LightningModule):
    """Trains a :class:`~crystalgnn.models.site_heads.SiteModel` on one per-site target.

    Args:
        model_name: registry name of the backbone.
        model_config: the backbone's config as a dict.
        graph_config: the graph builder's config as a dict.
        site_target: per-site target name (e.g. ``abs_magmom``).
        units: target -> unit.
        normalizer: ``{"mean", "std"}`` of the training-site labels.
        optim: optimiser/scheduler options (keys of ``TrainConfig``).
        head_hidden, head_layers: size of the per-site fully-connected head.
        atom_table: atom-feature table (stored in the ``state_dict``).
        featurizer: name of the atom-feature table.
        seed: reseeds the global RNG at each epoch start (reproducible resume).
    """

    def __init__(
        self,
        model_name: str,
        model_config: dict[str, Any],
        graph_config: dict[str, Any],
        site_target: str,
        units: dict[str, str] | None = None,
        normalizer: dict[str, float] | None = None,
        optim: dict[str, Any] | None = None,
        head_hidden: int = 128,
        head_layers: int = 1,
        atom_table: Any = None,
        featurizer: str = "cgcnn",
        seed: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["atom_table"])
        if atom_table is None:
            from crystalgnn.graphs.atom_features import AtomFeaturizer

            atom_table = torch.tensor(AtomFeaturizer.cgcnn().matrix())
        self.model = SiteModel(
            model_name, model_config, torch.as_tensor(atom_table), head_hidden=head_hidden, head_layers=head_layers
        )
        norm = normalizer or {"mean": 0.0, "std": 1.0}
        self.register_buffer("y_mean", torch.tensor(float(norm["mean"])))
        self.register_buffer("y_std", torch.tensor(float(norm["std"])))
        self._val: list[tuple[Tensor, Tensor]] = []

    def forward(self, batch: Any) -> Tensor:
        """De-normalised per-site predictions, (|V|,)."""
        return self.model(batch)[:, 0] * self.y_std + self.y_mean

    def n_parameters(self) -> int:
        return self.model.n_parameters()

    def _loss(self, batch: Any) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model(batch)[:, 0]
        loss, n = masked_regression_loss(
            out, (batch.site_y - self.y_mean) / self.y_std, (self.hparams.optim or {}).get("loss", "mse")
        )
        return loss, out, n

    def on_train_epoch_start(self) -> None:
        torch.manual_seed(int(self.hparams.seed) * 100003 + self.current_epoch)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss, _, n = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=max(int(n), 1), prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        loss, out, n = self._loss(batch)
        self.log("val_loss", loss, on_epoch=True, batch_size=max(int(n), 1))
        self._val.append(((out * self.y_std + self.y_mean).detach(), batch.site_y.detach()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        pred = torch.cat([p for p, _ in self._val])
        y = torch.cat([t for _, t in self._val])
        self._val.clear()
        ok = torch.isfinite(y)
        mae = (pred[ok] - y[ok]).abs().mean() if ok.any() else torch.tensor(float("nan"))
        self.log("val_mae", mae, prog_bar=True)
        self.log("val_score", mae)

    def configure_optimizers(self) -> Any:
        from crystalgnn.training.optim import make_optimizer

        params = [p for p in self.model.parameters() if p.requires_grad]
        return make_optimizer(params, self.hparams.optim or {}, self.trainer)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["crystalgnn_version"] = __version__
        checkpoint["crystalgnn_site_format_version"] = SITE_FORMAT_VERSION

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        fmt = checkpoint.get("crystalgnn_site_format_version")
        if fmt is not None and fmt > SITE_FORMAT_VERSION:
            raise ValueError(f"per-site checkpoint format {fmt} is newer than this crystalgnn ({__version__})")


def is_site_checkpoint(ckpt: dict[str, Any]) -> bool:
    return "site_target" in dict(ckpt.get("hyper_parameters") or {})


def site_task_from_checkpoint(ckpt: dict[str, Any]) -> SiteTask:
    """Rebuild a :class:`SiteTask` from a checkpoint dict (strict weight loading)."""
    hp = dict(ckpt["hyper_parameters"])
    state = ckpt["state_dict"]
    task = SiteTask(**hp, atom_table=state["model.backbone.atom_features.table"])
    task.load_state_dict(state, strict=True)
    task.eval()
    return task


# --------------------------------------------------------------------------- graphs with labels
def attach_site_targets(graphs: list[Data], arrays: list[np.ndarray | None]) -> list[Data]:
    """Set ``g.site_y`` (|V|,) float32 (NaN = missing) and ``g.idx`` on each graph."""
    for i, (g, a) in enumerate(zip(graphs, arrays, strict=True)):
        n = int(g.num_nodes)
        y = np.full(n, np.nan, dtype=np.float32) if a is None else np.asarray(a, dtype=np.float32)
        if len(y) != n:
            raise ValueError(f"graph {i}: {len(y)} per-site labels for {n} sites")
        g.site_y = torch.from_numpy(y.copy())
        g.idx = torch.tensor([i])
    return list(graphs)


# --------------------------------------------------------------------------- prediction
@dataclass
class SitePredictions:
    """One prediction per site for each structure that could be turned into a graph."""

    ids: list[str]
    values: list[np.ndarray]  # one (n_sites,) array per structure
    site_target: str
    units: dict[str, str]
    rejected: list[Rejection] = field(default_factory=list)
    task: str = "site"

    @property
    def targets(self) -> list[str]:
        return [self.site_target]

    def to_frame(self, dataset: CrystalDataset | None = None, target: str | None = None) -> Any:
        """id, site_index, element, [target,] prediction: one row per site.

        ``target`` (default: the model's target) is added when ``dataset`` holds it or can
        derive it (``abs_X``); missing labels are NaN.
        """
        import pandas as pd

        name = target or self.site_target
        rows_id, rows_k, rows_el, rows_t = [], [], [], []
        truth = None
        if dataset is not None:
            from crystalgnn.data.targets import ensure_targets

            try:
                ensure_targets(dataset, [name])
            except KeyError:
                pass
            truth = dataset.site_targets.get(name)
        pos = {k: i for i, k in enumerate(dataset.ids)} if dataset is not None else {}
        for sid, vals in zip(self.ids, self.values, strict=True):
            n = len(vals)
            rows_id += [sid] * n
            rows_k += list(range(n))
            if dataset is not None:
                s = dataset.structures[pos[sid]]
                rows_el += [site.specie.symbol for site in s]
                if truth is not None:
                    t = truth[pos[sid]]
                    rows_t.append(np.full(n, np.nan) if t is None else np.asarray(t, dtype=float))
        df = pd.DataFrame({"id": rows_id, "site_index": rows_k})
        if rows_el:
            df["element"] = rows_el
        if truth is not None:
            df["target"] = np.concatenate(rows_t) if rows_t else np.zeros(0)
        df["prediction"] = np.concatenate(self.values) if self.values else np.zeros(0)
        return df

    def property_name(self) -> str:
        return f"predicted_{self.site_target}"

    def to_structures(self, dataset: CrystalDataset) -> list[Any]:
        """Copies of the structures with the predictions as the site property ``predicted_<target>``."""
        pos = {k: i for i, k in enumerate(dataset.ids)}
        out = []
        for sid, vals in zip(self.ids, self.values, strict=True):
            s = dataset.structures[pos[sid]].copy()
            s.add_site_property(self.property_name(), [float(v) for v in vals])
            out.append(s)
        return out

    def write_structures(self, dataset: CrystalDataset, out_dir: str | Path) -> list[Path]:
        """Write ``<id>.json`` (``Structure.to``) and ``<id>.cif`` (prediction as an
        ``_atom_site_predicted_<target>`` column of the atom-site loop) per structure."""
        from pymatgen.io.cif import CifWriter

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        prop = self.property_name()
        for sid, s in zip(self.ids, self.to_structures(dataset), strict=True):
            stem = _safe_name(sid)
            jpath = out_dir / f"{stem}.json"
            s.to(filename=str(jpath))
            bare = s.copy()
            for k in list(bare.site_properties):
                if k != prop:
                    bare.remove_site_property(k)
            cpath = out_dir / f"{stem}.cif"
            CifWriter(bare, write_site_properties=True).write_file(str(cpath))
            written += [jpath, cpath]
        (out_dir / "site_property.json").write_text(
            json.dumps({"site_property": prop, "unit": self.units.get(self.site_target, ""), "n_structures": len(self.ids)})
        )
        return written


def _safe_name(s: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in str(s))
    return keep or "structure"


class SitePredictor:
    """A trained per-site model plus what it needs to turn structures into inputs."""

    kind = "site"

    def __init__(self, task: SiteTask, source: str = "") -> None:
        from crystalgnn.graphs.crystal_graph import GraphConfig

        self.task = task.eval()
        self.source = source
        hp = task.hparams
        self.graph_config = GraphConfig.from_dict(hp.graph_config)
        self.site_target: str = hp.site_target
        self.targets: list[str] = [self.site_target]
        self.units: dict[str, str] = dict(hp.units or {})
        self.model_name: str = hp.model_name

    @classmethod
    def load(cls, ref: str | Path) -> SitePredictor:
        from crystalgnn.evaluation.predict import load_checkpoint_file, resolve_model

        path = resolve_model(ref)
        ckpt = load_checkpoint_file(path)
        if not is_site_checkpoint(ckpt):
            raise ValueError(f"{path}: not a per-site checkpoint")
        return cls(site_task_from_checkpoint(ckpt), source=str(path))

    def supported_elements(self) -> list[int]:
        return self.task.model.backbone.atom_features.supported_elements()

    @torch.no_grad()
    def predict_graphs(self, graphs: list[Data], batch_size: int = 256) -> list[np.ndarray]:
        """One (n_sites,) array per graph, in site order."""
        from crystalgnn.training.data import make_loader

        if not graphs:
            return []
        out = []
        for b in make_loader(list(graphs), batch_size):
            pred = self.task(b).cpu().numpy()
            counts = torch.bincount(b.batch, minlength=b.num_graphs).tolist()
            out += np.split(pred, np.cumsum(counts)[:-1])
        return [np.asarray(a, dtype=float) for a in out]

    def predict(
        self,
        dataset: CrystalDataset,
        *,
        batch_size: int = 256,
        cache: Any = None,
        n_jobs: int | None = None,
        show_progress: bool = True,
    ) -> SitePredictions:
        from crystalgnn.evaluation.predict import predictable_graphs

        graphs, keep, rejected = predictable_graphs(
            dataset, self.graph_config, self.supported_elements(), cache=cache, n_jobs=n_jobs, show_progress=show_progress
        )
        values = self.predict_graphs(graphs, batch_size)
        return SitePredictions([dataset.ids[i] for i in keep], values, self.site_target, self.units, rejected)
