"""The model registry: every architecture by name, listed explicitly (importing it registers
nothing as a side effect and nothing imports it back).

An architecture is a config dataclass (:class:`~crystalgnn.models.base.ModelConfig`), an encoder
(:class:`~crystalgnn.models.base.Encoder`) and its published graph-level readout
(:class:`~crystalgnn.models.base.GraphReadout`). :func:`build_model` composes an encoder with
that readout (``readout="graph"``) or with an architecture-independent one
(``"site"``, ``"site-linear"``, :mod:`crystalgnn.models.readouts`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from torch import Tensor

from crystalgnn.models.alignn import ALIGNNConfig, ALIGNNEncoder, ALIGNNReadout
from crystalgnn.models.base import CrystalModel, Encoder, GraphReadout, TaskKind
from crystalgnn.models.cgcnn import CGCNNConfig, CGCNNEncoder, CGCNNReadout
from crystalgnn.models.icgcnn import ICGCNNConfig, ICGCNNEncoder, ICGCNNReadout
from crystalgnn.models.megnet import MEGNetConfig, MEGNetEncoder, MEGNetReadout
from crystalgnn.models.neighbour_mlp import NeighbourListEncoder, NeighbourMLPConfig, NeighbourMLPGraphReadout
from crystalgnn.models.ogcnn import OGCNNConfig, OGCNNEncoder, OGCNNReadout
from crystalgnn.models.readouts import READOUT_KINDS, site_readout
from crystalgnn.models.schnet import SchNetConfig, SchNetEncoder, SchNetReadout
from crystalgnn.models.soap_mlp import SoapMLPConfig, SoapMLPReadout, SoapScaler


def _reset_cgcnn(model: CrystalModel) -> None:
    """CGCNN's initialisation in the reference order (embedding, head, convolutions, hidden
    layers), so a seed gives the same initial weights as before the encoder/readout split.
    """
    enc = cast(CGCNNEncoder, model.encoder)
    mlp = cast(CGCNNReadout, model.readout).mlp
    for m in (enc.embedding, mlp.conv_to_fc, mlp.fc_out, *enc.convs, *mlp.fcs):
        m.reset_parameters()


@dataclass(frozen=True)
class ModelSpec:
    """One registered architecture.

    Attributes:
        name: registry name.
        config_cls: its config dataclass.
        encoder_cls: its encoder.
        readout_cls: its published graph-level readout.
        description: one line for listings.
        site_readouts: whether per-atom readouts apply (an encoder with per-atom features).
        site_only: only the per-atom readouts apply (``readout_cls`` raises; not a graph-level
            model of the benchmark).
        aliases: former option names -> current ones (old configs and checkpoints still load).
        reset: initialises a freshly built model with the published readout (default: encoder,
            then readout).
    """

    name: str
    config_cls: type
    encoder_cls: type[Encoder]
    readout_cls: type[GraphReadout]
    description: str
    site_readouts: bool = True
    site_only: bool = False
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)
    reset: Callable[[CrystalModel], None] | None = None


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "cgcnn", CGCNNConfig, CGCNNEncoder, CGCNNReadout,
            "Crystal Graph Convolutional Neural Network (Xie & Grossman 2018)",
            aliases={"max_num_nbr": "max_neighbors"}, reset=_reset_cgcnn,
        ),
        ModelSpec(
            "megnet", MEGNetConfig, MEGNetEncoder, MEGNetReadout,
            "MatErials Graph Network with global state (Chen et al. 2019)",
        ),
        ModelSpec(
            "schnet", SchNetConfig, SchNetEncoder, SchNetReadout,
            "SchNet continuous-filter convolutions on periodic edges (Schütt et al. 2018)",
            aliases={"cutoff": "radius", "readout": "pooling"},
        ),
        ModelSpec(
            "alignn", ALIGNNConfig, ALIGNNEncoder, ALIGNNReadout,
            "Atomistic Line Graph Neural Network (Choudhary & DeCost 2021)",
        ),
        ModelSpec(
            "icgcnn", ICGCNNConfig, ICGCNNEncoder, ICGCNNReadout,
            "improved CGCNN: Voronoi neighbours, three-body terms, bond updates (Park & Wolverton 2020)",
        ),
        ModelSpec(
            "ogcnn", OGCNNConfig, OGCNNEncoder, OGCNNReadout,
            "orbital graph CNN: orbital field matrix atom features + CGCNN (Karamad et al. 2020)",
        ),
        ModelSpec(
            "soap-mlp", SoapMLPConfig, SoapScaler, SoapMLPReadout,
            "SOAP vector (DScribe, inner average) -> CGCNN's post-pooling network",
            site_readouts=False,
        ),
        ModelSpec(
            "neighbour-mlp", NeighbourMLPConfig, NeighbourListEncoder, NeighbourMLPGraphReadout,
            "per-site baseline: MLP on each atom's k nearest neighbours (features, distances), no message passing",
            site_only=True,
        ),
    )
}  # fmt: skip

#: ``model_options`` keys that configure a per-site or site-linear readout, not the encoder
READOUT_OPTIONS = ("site_head_hidden", "site_head_layers", "site_reduce")


def model_names() -> list[str]:
    return sorted(REGISTRY)


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def split_options(options: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``model_options`` -> (encoder/architecture options, readout options of :data:`READOUT_OPTIONS`)."""
    opts = dict(options or {})
    readout = {k: opts.pop(k) for k in READOUT_OPTIONS if k in opts}
    return opts, readout


