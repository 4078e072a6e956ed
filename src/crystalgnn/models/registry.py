"""The model registry: every model behind one small interface.

A model class takes ``(config, atom_table, *, out_dim, task)``, its config dataclass has
``graph_config()`` (which graph the model needs) and ``to_dict()``, and the model has
``forward(batch) -> (B, out_dim)`` and ``node_embeddings(batch) -> (|V|, F)`` (per-atom outputs
before pooling, for per-site heads and explanations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model."""

    name: str
    model_cls: type[nn.Module]
    config_cls: type
    description: str


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, config_cls: type, description: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding a model to the registry under ``name``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        _REGISTRY[name] = ModelSpec(name, cls, config_cls, description)
        return cls

    return deco


def _load_builtin() -> None:
    # importing the modules registers them
    from crystalgnn.models import cgcnn  # noqa: F401

    for mod in ("megnet", "schnet", "alignn"):
        try:
            __import__(f"crystalgnn.models.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"crystalgnn.models.{mod}":
                raise


def model_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def make_config(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """The model's config dataclass with published defaults, updated by ``overrides``.

    Raises ``KeyError`` naming unknown keys (typos in a YAML file must not pass silently).
    """
    spec = get_spec(name)
    overrides = dict(overrides or {})
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise KeyError(f"unknown {name} option(s) {unknown}; valid: {sorted(fields)}")
    return spec.config_cls(**overrides)


def build_model(name: str, config: Any, atom_table: Tensor, *, out_dim: int, task: str) -> nn.Module:
    """Instantiate a registered model."""
    spec = get_spec(name)
    if isinstance(config, dict):
        config = make_config(name, config)
    return spec.model_cls(config, atom_table, out_dim=out_dim, task=task)
