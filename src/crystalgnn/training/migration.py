"""Checkpoint format versions and the migration of older layouts to the current one.

Format 2 (this release): hyper-parameters ``model_name, model_config, graph_config, target,
readout, readout_options, optim, featurizer, seed, extra`` and weights ``model.encoder.*`` /
``model.readout.*``. Format 1 (before the encoder/readout split) had graph-level checkpoints with
the architecture's head layers directly under ``model.`` and per-site checkpoints
(``site_target``) with a whole backbone under ``model.backbone.`` plus ``model.head.``;
:func:`migrate` maps both to format 2, so shipped models and users' runs keep loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crystalgnn._version import __version__
from crystalgnn.models.registry import get_spec

#: the checkpoint layout this release writes (1: before the encoder/readout split)
FORMAT_VERSION = 2


class CheckpointError(ValueError):
    """A file that is not a usable crystalgnn checkpoint (the message names the file and why)."""


def format_version(ckpt: dict[str, Any]) -> int:
    """The layout version a checkpoint dict declares (1 when it declares none)."""
    fmt = ckpt.get("crystalgnn_format_version", ckpt.get("crystalgnn_site_format_version", 1))
    try:
        return int(fmt)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint declares an unreadable format version {fmt!r}") from exc


def check_format(ckpt: dict[str, Any], source: str | Path | None = None) -> int:
    """The declared format version, refused (one line naming ``source``) when this release cannot read it."""
    where = f"{source}: " if source is not None else ""
    try:
        fmt = format_version(ckpt)
    except CheckpointError as exc:
        raise CheckpointError(f"{where}{exc}") from exc
    if fmt > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}checkpoint format {fmt} is newer than this crystalgnn "
            f"({__version__} reads formats up to {FORMAT_VERSION}): upgrade crystalgnn to load it"
        )
    if fmt < 1:
        raise CheckpointError(f"{where}checkpoint declares format {fmt}, which no crystalgnn release wrote")
    return fmt


def state_mismatch(expected: Mapping[str, Any], state: Mapping[str, Any]) -> str | None:
    """What differs between the weights a model expects (name -> shape) and ``state`` (name ->
    tensor): missing or unexpected names, then shapes; one line, or None when they fit.
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})")
        if unexpected:
            more = " ..." if len(unexpected) > 3 else ""
            parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}{more})")
        return "weights " + "; ".join(parts)
    wrong = [k for k in expected if tuple(state[k].shape) != tuple(expected[k])]
    if wrong:
        k = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        return f"{k} has shape {tuple(state[k].shape)} in the file, the settings give {tuple(expected[k])}{more}"
    return None


#: format-1 top-level attributes that belonged to an architecture's graph readout -> their new place
_V1_READOUT = {
    "cgcnn": {"conv_to_fc": "mlp.conv_to_fc", "fcs": "mlp.fcs", "fc_out": "mlp.fc_out"},
    "megnet": {"atom_set2set": "atom_set2set", "bond_set2set": "bond_set2set", "readout": "mlp", "fc_out": "fc_out"},
    "schnet": {"lin1": "lin1", "lin2": "lin2"},
    "alignn": {"fc": "fc"},
    "soap-mlp": {"conv_to_fc": "mlp.conv_to_fc", "fcs": "mlp.fcs", "fc_out": "mlp.fc_out"},
}
#: format-1 encoder entries that were renamed
_V1_ENCODER = {
    "megnet": {"centres": "bond_basis.centres"},
    "schnet": {"distance_expansion.offset": "distance_expansion.centres"},
}
_V1_SITE_HEAD = {"fc_in": "mlp.conv_to_fc", "fcs": "mlp.fcs", "fc_out": "mlp.fc_out"}


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


def _dropped_in_v2(model: str, config: dict[str, Any], readout: str) -> tuple[str, ...]:
    """Format-1 weights of layers format 2 no longer builds (their outputs were never read)."""
    cfg = get_spec(model).config_cls(**config)
    if model == "alignn":
        return (f"model.encoder.alignn_layers.{cfg.alignn_layers - 1}.edge_update.bn_edges.",
                f"model.encoder.gcn_layers.{cfg.gcn_layers - 1}.bn_edges.")  # fmt: skip
    if model == "megnet" and readout != "graph":
        return (f"model.encoder.blocks.{cfg.nblocks - 1}.phi_u.",)
    return ()


def migrate(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint dict in this release's format (a new dict; the input is not modified).

    Raises:
        CheckpointError: a format newer than this release, or a layout it cannot read.
    """
    fmt = format_version(ckpt)
    if fmt > FORMAT_VERSION or fmt < 1:
        check_format(ckpt)
    if fmt == FORMAT_VERSION:
        return dict(ckpt)
    hp = dict(ckpt["hyper_parameters"])
    model = str(hp.get("model_name", "cgcnn"))
    try:
        spec = get_spec(model)
    except KeyError as exc:
        raise CheckpointError(str(exc).strip("'\"")) from exc
    old_config: dict[str, Any] = dict(hp.get("model_config") or {})
    model_config = {spec.aliases.get(k, k): v for k, v in old_config.items()}
    state = ckpt["state_dict"]
    target: dict[str, Any]
    if "site_target" in hp:
        norm = hp.get("normalizer") or {"mean": 0.0, "std": 1.0}
        name = str(hp["site_target"])
        target = {"names": [name], "level": "site", "kind": "regression", "units": dict(hp.get("units") or {}),
                  "mean": [float(norm["mean"])], "std": [float(norm["std"])]}  # fmt: skip
        readout, readout_options = (
            "site",
            {
                "site_head_hidden": int(hp.get("head_hidden", 128)),
                "site_head_layers": int(hp.get("head_layers", 1)),
            },
        )
        new_state = {}
        for k, v in state.items():
            nk = _v1_site_key(model, k)
            if nk is not None:  # format 1 kept the per-site normaliser as 0-d tensors; now (1,)
                new_state[nk] = v.reshape(1) if k in ("y_mean", "y_std") else v
    else:
        targets = list(hp.get("targets") or [])
        norm = hp.get("normalizer") or {}
        target = {"names": targets, "level": "graph", "kind": str(hp.get("task", "regression")),
                  "units": dict(hp.get("units") or {}), "mean": list(norm.get("mean") or []),
                  "std": list(norm.get("std") or []), "n_classes": int(hp.get("n_classes", 2))}  # fmt: skip
        readout, readout_options = "graph", {}
        new_state = {v1_graph_key(model, k): v for k, v in state.items()}
    dropped = _dropped_in_v2(model, model_config, readout)
    new_state = {k: v for k, v in new_state.items() if not k.startswith(dropped)} if dropped else new_state
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
