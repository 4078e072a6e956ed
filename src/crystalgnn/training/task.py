"""The one Lightning module: any registered encoder + readout, trained on the run's target spec.

Graph- and site-level targets, regression (normalised, masked losses) and classification
(cross-entropy) go through the same steps; everything needed to rebuild the network is a plain
hyper-parameter (model name and config, readout, graph config, target spec, optimiser; the
atom-feature table is in the ``state_dict``), so a checkpoint alone restores a working predictor
(:func:`crystalgnn.training.checkpoints.task_from_checkpoint`).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from crystalgnn._version import __version__
from crystalgnn.metrics import classification_metrics
from crystalgnn.models.registry import build_model
from crystalgnn.training.losses import masked_regression_loss
from crystalgnn.training.migration import FORMAT_VERSION, CheckpointError, check_format, migrate, state_mismatch
from crystalgnn.training.targets import TargetSpec


class CrystalTask(L.LightningModule):
    """Trains and runs any registered model on graph- or site-level targets.

    Args:
        model_name: registry name (``cgcnn``, ``megnet``, ...).
        model_config: the model's config as a dict.
        graph_config: the graph builder's config as a dict.
        target: the :class:`~crystalgnn.training.targets.TargetSpec` as a dict.
        readout: ``graph``, ``site`` or ``site-linear`` (:func:`crystalgnn.models.registry.build_model`).
        readout_options: options of a site readout (head width, layers, reduction).
        optim: optimiser/scheduler options (see :class:`~crystalgnn.training.config.TrainConfig`).
        atom_table: (max_Z + 1, F) atom-feature table; stored in the ``state_dict``.
        featurizer: name of the atom-feature table, or ``soap`` (for reports).
        seed: reseeds the global RNG at each epoch start, so dropout is reproducible on resume.
        extra: free-form provenance (source, training-set size, import origin, ...).
    """

    y_mean: Tensor  # registered buffers: the target normaliser
    y_std: Tensor

    def __init__(
        self,
        model_name: str,
        model_config: dict[str, Any],
        graph_config: dict[str, Any],
        target: dict[str, Any],
        readout: str = "graph",
        readout_options: dict[str, Any] | None = None,
        optim: dict[str, Any] | None = None,
        atom_table: Any = None,
        featurizer: str = "cgcnn",
        seed: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["atom_table"])
        self.spec = TargetSpec.from_dict(dict(target))
        if atom_table is None:  # rebuilt from a checkpoint: the state_dict fills the table in
            from crystalgnn.graphs.atom_features import AtomFeaturizer

            atom_table = torch.tensor(AtomFeaturizer.cgcnn().matrix())
        if self.spec.level == "site" and readout != "site":
            raise ValueError("per-site targets need --readout site")
        if self.spec.level == "graph" and readout == "site":
            raise ValueError("--readout site predicts one value per atom: give a per-site target (--site-target)")
        self.model = build_model(
            model_name,
            model_config,
            torch.as_tensor(atom_table),
            out_dim=self.spec.out_dim,
            task=self.spec.kind,  # type: ignore[arg-type]
            readout=readout,
            readout_options=readout_options,
        )
        self.register_buffer("y_mean", torch.tensor(self.spec.mean, dtype=torch.float32))
        self.register_buffer("y_std", torch.tensor(self.spec.std, dtype=torch.float32))
        self._val_outputs: list[tuple[Tensor, Tensor]] = []

    # ---------------------------------------------------------------- inference
    @property
    def _hp(self) -> Any:
        """``self.hparams`` (Lightning types it as a plain ``MutableMapping``, without attribute access)."""
        return self.hparams

    @property
    def is_classification(self) -> bool:
        return self.spec.kind == "classification"

    def forward(self, batch: Any) -> Tensor:
        """Regression: de-normalised predictions, (B, T) or per site (|V|, 1).
        Classification: P(class) (B, C).
        """
        out = self.model(batch)
        if self.is_classification:
            return torch.softmax(out, dim=-1)
        return out * self.y_std + self.y_mean

    def n_parameters(self) -> int:
        return self.model.n_parameters()

    # ---------------------------------------------------------------- training
    def _labels(self, batch: Any) -> Tensor:
        return batch.site_y.unsqueeze(-1) if self.spec.level == "site" else batch.y

    def _loss(self, batch: Any) -> tuple[Tensor, Tensor, int]:
        out = self.model(batch)
        y = self._labels(batch)
        if self.is_classification:
            return F.cross_entropy(out, y[:, 0].long()), out, int(batch.num_graphs)
        loss, n = masked_regression_loss(out, (y - self.y_mean) / self.y_std, (self._hp.optim or {}).get("loss", "mse"))
        size = int(batch.num_graphs) if self.spec.level == "graph" else max(int(n), 1)
        return loss, out, size

    @property
    def encoder_frozen(self) -> bool:
        """Fine-tuning: whether this epoch is one of the first ``freeze_encoder_epochs``."""
        return self.current_epoch < int((self._hp.optim or {}).get("freeze_encoder_epochs", 0) or 0)

    def on_train_epoch_start(self) -> None:
        torch.manual_seed(int(self._hp.seed) * 100003 + self.current_epoch)
        frozen = self.encoder_frozen  # no gradient, so the optimiser skips the encoder's weights
        for p in self.model.encoder.parameters():
            p.requires_grad_(not frozen)

    def on_train_end(self) -> None:
        for p in self.model.encoder.parameters():
            p.requires_grad_(True)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """A frozen encoder also runs in eval mode: its batch-norm statistics stay as loaded."""
        if self.encoder_frozen:
            self.model.encoder.eval()

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        loss, _, size = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=size, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        loss, out, size = self._loss(batch)
        self.log("val_loss", loss, on_epoch=True, batch_size=size)
        pred = torch.softmax(out, -1)[:, 1] if self.is_classification else out * self.y_std + self.y_mean
        self._val_outputs.append((pred.detach(), self._labels(batch).detach()))

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
        from crystalgnn.training.optim import make_optimizer, param_groups

        for p in self.model.encoder.parameters():  # a run resumed during its frozen epochs
            p.requires_grad_(True)
        return make_optimizer(param_groups(self.model, self._hp.optim or {}), self._hp.optim or {}, self.trainer)

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["crystalgnn_version"] = __version__
        checkpoint["crystalgnn_format_version"] = FORMAT_VERSION

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming a run: check the format, bring a checkpoint of format 1 up to date and check
        that its weights fit this model (one-line :class:`CheckpointError` otherwise).
        """
        check_format(checkpoint, "the checkpoint to resume from")
        checkpoint.update(migrate(checkpoint))
        state = checkpoint.get("state_dict")
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise CheckpointError("the checkpoint to resume from holds no state_dict of named tensors")
        problem = state_mismatch({k: tuple(v.shape) for k, v in self.state_dict().items()}, state)
        if problem:
            raise CheckpointError(f"the checkpoint to resume from does not fit this run's model: {problem}")
