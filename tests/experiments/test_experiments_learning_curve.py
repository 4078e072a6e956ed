"""The learning curve (crystalgnn.experiments.learning_curve): nested training sets, resumable."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")


def test_learning_curve(table: Path, tmp_path: Path) -> None:
    from crystalgnn.experiments.learning_curve import (
        learning_curve_splits,
        run_learning_curve,
    )

    splits = learning_curve_splits(60, [10, 20, 40], 0)
    assert set(splits[10].train) <= set(splits[20].train) <= set(splits[40].train)
    assert all(np.array_equal(splits[10].test, s.test) for s in splits.values())

    out = tmp_path / "lc"
    res = run_learning_curve(
        str(table), "energy", ["mean", "per-element"], [12, 24, 48], out=out, repeats=2,
        show_progress=False, verbose=False,
    )  # fmt: skip
    df = pd.read_csv(out / "learning_curve.csv")
    assert len(df) == 2 * 3 * 2 and set(df["size"]) == {12, 24, 48}
    assert (df["n_train"] == df["size"]).all()
    assert (out / "learning_curve.png").is_file() and (out / "learning_curve_summary.csv").is_file()
    assert res.n_run == 12
    assert (
        run_learning_curve(
            str(table),
            "energy",
            ["mean", "per-element"],
            [12, 24, 48],
            out=out,
            repeats=2,
            show_progress=False,
            verbose=False,
        ).n_run
        == 0
    )
    with pytest.raises(ValueError, match="exceed"):
        learning_curve_splits(60, [100], 0)
