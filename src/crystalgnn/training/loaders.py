"""Batches for training and prediction: seeded per-epoch shuffling, in-memory graphs or graphs
read from the cache per batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from torch_geometric.data import Batch, Data

from crystalgnn.graphs.batching import collate_graphs
from crystalgnn.graphs.cache import CachedGraphs


class EpochSeededSampler(Sampler[int]):
    """Shuffles with a generator seeded by (seed, epoch): the order of epoch k is the same
    whether a run went straight through or was killed and resumed before epoch k.
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def select_graphs(graphs: Sequence[Data] | CachedGraphs, idx: Sequence[int] | np.ndarray) -> list[Data] | CachedGraphs:
    """The graphs at positions ``idx`` (graphs on disk stay there)."""
    if isinstance(graphs, CachedGraphs):
        return graphs.subset(idx)
    return [graphs[int(i)] for i in idx]


def make_loader(
    graphs: Sequence[Data] | CachedGraphs, batch_size: int, *, shuffle: bool = False, seed: int = 0
) -> DataLoader:
    """Batches of ``graphs`` (:func:`~crystalgnn.graphs.batching.collate_graphs`), shuffled per
    epoch by :class:`EpochSeededSampler` when ``shuffle``; graphs on disk are read per batch.
    """
    sampler = EpochSeededSampler(len(graphs), seed) if shuffle else None
    if isinstance(graphs, CachedGraphs):  # a whole batch per read, built from the records' columns
        return DataLoader(
            _BatchReader(graphs),
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=0,
            collate_fn=_as_is,
        )
    return DataLoader(
        list(graphs),  # type: ignore[arg-type]  # a list is a map-style dataset (torch types it as Dataset only)
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=0,
        collate_fn=collate_graphs,
    )


class _BatchReader(torch.utils.data.Dataset):
    """Graphs on disk for a ``DataLoader``: ``__getitems__`` (which the loader calls with a
    batch's positions) returns the finished batch, which :func:`_as_is` passes on.
    """

    def __init__(self, graphs: CachedGraphs) -> None:
        self.graphs = graphs

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int) -> Data:
        return self.graphs[i]

    def __getitems__(self, idx: list[int]) -> Batch:
        return self.graphs.batch(idx)


def _as_is(batch: Batch) -> Batch:
    return batch
