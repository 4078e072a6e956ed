"""SOAP -> MLP: the SOAP vector of a structure fed to CGCNN's post-pooling network.

The thesis' descriptor network: the inner-averaged SOAP vector (DScribe, ``r_cut`` 5 Å,
``n_max`` 1, ``l_max`` 2) takes the place of CGCNN's pooled crystal vector and goes through the
same head -- ``conv_to_fc`` (``n_features -> h_fea_len``) -> ``n_h - 1`` hidden layers ->
``fc_out``, softplus activations -- trained with the same Lightning module
(:class:`~crystalgnn.training.task.CrystalTask`: normalised targets, the optimiser and schedule
of :class:`~crystalgnn.training.config.TrainConfig`, best-validation checkpoint).

Feature scaling. Inner-averaged SOAP vectors are sparse (a perovskite touches a handful of the
4,788 species-pair components of the 56 Castelli elements) and their scales span many orders of
magnitude (2,000 perovskites: non-zero values from 1e-34 to 4). Two set-ups fail:

* raw features through CGCNN's head (with its leading softplus, ``soap-mlp-raw``): the input
  barely moves the output, the network predicts about the mean (R² ≈ 0 -- the thesis' result);
* plain per-feature standardisation (``soap-mlp-noclip``): a species pair present in one or two
  training structures, often only as a far-away tail of 1e-11, gets a training standard
  deviation near 1e-12, and a validation structure where the pair is close then has a z-score
  up to 1e9; the predictions explode (test MAE of hundreds of eV/cell on ``heat_all``).

The default here standardises with the training mean and standard deviation and clips the
z-scores to ``±clip`` (5), so an input the training set never showed cannot push the network
outside the range it was fitted on. Mean and scale are buffers of the model (the checkpoint
carries them). ``standardize=False, input_softplus=True`` is the unscaled thesis set-up.

The model is registered as ``"soap-mlp"`` in the model registry when this module is imported.
Batches carry the features as ``batch.soap`` (B, n_features) rather than graphs, so training
goes through :func:`train_soap_mlp` (the same :func:`crystalgnn.training.run.fit` and run-folder
layout as :func:`crystalgnn.training.run.train`, resumable), not through ``train``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crystalgnn.baselines.soap import SoapConfig
from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.models.layers import CrystalModel, ModelConfig
from crystalgnn.models.registry import register_model

#: the thesis' SOAP settings (also :class:`SoapConfig`'s defaults)
THESIS_SOAP = SoapConfig(r_cut=5.0, n_max=1, l_max=2, average="inner")


@dataclass(frozen=True)
class SoapMLPConfig(ModelConfig):
    """Hyper-parameters of :class:`SoapMLP` (head sizes as CGCNN's defaults).

    Args:
        n_features: length of the SOAP vector (set from the data).
        h_fea_len: hidden size (CGCNN: 128).
        n_h: number of hidden layers (CGCNN: 1, i.e. ``conv_to_fc`` only).
        standardize: subtract the training mean and divide by the training standard deviation.
        clip: clip the standardised features to ``[-clip, clip]`` (``None``: no clipping).
        input_softplus: apply softplus to the input first, as CGCNN's head does to its pooled
            vector (on by default only in the unscaled thesis set-up).
        dropout: dropout after ``conv_to_fc``, classification only (as CGCNN).
        r_cut, n_max, l_max, average: the SOAP settings the features were made with (recorded).
    """

    n_features: int = 0
    h_fea_len: int = 128
    n_h: int = 1
    standardize: bool = True
    clip: float | None = 5.0
    input_softplus: bool = False
    dropout: float = 0.5
    r_cut: float = 5.0
    n_max: int = 1
    l_max: int = 2
    average: str = "inner"

    def graph_config(self) -> GraphConfig:
        """Unused (the model reads SOAP vectors); present for the registry interface."""
        return GraphConfig()

    def soap_config(self) -> SoapConfig:
        return SoapConfig(r_cut=self.r_cut, n_max=self.n_max, l_max=self.l_max, average=self.average)


@register_model("soap-mlp", SoapMLPConfig, "SOAP vector (DScribe, inner average) -> CGCNN's post-pooling network")
class SoapMLP(CrystalModel):
    """CGCNN's post-pooling network on a SOAP vector.

    .. math::
        \\hat y = W_o\\, g(\\ldots g(W_1\\, x' + b_1) \\ldots) + b_o, \\qquad
        x' = \\mathrm{clip}\\big((x - \\mu) / \\sigma, -c, c\\big)

    with :math:`g` softplus and :math:`\\mu, \\sigma` the training features' mean and standard
    deviation (buffers ``feature_mean``, ``feature_scale``; set with :meth:`set_scaler`).

    Shapes:
        batch with ``soap`` (B, n_features) -> (B, out_dim)
    """

    config: SoapMLPConfig

    def build(self, config: SoapMLPConfig) -> None:  # the atom table is carried (unused), as by every model
        if config.n_features <= 0:
            raise ValueError("SoapMLPConfig.n_features must be set to the SOAP vector length")
        if config.n_h < 1:
            raise ValueError("n_h must be >= 1")
        n = config.n_features
        self.register_buffer("feature_mean", torch.zeros(n))
        self.register_buffer("feature_scale", torch.ones(n))
        self.conv_to_fc = nn.Linear(n, config.h_fea_len)
        self.fcs = nn.ModuleList(nn.Linear(config.h_fea_len, config.h_fea_len) for _ in range(config.n_h - 1))
        self.dropout = nn.Dropout(config.dropout if self.task == "classification" else 0.0)
        self.fc_out = nn.Linear(config.h_fea_len, self.out_dim)

    def set_scaler(self, mean: Any, scale: Any) -> None:
        """Store the training features' mean and standard deviation (constant columns: 1)."""
        scale = np.asarray(scale, dtype=np.float64)
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        self.feature_mean.copy_(torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.feature_scale.copy_(torch.as_tensor(scale.astype(np.float32)))

    def node_embeddings(self, batch: Any) -> Tensor:
        raise NotImplementedError("soap-mlp works on one SOAP vector per structure; it has no per-atom outputs")

    def forward(self, batch: Any) -> Tensor:
        if isinstance(batch, Tensor):
            x = batch
        elif hasattr(batch, "soap"):
            x = batch.soap
        else:
            raise TypeError("soap-mlp reads SOAP vectors (batch.soap), not graphs; train it with train_soap_mlp")
        if self.config.standardize:
            x = (x - self.feature_mean) / self.feature_scale
            if self.config.clip:
                x = x.clamp(-self.config.clip, self.config.clip)
        if self.config.input_softplus:
            x = F.softplus(x)
        h = F.softplus(self.conv_to_fc(x))
        h = self.dropout(h)
        for fc in self.fcs:
            h = F.softplus(fc(h))
        return self.fc_out(h)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"SoapMLP(n_features={c.n_features}, h_fea_len={c.h_fea_len}, n_h={c.n_h}, "
            f"standardize={c.standardize}, clip={c.clip}, input_softplus={c.input_softplus}, out_dim={self.out_dim})"
        )


# --------------------------------------------------------------------------- data
def soap_items(X: np.ndarray, y: np.ndarray, indices: np.ndarray) -> list[Any]:
    """One PyG ``Data`` per entry: ``soap`` (1, F), ``y`` (1, T), ``idx``."""
    from torch_geometric.data import Data

    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32).reshape(len(X), -1)
    out = []
    for i in indices:
        i = int(i)
        out.append(
            Data(
                soap=torch.from_numpy(X[i : i + 1].copy()),
                y=torch.from_numpy(y[i : i + 1].copy()),
                idx=torch.tensor([i]),
                num_nodes=1,
            )
        )
    return out


def _fingerprint(X: np.ndarray, split: Any) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(np.ascontiguousarray(X[: min(len(X), 64)], dtype=np.float32).tobytes())
    h.update(np.int64(X.shape[0]).tobytes() + np.int64(X.shape[1]).tobytes())
    for part in ("train", "val", "test"):
        h.update(np.asarray(getattr(split, part), dtype=np.int64).tobytes() + b"|")
    return h.hexdigest()


# --------------------------------------------------------------------------- training
def train_soap_mlp(
    dataset: Any,
    features: np.ndarray,
    split: Any,
    cfg: Any,
    *,
    model_options: dict[str, Any] | None = None,
    soap_config: SoapConfig | None = None,
) -> dict[str, Any]:
    """Train SOAP -> MLP on ``split`` and report test metrics; resumable like ``train``.

    Args:
        dataset: the :class:`~crystalgnn.data.dataset.CrystalDataset` ``features`` belong to.
        features: (len(dataset), n_features) SOAP matrix.
        split: index arrays into ``dataset`` (an empty ``val`` uses a tenth of ``train``, as
            ``train`` does).
        cfg: a :class:`~crystalgnn.training.config.TrainConfig`; uses ``targets``, ``task``,
            ``out`` (the run folder), ``seed``, ``epochs``, ``batch_size``, optimiser/scheduler
            options, ``early_stopping_patience``, ``accelerator``, ``devices``, ``num_threads``,
            ``num_nodes``, ``strategy``, ``max_time_minutes`` and ``progress`` (the fit is
            :func:`crystalgnn.training.run.fit`).
        model_options: :class:`SoapMLPConfig` fields (``standardize``, ``input_softplus``,
            ``h_fea_len``, ``n_h``, ...).
        soap_config: the SOAP settings the features were made with (recorded in the config).

    Returns:
        the metrics dict also written to ``<out>/metrics.json`` (``test`` metrics,
        ``train_time_s``, ``n_parameters``, ``checkpoint_bytes``, ...). A folder that already
        holds a finished run with the same set-up returns its metrics without training.
    """
    import lightning as L

    from crystalgnn.evaluation.predict import load_checkpoint_file, task_from_checkpoint
    from crystalgnn.graphs.atom_features import AtomFeaturizer
    from crystalgnn.training.data import fit_normalizer, make_loader
    from crystalgnn.training.run import RunConfigMismatch, finish_run, fit, infer_task, write_report
    from crystalgnn.training.task import CrystalTask

    targets = list(cfg.targets)
    if not targets:
        raise ValueError("no target given")
    X = np.asarray(features, dtype=np.float32)
    if len(X) != len(dataset):
        raise ValueError(f"features have {len(X)} rows for {len(dataset)} entries")
    soap_config = soap_config or THESIS_SOAP
    opts = {"r_cut": soap_config.r_cut, "n_max": soap_config.n_max, "l_max": soap_config.l_max}
    opts |= {"average": soap_config.average, **(model_options or {}), "n_features": int(X.shape[1])}
    model_cfg = SoapMLPConfig(**opts)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)

    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    identity = {
        "train_config": cfg.resume_key(),
        "model_config": model_cfg.to_dict(),
        "data": _fingerprint(X, split),
    }
    setup_path = run_dir / "soap_mlp.json"
    if setup_path.is_file():
        old = json.loads(setup_path.read_text())
        if old != json.loads(json.dumps(identity)):
            raise RunConfigMismatch(f"{run_dir} holds a soap-mlp run with another set-up; choose another folder")
        if (run_dir / "metrics.json").is_file():
            return json.loads((run_dir / "metrics.json").read_text())
    setup_path.write_text(json.dumps(identity, indent=1))
    cfg.save(run_dir / "config.yaml")
    split.save(run_dir / "split.json", dataset.ids)
    t_start = time.perf_counter()

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    task_kind = infer_task(dataset, targets, cfg.task)
    y_all = np.stack([dataset.targets[t] for t in targets], axis=1)
    train_idx = np.asarray(split.train, dtype=np.int64)
    val_idx = np.asarray(split.val, dtype=np.int64)
    if len(val_idx) == 0:
        val_idx = train_idx[: max(1, len(train_idx) // 10)]
    normalizer = fit_normalizer(y_all[train_idx]) if task_kind == "regression" else None
    torch.manual_seed(cfg.seed)
    module = CrystalTask(
        model_name="soap-mlp",
        model_config=model_cfg.to_dict(),
        graph_config=model_cfg.graph_config().to_dict(),
        targets=targets,
        task=task_kind,
        units={t: dataset.units.get(t, "") for t in targets},
        normalizer=normalizer,
        optim=cfg.optim_dict(),
        atom_table=torch.tensor(AtomFeaturizer.cgcnn().matrix()),
        featurizer="soap",
        seed=cfg.seed,
        extra={"source": str(cfg.source), "n_train": int(len(train_idx))},
    )
    Xtr = X[train_idx].astype(np.float64)
    module.model.set_scaler(Xtr.mean(axis=0), Xtr.std(axis=0))
    del Xtr

    train_loader = make_loader(soap_items(X, y_all, train_idx), cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_loader = make_loader(soap_items(X, y_all, val_idx), cfg.batch_size)
    monitor, mode = ("val_mae", "min") if task_kind == "regression" else ("val_auc", "max")
    result = fit(module, train_loader, val_loader, run_dir, cfg, monitor, mode)

    restored = task_from_checkpoint(load_checkpoint_file(result.best_path))
    test_idx = np.asarray(split.test if len(split.test) else split.val, dtype=np.int64)
    with torch.no_grad():
        outs = [restored(b) for b in make_loader(soap_items(X, y_all, test_idx), 1024)]
    values = torch.cat(outs).cpu().numpy() if outs else np.zeros((0, len(targets)))
    if task_kind == "classification":
        values = values[:, 1]
    shim = SimpleNamespace(kind=task_kind, targets=targets, units={t: dataset.units.get(t, "") for t in targets})
    metrics = write_report(run_dir, dataset, test_idx, values, shim, prefix="test")  # type: ignore[arg-type]
    metrics.update(
        {
            "model": "soap-mlp",
            "model_config": model_cfg.to_dict(),
            "targets": targets,
            "task": task_kind,
            "units": {t: dataset.units.get(t, "") for t in targets},
            "n_train": int(len(train_idx)),
            "n_val": int(len(split.val)),
            "n_test": int(len(split.test)),
            **result.summary(module, t_start, cfg.seed),
        }
    )
    finish_run(run_dir, metrics)
    return metrics


__all__ = ["THESIS_SOAP", "SoapMLP", "SoapMLPConfig", "soap_items", "train_soap_mlp"]
