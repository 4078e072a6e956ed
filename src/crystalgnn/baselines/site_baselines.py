"""Per-site baselines every per-site model must beat.

* :class:`PerElementSiteBaseline`: each site gets the average label of its element over the
  training sites (elements never seen in training get the average over all training sites).
  Exact for any target that is a per-element constant.
* :class:`NeighbourMLPBaseline`: an MLP on a fixed-size description of each atom's
  neighbourhood, with no message passing: the atom's own feature vector (CGCNN's 92-dim table)
  concatenated with, for its ``k = 12`` nearest neighbours sorted by distance, the neighbour's
  feature vector and its Gaussian-expanded distance (the CGCNN graph's edges are reused;
  missing neighbours are zero-padded). Trained with a plain torch loop (Adam, masked MSE on
  normalised labels, best validation epoch kept).

Both are fitted on training structures only; NaN labels are ignored (never imputed).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crystalgnn.models.base import AtomFeatureTable
from crystalgnn.models.basis import GaussianBasis
from crystalgnn.training.losses import check_loss, masked_regression_loss


def _site_symbols(structure: Any) -> list[str]:
    return [site.specie.symbol for site in structure]


# --------------------------------------------------------------------------- per-element average
class PerElementSiteBaseline:
    """Predicts, for each site, the mean (or median) training label of its element.

    Args:
        statistic: ``"mean"`` (default) or ``"median"``.
    """

    def __init__(self, statistic: str = "mean") -> None:
        if statistic not in ("mean", "median"):
            raise ValueError("statistic must be 'mean' or 'median'")
        self.statistic = statistic
        self.values_: dict[str, float] = {}
        self.counts_: dict[str, int] = {}
        self.fallback_: float = float("nan")
        self.n_unseen_: int = 0

    def _stat(self, v: np.ndarray) -> float:
        return float(np.mean(v) if self.statistic == "mean" else np.median(v))

    def fit(self, structures: Sequence[Any], site_labels: Sequence[np.ndarray | None]) -> PerElementSiteBaseline:
        if len(structures) != len(site_labels):
            raise ValueError(f"{len(structures)} structures but {len(site_labels)} label arrays")
        by_el: dict[str, list[float]] = {}
        for s, y in zip(structures, site_labels, strict=True):
            if y is None:
                continue
            y = np.asarray(y, dtype=float)
            if len(y) != len(s):
                raise ValueError(f"{len(y)} labels for a structure of {len(s)} sites")
            for el, v in zip(_site_symbols(s), y, strict=True):
                if np.isfinite(v):
                    by_el.setdefault(el, []).append(float(v))
        if not by_el:
            raise ValueError("no labelled training site")
        self.values_ = {el: self._stat(np.array(v)) for el, v in by_el.items()}
        self.counts_ = {el: len(v) for el, v in by_el.items()}
        self.fallback_ = self._stat(np.concatenate([np.array(v) for v in by_el.values()]))
        return self

    def predict(self, structures: Sequence[Any]) -> list[np.ndarray]:
        """One array per structure; unseen elements get the overall training average (counted in
        ``n_unseen_``)."""
        if not self.values_:
            raise RuntimeError("fit() first")
        out, unseen = [], 0
        for s in structures:
            syms = _site_symbols(s)
            unseen += sum(el not in self.values_ for el in syms)
            out.append(np.array([self.values_.get(el, self.fallback_) for el in syms], dtype=float))
        self.n_unseen_ = unseen
        return out


# --------------------------------------------------------------------------- neighbour-list MLP
def neighbour_arrays(graph: Any, k: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(z (N,), neighbour z (N, k), distances (N, k), mask (N, k)) from a crystal graph's edges,
    the k nearest neighbours of each atom sorted by distance (stable: graph order breaks ties)."""
    z = graph.z.numpy()
    n = len(z)
    src, dst = graph.edge_index.numpy()
    dist = graph.edge_dist.numpy().astype(np.float64)
    order = np.lexsort((np.arange(len(dst)), dist, dst))
    src, dst, dist = src[order], dst[order], dist[order]
    counts = np.bincount(dst, minlength=n)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(dst)) - starts[dst]
    keep = rank < k
    nz = np.zeros((n, k), dtype=np.int64)
    nd = np.zeros((n, k), dtype=np.float32)
    mask = np.zeros((n, k), dtype=bool)
    nz[dst[keep], rank[keep]] = z[src[keep]]
    nd[dst[keep], rank[keep]] = dist[keep]
    mask[dst[keep], rank[keep]] = True
    return z.astype(np.int64), nz, nd, mask


