r"""Crystal graph augmentations for self-supervised pretraining (Crystal Twins).

The three augmentations of Crystal Twins (Magar, Wang & Barati Farimani, npj Comput. Mater. 8,
231, 2022, Sec. "Augmentations", after AugLiChem, Magar et al. 2022), applied to a batch of
crystal graphs (:mod:`crystalgnn.graphs.crystal_graph` fields):

- **position noise**: every atom moves by a random vector of length at most ``noise`` (Å),
  uniformly distributed in direction and length; the bond vectors and lengths follow,

  .. math:: r_i' = r_i + \delta_i,\quad \|\delta_i\| \le \epsilon, \qquad
            d_{ij}' = r_j' + s_{ij} L - r_i' = d_{ij} + \delta_j - \delta_i

  (the neighbour list is kept: a displacement of a few hundredths of an Å moves no bond
  across the cutoff that matters);
- **atom masking**: a fraction ``atom_mask`` of the atoms is marked (``atom_mask`` field); the
  pretraining module replaces their input features with zeros, the mask token
  (:func:`masked_atom_inputs`); elements and positions are kept, so the composition is too;
- **edge dropping**: each bond is removed with probability ``edge_drop`` (every per-bond field
  together).

Each view draws its own random numbers from a ``torch.Generator``; the graph it came from is not
modified.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

EDGE_FIELDS = ("edge_index", "edge_shift", "edge_vec", "edge_dist")


@dataclass(frozen=True)
class Augmentation:
    """How strongly a view is perturbed (defaults: the Crystal Twins / AugLiChem settings).

    Args:
        noise: largest displacement of an atom, Å (0.05).
        atom_mask: fraction of atoms whose input features are masked (0.10).
        edge_drop: probability that a bond is dropped (0.10).
    """

    noise: float = 0.05
    atom_mask: float = 0.10
    edge_drop: float = 0.10

    def __post_init__(self) -> None:
        if not self.noise >= 0:
            raise ValueError(f"position noise must be >= 0 Å (got {self.noise})")
        for name in ("atom_mask", "edge_drop"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be a fraction in [0, 1) (got {v})")

    def __call__(self, graph: Any, generator: torch.Generator | None = None) -> Any:
        """One augmented view of ``graph`` (a ``Data`` or a ``Batch``): noise, masking, dropping."""
        view = perturb_positions(graph, self.noise, generator)
        view = mask_atoms(view, self.atom_mask, generator)
        return drop_edges(view, self.edge_drop, generator)


def _copy(graph: Any) -> Any:
    """A shallow copy: new field mapping, the same tensors (they are replaced, never changed)."""
    return copy.copy(graph)


def perturb_positions(graph: Any, bound: float, generator: torch.Generator | None = None) -> Any:
    """Move every atom by a random vector of length <= ``bound`` Å; bond vectors and lengths follow."""
    view = _copy(graph)
    if bound <= 0:
        return view
    n = graph.pos.shape[0]
    direction = torch.randn(n, 3, generator=generator, dtype=graph.pos.dtype)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
    # r = bound * u^(1/3) would fill the ball uniformly; uniform length keeps small moves common
    length = bound * torch.rand(n, 1, generator=generator, dtype=graph.pos.dtype)
    delta = direction * length
    view.pos = graph.pos + delta
    j, i = graph.edge_index  # messages flow j -> i: edge_vec = r_j + shift @ L - r_i
    view.edge_vec = graph.edge_vec + delta.index_select(0, j) - delta.index_select(0, i)
    view.edge_dist = view.edge_vec.norm(dim=1)
    return view


def mask_atoms(graph: Any, fraction: float, generator: torch.Generator | None = None) -> Any:
    """Mark a random ``fraction`` of the atoms (at least one when ``fraction > 0``) in a boolean
    ``atom_mask`` field; elements, positions and bonds are unchanged.
    """
    view = _copy(graph)
    n = graph.z.shape[0]
    mask = torch.zeros(n, dtype=torch.bool)
    k = round(fraction * n)
    if fraction > 0 and n:
        k = max(k, 1)
    if k:
        mask[torch.randperm(n, generator=generator)[:k]] = True
    view.atom_mask = mask
    return view


def drop_edges(graph: Any, p: float, generator: torch.Generator | None = None) -> Any:
    """Remove each bond with probability ``p`` (all per-bond fields together)."""
    view = _copy(graph)
    if p <= 0:
        return view
    n_edges = graph.edge_index.shape[1]
    keep = torch.rand(n_edges, generator=generator) >= p
    for name in EDGE_FIELDS:
        value = getattr(graph, name, None)
        if value is None:
            continue
        setattr(view, name, value[:, keep] if name == "edge_index" else value[keep])
    return view


def _mask_target(encoder: nn.Module) -> nn.Module:
    """The module whose output is an encoder's per-atom input: an ``nn.Embedding`` of the atomic
    number (MEGNet, SchNet) or the fixed atom-feature table (CGCNN, ALIGNN).
    """
    emb = getattr(encoder, "embedding", None)
    if isinstance(emb, nn.Embedding):
        return emb
    return encoder.atom_features  # type: ignore[return-value]


@contextmanager
def masked_atom_inputs(encoder: nn.Module, mask: Tensor | None) -> Iterator[None]:
    """Within the block, the input features of the atoms where ``mask`` is true are zeros (the
    mask token) in ``encoder``'s forward pass (a forward hook; nothing is changed for ``None``).
    """
    if mask is None or not bool(mask.any()):
        yield
        return

    def hook(module: nn.Module, args: Any, out: Tensor) -> Tensor:
        if out.shape[0] != mask.shape[0]:
            raise RuntimeError("atom masking: the encoder's atom inputs do not match the batch's atoms")
        return out.masked_fill(mask.to(out.device).unsqueeze(-1), 0.0)

    handle = _mask_target(encoder).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


__all__ = ["Augmentation", "drop_edges", "mask_atoms", "masked_atom_inputs", "perturb_positions"]
