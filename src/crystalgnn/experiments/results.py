"""What a benchmark (or learning-curve) folder holds: its settings and its resumable results table.

``settings.json`` ties a folder to one set-up (:func:`folder_settings`, checked by
:func:`check_settings`: other settings in the same folder are refused); ``results.csv`` (or
``learning_curve.csv``) is a :class:`ResultStore`, one row per finished cell, written at once
after every cell so an interrupted benchmark loses nothing it finished.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crystalgnn.baselines.soap_mlp import THESIS_SOAP
from crystalgnn.data.splits import parse_ratios

#: regression metrics, classification metrics (result columns)
REGRESSION_METRICS = ("mae", "rmse", "r2")
CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall")
RESULT_COLUMNS = (
    "model", "target", "repeat", "task", "unit", "n_train", "n_val", "n_test",
    *REGRESSION_METRICS, *CLASSIFICATION_METRICS,
    "train_time_s", "feature_time_s", "n_parameters", "model_bytes", "run_dir", "finished",
)  # fmt: skip


class BenchmarkMismatch(RuntimeError):
    """The output folder holds a benchmark with other settings."""


class ResultStore:
    """``results.csv`` as rows keyed by ``key_fields``; every added row is written at once."""

    def __init__(self, path: str | Path, key_fields: Sequence[str], columns: Sequence[str]) -> None:
        import pandas as pd

        self.path = Path(path)
        self.key_fields = tuple(key_fields)
        self.columns = list(columns)
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file() and self.path.stat().st_size > 0:
            self.rows = pd.read_csv(self.path).to_dict("records")

    def key(self, row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(row[k]) for k in self.key_fields)

    def done(self, **key: Any) -> bool:
        want = tuple(str(key[k]) for k in self.key_fields)
        return any(self.key(r) == want for r in self.rows)

    def add(self, row: dict[str, Any]) -> None:
        k = self.key(row)
        self.rows = [r for r in self.rows if self.key(r) != k] + [row]
        self.save()

    def frame(self) -> Any:
        import pandas as pd

        cols = self.columns + [c for r in self.rows for c in r if c not in self.columns]
        return pd.DataFrame(self.rows, columns=list(dict.fromkeys(cols)))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".csv.tmp")
        self.frame().to_csv(tmp, index=False)
        os.replace(tmp, self.path)


def folder_settings(
    source: Any,
    split: str | Sequence[float],
    subset: int | None,
    subset_seed: int,
    epochs: int,
    train_options: dict[str, Any],
    *,
    kind: str | None = None,
    protocol: str | None = None,
) -> dict[str, Any]:
    """What a benchmark (or learning-curve) folder's ``settings.json`` ties it to, in the file's order."""
    settings: dict[str, Any] = {} if kind is None else {"kind": kind}
    settings["source"] = str(source) if isinstance(source, (str, Path)) else f"<{type(source).__name__}>"
    if protocol is not None:
        settings["protocol"] = protocol
    settings["split"] = ",".join(f"{x:g}" for x in parse_ratios(split))
    settings["subset"] = subset
    settings["subset_seed"] = subset_seed if subset else None
    settings["epochs"] = int(epochs)
    settings["train_options"] = train_options
    settings["soap"] = dataclasses.asdict(THESIS_SOAP)
    return settings


def check_settings(out: str | Path, settings: dict[str, Any]) -> None:
    """Write ``out/settings.json``, or raise :class:`BenchmarkMismatch` if it holds other settings."""
    out = Path(out)
    path = out / "settings.json"
    settings = json.loads(json.dumps(settings, default=str))
    if path.is_file():
        old = json.loads(path.read_text())
        diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if diff:
            raise BenchmarkMismatch(
                f"{out} holds a benchmark with other settings (differs in: {', '.join(diff)}); "
                "use another --out or delete the folder"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2))


__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "RESULT_COLUMNS",
    "BenchmarkMismatch",
    "ResultStore",
    "check_settings",
    "folder_settings",
]
