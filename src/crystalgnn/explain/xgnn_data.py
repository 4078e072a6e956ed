"""The data of the crystal XGNN: a property split at its training-set median into low (0) and
high (1), and the bond lengths generated bonds are given.

- :func:`median_split_table` writes a table with the 0/1 column ``<target>_high`` and the
  ``split.json`` it was computed on, so ``crystalgnn train TABLE --target <target>_high --task
  classification --split-file split.json`` trains the thesis' classifier (the median is that of
  the training part of the split only; ties at the median are "low").
- :func:`label_pair_distances`: XGNN's generated bonds have no geometry, but a CGCNN classifier
  reads a bond length on every edge. Each generated bond between labels ``a`` and ``b`` gets the
  median length of the ``a``-``b`` bonds of real crystal graphs, a bond being one of an atom's
  ``nearest`` (4, the generator's neighbour limit) shortest edges; pairs never seen get the
  median over all such bonds.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crystalgnn.explain.xgnn_labels import N_LABELS, check_kind, element_label


@dataclass(frozen=True)
class MedianSplit:
    """What :func:`median_split_table` wrote.

    Attributes:
        table: the JSON-lines table (``id``, ``cif``, ``<target>``, ``<target>_high``).
        split: the ``split.json`` (train/val/test ids) the median was computed on.
        column: the 0/1 column's name.
        median: the training-set median of the target.
        counts: rows per class in the whole table, ``{"low": n0, "high": n1}``.
    """

    table: Path
    split: Path
    column: str
    median: float
    counts: dict[str, int]


def median_split_table(
    source: Any,
    target: str,
    out_dir: str | Path,
    *,
    subset: int | None = None,
    subset_seed: int = 0,
    split: str = "0.8,0.1,0.1",
    seed: int = 0,
    show_progress: bool = False,
) -> MedianSplit:
    """Write ``source`` with ``target`` discretised at its training-set median (see module doc).

    Args:
        source: anything :func:`~crystalgnn.data.readers.load_source` reads (``"mp-36k"``, ...).
        target: the property to split (``band_gap``, ``formation_energy_per_atom``).
        out_dir: folder for ``<target>_median_split.jsonl.gz`` and ``split.json``.
        subset, subset_seed: read only a seeded random sample of the source.
        split, seed: train,val,test ratios and seed of the random split (as ``crystalgnn train``).
    """
    from crystalgnn.data.readers import load_source
    from crystalgnn.data.splits import random_split

    ds = load_source(source, targets=[target], subset=subset, subset_seed=subset_seed, show_progress=show_progress)
    parts = random_split(len(ds), [float(x) for x in split.split(",")], seed=seed)
    values = ds.targets[target]
    median = float(np.median(values[parts.train]))
    high = (values > median).astype(int)
    column = f"{target}_high"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = out / f"{target}_median_split.jsonl.gz"
    with gzip.open(table, "wt", encoding="utf-8") as f:
        for i, (sid, s) in enumerate(zip(ds.ids, ds.structures, strict=True)):
            row = {"id": sid, "cif": s.to(fmt="cif"), target: float(values[i]), column: int(high[i])}
            f.write(json.dumps(row) + "\n")
    split_path = out / "split.json"
    parts.save(split_path, ds.ids)
    counts = {"low": int((high == 0).sum()), "high": int((high == 1).sum())}
    return MedianSplit(table, split_path, column, median, counts)


def label_pair_distances(graphs: Sequence[Any], kind: str, nearest: int = 4) -> np.ndarray:
    """(L, L) symmetric median bond length (Å) per label pair over crystal ``graphs``.

    Args:
        graphs: crystal graphs with ``z``, ``edge_index`` (row 1 = centre atom) and ``edge_dist``.
        kind: ``"group"`` or ``"period"``.
        nearest: an edge is a bond when it is one of its centre atom's ``nearest`` shortest.
    """
    n = N_LABELS[check_kind(kind)]
    lut = torch.tensor([0] + [element_label(z, kind) for z in range(1, 101)])
    pairs: list[torch.Tensor] = []
    dists: list[torch.Tensor] = []
    for g in graphs:
        centre, nbr = g.edge_index[1], g.edge_index[0]
        d = g.edge_dist.float()
        order = torch.argsort(d + centre.float() * 1e4)  # by centre, then by length
        c_sorted = centre[order]
        first = torch.searchsorted(c_sorted, c_sorted, right=False)
        rank = torch.arange(len(order)) - first
        keep = order[rank < nearest]
        a, b = lut[g.z[centre[keep]]], lut[g.z[nbr[keep]]]
        pairs.append(torch.minimum(a, b) * n + torch.maximum(a, b))
        dists.append(d[keep])
    out = np.full((n, n), np.nan)
    if not pairs:
        raise ValueError("no graphs to measure bond lengths on")
    key, dist = torch.cat(pairs).numpy(), torch.cat(dists).numpy()
    for k in np.unique(key):
        i, j = divmod(int(k), n)
        out[i, j] = out[j, i] = float(np.median(dist[key == k]))
    out[np.isnan(out)] = float(np.median(dist))
    return out


def radius_distances(elements: Sequence[int]) -> np.ndarray:
    """(L, L) bond lengths without data: the sum of the representative elements' atomic radii
    (pymatgen ``Element.atomic_radius``, Å; 1.5 Å where unknown).
    """
    from pymatgen.core.periodic_table import Element

    radii = np.array([float(Element.from_Z(int(z)).atomic_radius or 1.5) for z in elements])
    return radii[:, None] + radii[None, :]
