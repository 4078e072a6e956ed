r"""SOAP -> MLP as a model: the SOAP vector of a structure through CGCNN's post-pooling network.

The thesis' descriptor network. The "encoder" is a feature scaler (no message passing: the
SOAP vector, DScribe inner average, already describes the whole structure), the readout is
CGCNN's head (:class:`~crystalgnn.models.readouts.SoftplusMLP`):

.. math::
    \hat y = W_o\, g(\ldots g(W_1\, x' + b_1) \ldots) + b_o, \qquad
    x' = \mathrm{clip}\big((x - \mu) / \sigma, -c, c\big)

with :math:`g` softplus and :math:`\mu, \sigma` the training features' mean and standard
deviation (buffers ``feature_mean``, ``feature_scale``, set with :meth:`SoapScaler.set_scaler`).

Feature scaling. Inner-averaged SOAP vectors are sparse and their scales span many orders of
magnitude (2,000 perovskites: non-zero values from 1e-34 to 4). Raw features through CGCNN's head
(with its leading softplus: ``standardize=False, input_softplus=True``, the thesis' set-up)
barely move the output (R² ≈ 0); plain standardisation lets a species pair seen in one or two
training structures explode at test time (z-scores up to 1e9). The default standardises and
clips the z-scores to ``±clip`` (5). Batches carry ``soap`` (B, n_features) instead of graphs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from crystalgnn.models.base import Encoder, Encoding, GraphReadout, ModelConfig
from crystalgnn.models.readouts import SoftplusMLP


@dataclass(frozen=True)
class SoapMLPConfig(ModelConfig):
    """Hyper-parameters of SOAP -> MLP (head sizes as CGCNN's defaults).

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

    def graph_config(self) -> Any:
        """Unused (the model reads SOAP vectors); the default graph, for a uniform interface."""
        from crystalgnn.graphs.crystal_graph import GraphConfig

        return GraphConfig()


class SoapScaler(Encoder):
    """Standardises (and clips) a batch's SOAP vectors: ``batch.soap`` (B, F) -> x (B, F).

    The atom table is carried unused, as by every model.
    """

    config: SoapMLPConfig
    feature_mean: Tensor  # registered buffers
    feature_scale: Tensor

    def build(self, config: SoapMLPConfig) -> None:
        if config.n_features <= 0:
            raise ValueError("SoapMLPConfig.n_features must be set to the SOAP vector length")
        if config.n_h < 1:
            raise ValueError("n_h must be >= 1")
        self.register_buffer("feature_mean", torch.zeros(config.n_features))
        self.register_buffer("feature_scale", torch.ones(config.n_features))
        self.out_channels = config.n_features

    def set_scaler(self, mean: Any, scale: Any) -> None:
        """Store the training features' mean and standard deviation (constant columns: 1)."""
        scale = np.asarray(scale, dtype=np.float64)
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, 1.0)
        self.feature_mean.copy_(torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.feature_scale.copy_(torch.as_tensor(scale.astype(np.float32)))

    def forward(self, batch: Any) -> Encoding:
        if isinstance(batch, Tensor):
            x = batch
        elif hasattr(batch, "soap"):
            x = batch.soap
        else:
            raise TypeError("soap-mlp reads SOAP vectors (batch.soap), not graphs")
        if self.config.standardize:
            x = (x - self.feature_mean) / self.feature_scale
            if self.config.clip:
                x = x.clamp(-self.config.clip, self.config.clip)
        return Encoding(x=x)


class SoapMLPReadout(GraphReadout):
    """CGCNN's post-pooling network on the (scaled) SOAP vector; one row per structure already.

    Shapes:
        encoding with x (B, n_features) -> (B, out_dim)
    """

    config: SoapMLPConfig

    def build(self, c: SoapMLPConfig) -> None:
        dropout = c.dropout if self.task == "classification" else 0.0
        self.mlp = SoftplusMLP(
            self.in_channels, c.h_fea_len, c.n_h, self.out_dim, dropout=dropout, input_activation=c.input_softplus
        )

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()

    def forward(self, enc: Encoding, batch: Any = None) -> Tensor:
        return self.mlp(enc.x)  # type: ignore[no-any-return]


__all__ = ["SoapMLPConfig", "SoapMLPReadout", "SoapScaler"]
