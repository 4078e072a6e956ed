"""The regression losses: values, masking, and what each one makes a model predict."""

from __future__ import annotations

import pytest
import torch

from crystalgnn.training.losses import LOSSES, check_loss, masked_regression_loss


@pytest.mark.parametrize(
    ("name", "expected"),
    [("mse", (0.25 + 4.0 + 0.0) / 3), ("l1", (0.5 + 2.0 + 0.0) / 3), ("huber", (0.125 + 1.5 + 0.0) / 3)],
)
def test_values_over_labelled_entries(name: str, expected: float) -> None:
    pred = torch.tensor([0.5, 2.0, 7.0, 1.0])
    y = torch.tensor([0.0, 0.0, float("nan"), 1.0])
    loss, n = masked_regression_loss(pred, y, name)
    assert int(n) == 3
    assert float(loss) == pytest.approx(expected)


def test_l1_fits_the_median_and_mse_the_mean() -> None:
    """One free constant fitted to labels {-3, -3, 2, 2, 2} (+/- moments): mean 0, median 2."""
    y = torch.tensor([-3.0, -3.0, 2.0, 2.0, 2.0])
    fitted = {}
    for name in ("mse", "l1"):
        c = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([c], lr=0.05)
        for _ in range(2000):
            loss, _ = masked_regression_loss(c.expand(5), y, name)
            opt.zero_grad()
            loss.backward()
            opt.step()
        fitted[name] = float(c)
    assert fitted["mse"] == pytest.approx(0.0, abs=1e-3)
    assert fitted["l1"] == pytest.approx(2.0, abs=0.06)


def test_unknown_loss() -> None:
    assert set(LOSSES) == {"mse", "l1", "huber"}
    with pytest.raises(ValueError, match="unknown loss 'mae'"):
        check_loss("mae")
    with pytest.raises(ValueError, match="unknown loss"):
        masked_regression_loss(torch.zeros(2), torch.zeros(2), "mae")
