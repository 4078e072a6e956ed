"""The Lightning module: one model + its task (regression with a normaliser, or classification).

Everything needed to rebuild the network is a plain hyper-parameter (model name and config,
graph config, targets, units, normaliser, atom-feature table in the ``state_dict``), so
``CrystalTask.load_from_checkpoint(path)`` alone restores a working predictor.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from crystalgnn import __version__
from crystalgnn.evaluation.metrics import classification_metrics
from crystalgnn.models.registry import build_model
from crystalgnn.training.losses import masked_regression_loss

FORMAT_VERSION = 1


class CrystalTask(L.LightningModule):
    """Trains and runs any registered model on graph-level targets.

    Args:
        model_name: registry name (``cgcnn``, ``megnet``, ...).
        model_config: the model's config as a dict.
        graph_config: the graph builder's config as a dict.
        targets: target names (several for multi-target regression).
        task: ``"regression"`` or ``"classification"``.
        units: target -> unit.
        normalizer: ``{"mean": [...], "std": [...]}`` of the training targets (regression).
        optim: optimiser/scheduler options (see :class:`~crystalgnn.training.config.TrainConfig`).
        atom_table: (max_Z + 1, F) atom-feature table; stored in the ``state_dict``.
        featurizer: name of the atom-feature table (for reports).
        seed: reseeds the global RNG at each epoch start, so dropout is reproducible on resume.
    """

    def __init__(
        self,
        model_name: str,
        model_config: dict[str, Any],
        graph_config: dict[str, Any],
        targets: list[str],
        task: str = "regression",
        units: dict[str, str] | None = None,
        normalizer: dict[str, list[float]] | None = None,
        optim: dict[str, Any] | None = None,
        atom_table: Any = None,
        featurizer: str = "cgcnn",
        seed: int = 0,
        n_classes: int = 2,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["atom_table"])
        if atom_table is None:  # rebuilt from a checkpoint: the state_dict fills the table in
            from crystalgnn.graphs.atom_features import AtomFeaturizer

            atom_table = torch.tensor(AtomFeaturizer.cgcnn().matrix())
        out_dim = n_classes if task == "classification" else len(targets)
        self.model = build_model(model_name, model_config, torch.as_tensor(atom_table), out_dim=out_dim, task=task)
        norm = normalizer or {"mean": [0.0] * len(targets), "std": [1.0] * len(targets)}
        self.register_buffer("y_mean", torch.tensor(norm["mean"], dtype=torch.float32))
        self.register_buffer("y_std", torch.tensor(norm["std"], dtype=torch.float32))
        self._val_outputs: list[tuple[Tensor, Tensor]] = []

    # ---------------------------------------------------------------- inference
    @property
    def is_classification(self) -> bool:
        return self.hparams.task == "classification"

    def forward(self, batch: Any) -> Tensor:
        """Regression: de-normalised predictions (B, T). Classification: P(class) (B, C)."""
        out = self.model(batch)
        if self.is_classification:
            return torch.softmax(out, dim=-1)
        return out * self.y_std + self.y_mean

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    # ---------------------------------------------------------------- training
    def _loss(self, batch: Any) -> tuple[Tensor, Tensor]:
        out = self.model(batch)
        y = batch.y
        if self.is_classification:
            return F.cross_entropy(out, y[:, 0].long()), out
        loss, _ = masked_regression_loss(out, (y - self.y_mean) / self.y_std, (self.hparams.optim or {}).get("loss", "mse"))
        return loss, out

    def on_train_epoch_start(self) -> None:
        torch.manual_seed(int(self.hparams.seed) * 100003 + self.current_epoch)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss, _ = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=batch.num_graphs, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        loss, out = self._loss(batch)
        self.log("val_loss", loss, on_epoch=True, batch_size=batch.num_graphs)
        pred = torch.softmax(out, -1)[:, 1] if self.is_classification else out * self.y_std + self.y_mean
        self._val_outputs.append((pred.detach(), batch.y.detach()))

    def on_validation_epoch_end(self) -> None:
        if not self._val_outputs:
            return
        pred = torch.cat([p for p, _ in self._val_outputs])
        y = torch.cat([t for _, t in self._val_outputs])
        self._val_outputs.clear()
        if self.is_classification:
            m = classification_metrics(y[:, 0].cpu().numpy(), pred.cpu().numpy())
            auc = m["roc_auc"] if np.isfinite(m["roc_auc"]) else m["accuracy"]
            self.log("val_auc", float(auc), prog_bar=True)
            self.log("val_score", -float(auc))
        else:
            err = (pred - y).abs()
            mae = torch.nanmean(err) if torch.isnan(err).any() else err.mean()
            self.log("val_mae", mae, prog_bar=True)
            self.log("val_score", mae)

    def configure_optimizers(self) -> Any:
        from crystalgnn.training.optim import make_optimizer

        return make_optimizer(self.model.parameters(), self.hparams.optim or {}, self.trainer)

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["crystalgnn_version"] = __version__
        checkpoint["crystalgnn_format_version"] = FORMAT_VERSION

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        fmt = checkpoint.get("crystalgnn_format_version")
        if fmt is not None and fmt > FORMAT_VERSION:
            raise ValueError(
                f"checkpoint format {fmt} is newer than this crystalgnn ({__version__}, format {FORMAT_VERSION})"
            )
