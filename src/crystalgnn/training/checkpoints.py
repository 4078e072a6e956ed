"""Checkpoints: reading them safely, the format version, and migration of older layouts.

Format 2 (this release) stores a :class:`~crystalgnn.training.task.CrystalTask`: hyper-parameters
``model_name, model_config, graph_config, target, readout, readout_options, optim, featurizer,
seed, extra`` and weights ``model.encoder.*`` / ``model.readout.*``. Format 1 (releases before the
encoder/readout split) had graph-level checkpoints with the architecture's head layers directly
under ``model.`` and per-site checkpoints (``site_target``) with a whole backbone under
``model.backbone.`` plus ``model.head.``; :func:`migrate` maps both to format 2, so shipped models
and users' runs keep loading. Files are read with ``torch.load(weights_only=True)``: never an
arbitrary pickle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from crystalgnn._version import __version__
from crystalgnn.models.registry import get_spec
from crystalgnn.training.task import FORMAT_VERSION, CrystalTask

#: format-1 top-level attributes that belonged to an architecture's graph readout -> their new place
_V1_READOUT = {
    "cgcnn": {"conv_to_fc": "mlp.conv_to_fc", "fcs": "mlp.fcs", "fc_out": "mlp.fc_out"},
    "megnet": {"atom_set2set": "atom_set2set", "bond_set2set": "bond_set2set", "readout": "mlp", "fc_out": "fc_out"},
    "schnet": {"lin1": "lin1", "lin2": "lin2"},
    "alignn": {"fc": "fc"},
    "soap-mlp": {"conv_to_fc": "mlp.conv_to_fc", "fcs": "mlp.fcs", "fc_out": "mlp.fc_out"},
}
#: format-1 encoder entries that were renamed
_V1_ENCODER = {"megnet": {"centres": "bond_basis.centres"}, "schnet": {"distance_expansion.offset": "distance_expansion.centres"}}
_V1_SITE_HEAD = {"fc_in": "mlp.conv_to_fc", "fcs": "mlp.fcs", "fc_out": "mlp.fc_out"}


class CheckpointError(ValueError):
    """A file that is not a usable crystalgnn checkpoint (the message names the file and why)."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load`` restricted to tensors and plain containers, checked for a crystalgnn layout."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable crystalgnn checkpoint ({msg})") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path}: not a crystalgnn checkpoint (no state_dict and hyper_parameters)")
    return ckpt


def format_version(ckpt: dict[str, Any]) -> int:
    fmt = ckpt.get("crystalgnn_format_version", ckpt.get("crystalgnn_site_format_version", 1))
    return int(fmt)


def _rename(key: str, table: dict[str, str]) -> str | None:
    for old, new in table.items():
        if key == old or key.startswith(old + "."):
            return new + key[len(old) :]
    return None


def v1_graph_key(model: str, key: str) -> str:
    if not key.startswith("model."):
        return key
    rest = key[len("model.") :]
    head = _rename(rest, _V1_READOUT.get(model, {}))
    if head is not None:
        return "model.readout." + head
    return "model.encoder." + (_rename(rest, _V1_ENCODER.get(model, {})) or rest)


def _v1_site_key(model: str, key: str) -> str | None:
    if key.startswith("model.head."):
        return "model.readout." + (_rename(key[len("model.head.") :], _V1_SITE_HEAD) or key[len("model.head.") :])
    if key.startswith("model.backbone."):
        rest = key[len("model.backbone.") :]
        if _rename(rest, _V1_READOUT.get(model, {})) is not None:
            return None  # the backbone's unused (frozen) graph head
        return "model.encoder." + (_rename(rest, _V1_ENCODER.get(model, {})) or rest)
    return key


def migrate(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint dict in this release's format (a new dict; the input is not modified).

    Raises:
        CheckpointError: a format newer than this release, or a layout it cannot read.
    """
    fmt = format_version(ckpt)
    if fmt > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format {fmt} is newer than this crystalgnn ({__version__} reads formats up to {FORMAT_VERSION})"
        )
    if fmt == FORMAT_VERSION:
        return dict(ckpt)
    hp = dict(ckpt["hyper_parameters"])
    model = str(hp.get("model_name", "cgcnn"))
    try:
        spec = get_spec(model)
    except KeyError as exc:
        raise CheckpointError(str(exc).strip("'\"")) from exc
    model_config = {spec.aliases.get(k, k): v for k, v in dict(hp.get("model_config") or {}).items()}
    state = ckpt["state_dict"]
    if "site_target" in hp:
        norm = hp.get("normalizer") or {"mean": 0.0, "std": 1.0}
        name = str(hp["site_target"])
        target = {"names": [name], "level": "site", "kind": "regression", "units": dict(hp.get("units") or {}),
                  "mean": [float(norm["mean"])], "std": [float(norm["std"])]}  # fmt: skip
        readout, readout_options = "site", {
            "site_head_hidden": int(hp.get("head_hidden", 128)),
            "site_head_layers": int(hp.get("head_layers", 1)),
        }
        new_state = {}
        for k, v in state.items():
            nk = _v1_site_key(model, k)
            if nk is not None:
                new_state[nk] = v
    else:
        targets = list(hp.get("targets") or [])
        norm = hp.get("normalizer") or {}
        target = {"names": targets, "level": "graph", "kind": str(hp.get("task", "regression")),
                  "units": dict(hp.get("units") or {}), "mean": list(norm.get("mean") or []),
                  "std": list(norm.get("std") or []), "n_classes": int(hp.get("n_classes", 2))}  # fmt: skip
        readout, readout_options = "graph", {}
        new_state = {v1_graph_key(model, k): v for k, v in state.items()}
    new_hp = {
        "model_name": model,
        "model_config": model_config,
        "graph_config": dict(hp.get("graph_config") or {}),
        "target": target,
        "readout": readout,
        "readout_options": readout_options,
        "optim": hp.get("optim"),
        "featurizer": hp.get("featurizer", "cgcnn"),
        "seed": int(hp.get("seed", 0)),
        "extra": {**dict(hp.get("extra") or {}), "migrated_from_format": fmt},
    }
    out = {k: v for k, v in ckpt.items() if k not in ("crystalgnn_site_format_version",)}
    out.update({"hyper_parameters": new_hp, "state_dict": new_state, "crystalgnn_format_version": FORMAT_VERSION})
    return out


def task_from_checkpoint(ckpt: dict[str, Any], source: str | Path = "checkpoint") -> CrystalTask:
    """Rebuild a :class:`~crystalgnn.training.task.CrystalTask` (any format) with strict weight loading."""
    ckpt = migrate(ckpt)
    hp = dict(ckpt["hyper_parameters"])
    state = ckpt["state_dict"]
    table = state.get("model.encoder.atom_features.table")
    if table is None:
        raise CheckpointError(f"{source}: no atom-feature table in the weights (not a crystalgnn model)")
    try:
        task = CrystalTask(**hp, atom_table=table)
        task.load_state_dict(state, strict=True)
    except (TypeError, KeyError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:240] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{source}: weights or settings do not fit the model ({first})") from exc
    return task.eval()


def load_task(path: str | Path) -> CrystalTask:
    """:func:`read_checkpoint` then :func:`task_from_checkpoint`."""
    return task_from_checkpoint(read_checkpoint(path), source=path)


def save_task(task: CrystalTask, path: str | Path) -> Path:
    """Write the weights and hyper-parameters (no optimiser state) in this release's format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": task.state_dict(),
            "hyper_parameters": dict(task.hparams),
            "crystalgnn_format_version": FORMAT_VERSION,
            "crystalgnn_version": __version__,
        },
        str(path),
    )
    return path
