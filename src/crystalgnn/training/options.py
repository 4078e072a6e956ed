"""The vocabulary of :class:`~crystalgnn.training.config.TrainConfig`: the names each option
accepts and :func:`option`, the field helper that carries a field's help text and CLI flags.

Static on purpose: checking a value must not import torch (the registry of models is checked
against :data:`MODELS` by the tests).
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

# Names accepted by the options below (static: checking them must not import torch).
MODELS = ("cgcnn", "megnet", "schnet", "alignn", "soap-mlp", "neighbour-mlp", "icgcnn", "ogcnn")
TASKS = ("auto", "regression", "classification")
READOUTS = ("graph", "site", "site-linear")
LOSSES = ("mse", "l1", "huber")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("multistep", "cosine", "onecycle", "none")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")
END_MEMBERS = ("charged", "discharged")


def option(
    default: Any = None, help: str = "", *, flags: tuple[str, ...] = (), factory: Any = None, **meta: Any
) -> Any:
    """A :class:`TrainConfig` field with its help text and CLI flag names.

    ``flags``: the option names (default ``--field-name``); a boolean field that defaults to
    ``True`` gets a ``--no-...`` switch. ``meta`` may hold ``cli=False`` (no flag),
    ``metavar`` and ``choices`` (shown in the help, checked by :meth:`TrainConfig.validate`).
    """
    md = {"help": help, "flags": tuple(flags), **meta}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)
