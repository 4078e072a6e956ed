"""SOAP -> MLP runs: the SOAP vectors of a dataset through the one training path.

The model (a feature scaler and CGCNN's post-pooling network, registered as ``soap-mlp``) is
:mod:`crystalgnn.models.soap_mlp`; its batches carry the features as ``batch.soap`` (B, F)
instead of graphs. :func:`train_soap_mlp` makes one item per entry, sets the scaler from the
training features, and runs :func:`crystalgnn.training.run.train_on_features` (the same fit,
checkpoints, resume and test report as graph runs).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from crystalgnn.baselines.soap import SoapConfig
from crystalgnn.models.soap_mlp import SoapMLPConfig
from crystalgnn.training.run import train_on_features

#: the thesis' SOAP settings (also :class:`SoapConfig`'s defaults)
THESIS_SOAP = SoapConfig(r_cut=5.0, n_max=1, l_max=2, average="inner")


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
        split: index arrays into ``dataset`` (validation and test parts must not be empty).
        cfg: a :class:`~crystalgnn.training.config.TrainConfig` (targets, task, out, seed,
            epochs, batch size, optimiser, ...); its ``model`` is set to ``soap-mlp``.
        model_options: :class:`~crystalgnn.models.soap_mlp.SoapMLPConfig` fields.
        soap_config: the SOAP settings the features were made with (recorded in the config).

    Returns:
        the metrics dict also written to ``<out>/metrics.json``.
    """
    X = np.asarray(features, dtype=np.float32)
    if len(X) != len(dataset):
        raise ValueError(f"features have {len(X)} rows for {len(dataset)} entries")
    soap_config = soap_config or THESIS_SOAP
    opts: dict[str, Any] = {"r_cut": soap_config.r_cut, "n_max": soap_config.n_max, "l_max": soap_config.l_max}
    opts |= {"average": soap_config.average, **(model_options or {}), "n_features": int(X.shape[1])}
    model_cfg = SoapMLPConfig(**opts)
    cfg.model = "soap-mlp"
    y_all = np.stack([dataset.targets[t] for t in cfg.targets], axis=1) if cfg.targets else np.zeros((len(X), 0))
    items = soap_items(X, y_all, np.arange(len(X)))

    def prepare(module: Any, train_idx: Any) -> None:
        Xtr = X[np.asarray(train_idx, dtype=np.int64)].astype(np.float64)
        module.model.encoder.set_scaler(Xtr.mean(axis=0), Xtr.std(axis=0))

    result = train_on_features(
        cfg, dataset, items, split, model_cfg, prepare=prepare, identity={"data": _fingerprint(X, split)}
    )
    return result.metrics


__all__ = ["THESIS_SOAP", "soap_items", "train_soap_mlp"]
