"""SOAP -> MLP as a registered model: a feature scaler ("encoder") and CGCNN's head."""

from __future__ import annotations

import pytest
import torch

from crystalgnn.graphs.atom_features import AtomFeaturizer
from crystalgnn.models.registry import build_model
from crystalgnn.models.soap_mlp import SoapMLPConfig, SoapScaler


@pytest.fixture(scope="module")
def table() -> torch.Tensor:
    return torch.tensor(AtomFeaturizer.cgcnn().matrix())


def test_clips_standardised_features(table: torch.Tensor) -> None:
    """A feature far outside the training range cannot blow the prediction up (clip at ±5)."""
    torch.manual_seed(0)
    model = build_model("soap-mlp", SoapMLPConfig(n_features=3), table, out_dim=1)
    assert isinstance(model.encoder, SoapScaler)
    model.encoder.set_scaler([0.0, 0.0, 0.0], [1e-6, 1.0, 0.0])  # near-zero feature; constant column -> scale 1
    assert torch.equal(model.encoder.feature_scale[2], torch.tensor(1.0))
    x = torch.tensor([[1e-3, 0.5, 0.0]])
    at_clip = torch.tensor([[5e-6, 0.5, 0.0]])  # z = 5 (the clip) vs 1000
    assert torch.allclose(model(x), model(at_clip))
    raw = build_model("soap-mlp", SoapMLPConfig(n_features=3, standardize=False, input_softplus=True), table, out_dim=1)
    assert torch.isfinite(raw(x)).all()
    assert not torch.allclose(raw(x), raw(at_clip))  # without scaling the input is seen as it is


def test_refuses_site_readouts_and_graphs(table: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="only --readout graph"):
        build_model("soap-mlp", SoapMLPConfig(n_features=3), table, out_dim=1, readout="site")
    model = build_model("soap-mlp", SoapMLPConfig(n_features=3), table, out_dim=1)
    with pytest.raises(TypeError, match="SOAP vectors"):
        model(object())
