"""The Lightning fit shared by every run: progress shown as people count epochs."""

from __future__ import annotations


def test_progress_bar_counts_epochs_from_one_with_the_total() -> None:
    from crystalgnn.training.loop import epoch_label

    assert epoch_label(0, 30) == "Epoch 1/30"
    assert epoch_label(29, 30) == "Epoch 30/30"
    assert epoch_label(4, -1) == "Epoch 5"  # --epochs -1 is refused; Lightning's "no limit"