class NeighbourMLP(nn.Module):
    """MLP on [x_i, (x_j1, u(d_i,j1)), ..., (x_jk, u(d_i,jk))] (no convolution).

    Shapes:
        z (B,), nz (B, k), nd (B, k), mask (B, k) -> (B,)
    """

    def __init__(
        self, atom_table: Tensor, k: int = 12, radius: float = 8.0, step: float = 0.2, hidden: int = 128, n_layers: int = 2
    ) -> None:
        super().__init__()
        self.k = k
        self.atom_features = AtomFeatureTable(atom_table)
        self.expansion = GaussianBasis.cgcnn(0.0, radius, step)
        fa, fe = self.atom_features.num_features, self.expansion.num_features
        dims = [fa + k * (fa + fe)] + [hidden] * n_layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.out = nn.Linear(hidden, 1)

    def features(self, z: Tensor, nz: Tensor, nd: Tensor, mask: Tensor) -> Tensor:
        own = self.atom_features(z)
        m = mask.unsqueeze(-1).float()
        nbr = torch.nan_to_num(self.atom_features(nz)) * m
        edge = self.expansion(nd) * m
        return torch.cat([own, torch.cat([nbr, edge], dim=-1).flatten(1)], dim=-1)

    def forward(self, z: Tensor, nz: Tensor, nd: Tensor, mask: Tensor) -> Tensor:
        h = self.features(z, nz, nd, mask)
        for layer in self.layers:
            h = F.softplus(layer(h))
        return self.out(h)[:, 0]


def _stack(graphs: Sequence[Any], k: int) -> tuple[Tensor, Tensor, Tensor, Tensor, list[int]]:
    parts = [neighbour_arrays(g, k) for g in graphs]
    sizes = [len(p[0]) for p in parts]
    z, nz, nd, mask = (torch.from_numpy(np.concatenate([p[i] for p in parts])) for i in range(4))
    return z, nz, nd, mask, sizes


def _flat_labels(site_labels: Sequence[np.ndarray | None], sizes: list[int]) -> Tensor:
    out = [
        np.full(n, np.nan, dtype=np.float32) if y is None else np.asarray(y, dtype=np.float32)
        for y, n in zip(site_labels, sizes, strict=True)
    ]
    return torch.from_numpy(np.concatenate(out)) if out else torch.zeros(0)


