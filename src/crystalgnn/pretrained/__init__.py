"""Pretrained models shipped with the package, and the bundled-example prediction job.

Each shipped model is ``<name>.ckpt`` (weights + everything ``predict`` needs, no optimiser
state), ``<name>.json`` (target, unit, data, split, test metrics) and ``<name>.md`` (the model
card: the exact training command, data, split and test metrics). They are made from finished
``crystalgnn train`` runs with :func:`ship_run`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

PRETRAINED_DIR = Path(__file__).resolve().parent


def list_shipped_models() -> list[dict[str, str]]:
    """Name, target, unit, data and headline test metric of each shipped model."""
    rows = []
    for card in sorted(PRETRAINED_DIR.glob("*.json")):
        meta = json.loads(card.read_text())
        if not (PRETRAINED_DIR / f"{card.stem}.ckpt").is_file():
            continue
        rows.append(
            {
                "name": card.stem,
                "target": meta["target"],
                "unit": meta.get("unit", ""),
                "data": meta.get("data", ""),
                "metric": meta.get("metric", ""),
                "in_demo": meta.get("in_demo", True),
            }
        )
    return rows


def ship_run(
    run_dir: str | Path, name: str, *, command: str, description: str, data: str, in_demo: bool = True
) -> Path:
    """Copy a finished run's best model into the package with its card (weights only).

    ``in_demo=False`` keeps a model whose domain excludes the bundled cathodes (e.g. the
    perovskite model) out of ``crystalgnn demo``.
    """
    run_dir = Path(run_dir)
    ckpt = torch.load(str(run_dir / "checkpoints" / "best.ckpt"), map_location="cpu", weights_only=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    slim = {
        k: ckpt[k]
        for k in ("state_dict", "hyper_parameters", "crystalgnn_format_version", "crystalgnn_version")
        if k in ckpt
    }
    out = PRETRAINED_DIR / f"{name}.ckpt"
    torch.save(slim, str(out))
    test = metrics["test"]
    target = metrics["targets"][0]
    unit = metrics["units"].get(target, "")
    if metrics["task"] == "classification":
        headline = f"ROC-AUC {test['roc_auc']:.3f}, accuracy {test['accuracy']:.3f}"
    else:
        headline = f"MAE {test['mae']:.4g} {unit}, R² {test['r2']:.3f}"
    meta = {
        "target": target,
        "unit": unit,
        "data": data,
        "metric": headline,
        "metrics": metrics,
        "command": command,
        "in_demo": in_demo,
    }
    (PRETRAINED_DIR / f"{name}.json").write_text(json.dumps(meta, indent=2))
    split = json.loads((run_dir / "split.json").read_text())
    card = f"""# {name}

{description}

| | |
|---|---|
| model | {metrics["model"]} ({metrics["n_parameters"]:,} parameters, checkpoint {out.stat().st_size:,} bytes) |
| target | `{target}` ({unit or "unitless"}), {metrics["task"]} |
| data | {data} |
| split | random, seed {metrics["seed"]}: {len(split["train"])} train / {len(split["val"])} validation / {len(split["test"])} test structures (ids in the run folder's `split.json`) |
| test metrics | {_format_metrics(test)} |
| training time | {metrics["train_time_s"]:.0f} s ({metrics["epochs_run"]} epochs, {metrics["time_per_epoch_s"]:.2f} s/epoch) on a 2-core x86_64 CPU (torch threads as in the command) |

Training command (run from the repository root, data from `../shared/data`):

```
{command}
```

Predict: `crystalgnn predict {name} structure.cif`.
"""
    (PRETRAINED_DIR / f"{name}.md").write_text(card)
    return out


def _format_metrics(m: dict[str, Any]) -> str:
    names = {
        "mae": "MAE",
        "rmse": "RMSE",
        "r2": "R²",
        "roc_auc": "ROC-AUC",
        "accuracy": "accuracy",
        "precision": "precision",
        "recall": "recall",
        "f1": "F1",
    }
    parts = [f"{label} {m[k]:.4g}" for k, label in names.items() if k in m]
    return ", ".join(parts) + f" (n = {m.get('n', '?')})"


def predict_examples(show_progress: bool = False) -> Any:
    """The main job: every shipped model on the bundled cathode structures, as a table."""
    import pandas as pd

    from crystalgnn.data.examples import examples_dir
    from crystalgnn.data.readers import load_source
    from crystalgnn.graphs.builder import build_graph_list
    from crystalgnn.prediction import Predictions, Predictor

    ds = load_source(str(examples_dir()), show_progress=show_progress)
    graphs, _ = build_graph_list(ds.structures, show_progress=show_progress)
    df = pd.DataFrame(
        {
            "structure": ds.ids,
            "formula": [s.composition.reduced_formula for s in ds.structures],
            "atoms": [len(s) for s in ds.structures],
            "edges": [g.num_edges if g is not None else 0 for g in graphs],
        }
    )
    for row in list_shipped_models():
        if not row["in_demo"]:  # e.g. the perovskite model: outside its domain on these cells
            continue
        pred = Predictor.load(row["name"])
        res = pred.predict(ds, show_progress=show_progress)
        assert isinstance(res, Predictions)  # the shipped models are all graph-level
        got = dict(zip(res.ids, res.values if res.values.ndim == 1 else res.values[:, 0], strict=True))
        values = [got.get(i, float("nan")) for i in ds.ids]
        unit = row["unit"]
        if unit.startswith("log10(") and unit.endswith(")"):  # show moduli in GPa, not log10(GPa)
            values, unit = [10.0**v for v in values], unit[6:-1]
        name = row["name"].removeprefix("log10-").removeprefix("mp-")
        df[f"{name} ({'P(metal)' if pred.kind == 'classification' else unit})"] = values
    return df