def make_config(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """The model's config dataclass with published defaults, updated by ``overrides``.

    Former option names (e.g. CGCNN's ``max_num_nbr``) are accepted; unknown keys raise
    ``KeyError`` naming them (typos in a YAML file must not pass silently).
    """
    spec = get_spec(name)
    overrides = {spec.aliases.get(k, k): v for k, v in dict(overrides or {}).items()}
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise KeyError(f"unknown {name} option(s) {unknown}; valid: {sorted(fields)}")
    return spec.config_cls(**overrides)


def build_model(
    name: str,
    config: Any,
    atom_table: Tensor,
    *,
    out_dim: int,
    task: TaskKind = "regression",
    readout: str = "graph",
    readout_options: dict[str, Any] | None = None,
) -> CrystalModel:
    """An encoder of architecture ``name`` with a readout.

    Args:
        name: registry name.
        config: the architecture's config (dataclass, or dict of its fields).
        atom_table: (max_Z + 1, F) atom-feature table.
        out_dim: outputs (per structure, or per site for ``readout="site"``); classes for
            classification.
        task: ``"regression"`` or ``"classification"``.
        readout: ``"graph"`` (the architecture's published pooling and head), ``"site"`` (one
            prediction per atom) or ``"site-linear"`` (per-atom contributions, pooled).
        readout_options: for site readouts, ``site_head_hidden`` (default: the config's
            ``h_fea_len`` or 128), ``site_head_layers`` (default: its ``n_h`` or 1) and
            ``site_reduce`` (``mean``, default, or ``sum``).
    """
    spec = get_spec(name)
    if isinstance(config, dict):
        config = make_config(name, config)
    encoder = spec.encoder_cls(config, atom_table, reset=False)
    if readout == "graph":
        head: Any = spec.readout_cls(config, encoder.out_channels, out_dim=out_dim, task=task, reset=False)
    elif readout in READOUT_KINDS:
        if not spec.site_readouts:
            raise ValueError(f"model {name!r} has no per-atom features: only --readout graph applies")
        ro = dict(readout_options or {})
        encoder.prune_for_site_readout()
        head = site_readout(
            readout,
            encoder.out_channels,
            out_dim=out_dim,
            hidden=int(ro.get("site_head_hidden", getattr(config, "h_fea_len", 128))),
            n_h=int(ro.get("site_head_layers", getattr(config, "n_h", 1))),
            reduce=str(ro.get("site_reduce", "mean")),
        )
    else:
        raise ValueError(f"unknown readout {readout!r}; choose one of {', '.join(READOUT_KINDS)}")
    model = CrystalModel(name, encoder, head, task=task)
    if spec.reset is not None and readout == "graph":
        spec.reset(model)
    else:
        model.reset_parameters()
    return model