class NeighbourMLPBaseline:
    """Fits a :class:`NeighbourMLP` on the labelled sites of training graphs.

    Args:
        atom_table: atom-feature table (default: CGCNN's 92-dim table).
        k: neighbours per atom (12, as the CGCNN graph).
        radius, step: Gaussian distance expansion (CGCNN: 8 Å, 0.2 Å).
        hidden, n_layers: MLP size.
        epochs, lr, batch_size, weight_decay: the training loop.
        loss: ``mse`` | ``l1`` | ``huber`` (:mod:`crystalgnn.training.losses`).
        patience: stop after this many epochs without a better validation MAE (None: never).
        seed: torch seed for initialisation and shuffling.
    """

    def __init__(
        self,
        atom_table: Any = None,
        *,
        k: int = 12,
        radius: float = 8.0,
        step: float = 0.2,
        hidden: int = 128,
        n_layers: int = 2,
        epochs: int = 30,
        lr: float = 1e-3,
        batch_size: int = 512,
        weight_decay: float = 0.0,
        loss: str = "mse",
        patience: int | None = 10,
        seed: int = 0,
    ) -> None:
        if atom_table is None:
            from crystalgnn.graphs.atom_features import AtomFeaturizer

            atom_table = torch.tensor(AtomFeaturizer.cgcnn().matrix())
        self.atom_table = torch.as_tensor(atom_table, dtype=torch.float32)
        self.k, self.radius, self.step, self.hidden, self.n_layers = k, radius, step, hidden, n_layers
        self.epochs, self.lr, self.batch_size, self.weight_decay = epochs, lr, batch_size, weight_decay
        self.patience, self.seed, self.loss = patience, seed, check_loss(loss)
        self.model_: NeighbourMLP | None = None
        self.mean_, self.std_ = 0.0, 1.0
        self.history_: list[dict[str, float]] = []
        self.train_time_s_ = 0.0

    def fit(
        self,
        graphs: Sequence[Any],
        site_labels: Sequence[np.ndarray | None],
        val_graphs: Sequence[Any] | None = None,
        val_labels: Sequence[np.ndarray | None] | None = None,
    ) -> NeighbourMLPBaseline:
        t0 = time.perf_counter()
        torch.manual_seed(self.seed)
        z, nz, nd, mask, sizes = _stack(graphs, self.k)
        y = _flat_labels(site_labels, sizes)
        ok = torch.isfinite(y)
        if not ok.any():
            raise ValueError("no labelled training site")
        z, nz, nd, mask, y = z[ok], nz[ok], nd[ok], mask[ok], y[ok]
        self.mean_, self.std_ = float(y.mean()), float(y.std(unbiased=False)) or 1.0
        yn = (y - self.mean_) / self.std_
        val = None
        if val_graphs:
            vz, vnz, vnd, vmask, vsizes = _stack(val_graphs, self.k)
            vy = _flat_labels(val_labels or [None] * len(val_graphs), vsizes)
            vok = torch.isfinite(vy)
            if vok.any():
                val = (vz[vok], vnz[vok], vnd[vok], vmask[vok], vy[vok])
        model = NeighbourMLP(self.atom_table, self.k, self.radius, self.step, self.hidden, self.n_layers)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(self.seed)
        best, best_state, bad = float("inf"), copy.deepcopy(model.state_dict()), 0
        for epoch in range(self.epochs):
            model.train()
            perm = torch.randperm(len(yn), generator=gen)
            total = 0.0
            for s in range(0, len(perm), self.batch_size):
                b = perm[s : s + self.batch_size]
                loss, _ = masked_regression_loss(model(z[b], nz[b], nd[b], mask[b]), yn[b], self.loss)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            rec = {"epoch": epoch, "train_loss": total / len(yn)}
            if val is not None:
                pred = self._predict_flat(model, *val[:4])
                rec["val_mae"] = float((pred - val[4]).abs().mean())
                if rec["val_mae"] < best:
                    best, best_state, bad = rec["val_mae"], copy.deepcopy(model.state_dict()), 0
                else:
                    bad += 1
            self.history_.append(rec)
            if val is not None and self.patience is not None and bad >= self.patience:
                break
        if val is not None:
            model.load_state_dict(best_state)
        self.model_ = model.eval()
        self.train_time_s_ = time.perf_counter() - t0
        return self

    @torch.no_grad()
    def _predict_flat(self, model: NeighbourMLP, z: Tensor, nz: Tensor, nd: Tensor, mask: Tensor) -> Tensor:
        model.eval()
        out = [model(z[s : s + 4096], nz[s : s + 4096], nd[s : s + 4096], mask[s : s + 4096]) for s in range(0, len(z), 4096)]
        return (torch.cat(out) if out else torch.zeros(0)) * self.std_ + self.mean_

    def predict(self, graphs: Sequence[Any]) -> list[np.ndarray]:
        """One array per graph, in site order."""
        if self.model_ is None:
            raise RuntimeError("fit() first")
        if not graphs:
            return []
        z, nz, nd, mask, sizes = _stack(graphs, self.k)
        flat = self._predict_flat(self.model_, z, nz, nd, mask).numpy().astype(float)
        return list(np.split(flat, np.cumsum(sizes)[:-1]))

    def n_parameters(self) -> int:
        return 0 if self.model_ is None else sum(p.numel() for p in self.model_.parameters())


SITE_BASELINES = ("per-element", "neighbour-mlp")


def fit_predict_site_baseline(
    name: str,
    dataset: Any,
    site_target: str,
    split: Any,
    *,
    graphs: Sequence[Any] | None = None,
    **options: Any,
) -> tuple[list[np.ndarray], Any]:
    """Fit a per-site baseline on ``split.train`` and predict ``split.test`` (val if no test).

    ``graphs`` (one per dataset entry, same order) are needed by ``neighbour-mlp``; they are
    built with the default CGCNN graph config when omitted. Returns (predictions per test
    structure, the fitted baseline).
    """
    labels = dataset.site_targets[site_target]
    test = split.test if len(split.test) else split.val
    if name == "per-element":
        base = PerElementSiteBaseline(**options).fit(
            [dataset.structures[i] for i in split.train], [labels[i] for i in split.train]
        )
        return base.predict([dataset.structures[i] for i in test]), base
    if name == "neighbour-mlp":
        if graphs is None:
            from crystalgnn.graphs.builder import build_graph_list

            built, report = build_graph_list(dataset.structures, show_progress=False)
            if report.rejected:
                raise ValueError(f"{len(report.rejected)} structures have no graph; drop them first")
            graphs = built  # type: ignore[assignment]
        assert graphs is not None
        base = NeighbourMLPBaseline(**options).fit(
            [graphs[i] for i in split.train],
            [labels[i] for i in split.train],
            [graphs[i] for i in split.val],
            [labels[i] for i in split.val],
        )
        return base.predict([graphs[i] for i in test]), base
    raise KeyError(f"unknown per-site baseline {name!r}; available: {', '.join(SITE_BASELINES)}")
