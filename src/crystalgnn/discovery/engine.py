"""Execution engines of the screen: "map this function over these partitions" (issue 17, part 4).

The screen (:mod:`~crystalgnn.discovery.screen`) splits each stage's list into partitions
(:func:`split`), maps a task over them with an :class:`Engine` and concatenates the results
in partition order, so the output does not depend on the engine or on the number of
partitions. Two engines:

- :class:`LocalEngine`: the tasks run one after the other in this process (one partition per
  stage by default: the screen as it always ran);
- :class:`~crystalgnn.discovery.dask_engine.DaskEngine`: the tasks run on a Dask distributed
  cluster (Rocklin, "Dask: parallel computation with blocked algorithms and task scheduling",
  Proc. SciPy 2015), an existing scheduler (``address``) or a ``LocalCluster`` it starts.

:func:`~crystalgnn.discovery.engines.open_engine` opens one by name.

Objects every task needs (the models, the reference hull) are passed as ``shared``: the local
engine hands them over as they are, the Dask engine sends them once to every worker, where
all tasks of that worker use the same deserialised copy (models are loaded once per worker,
not per task).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from crystalgnn.progress import progress

T = TypeVar("T")
R = TypeVar("R")


class EngineError(RuntimeError):
    """An engine that cannot be started or reached (the message is one line)."""


def split(items: Sequence[T], n: int) -> list[list[T]]:
    """``items`` in at most ``n`` contiguous, nearly equal, non-empty partitions (in order)."""
    n = max(1, min(n, len(items)))
    size, extra = divmod(len(items), n)
    out: list[list[T]] = []
    start = 0
    for i in range(n):
        stop = start + size + (i < extra)
        out.append(list(items[start:stop]))
        start = stop
    return [p for p in out if p]


def split_by_key(keys: Sequence[Hashable], n: int) -> list[list[int]]:
    """Positions of ``keys`` in at most ``n`` non-empty bins that keep each key's positions
    together (groups packed largest first into the bin with fewest positions; each bin in
    input order), for work that must see a whole group at once or that caches per group.
    """
    groups: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    bins: list[list[int]] = [[] for _ in range(max(1, min(n, len(groups))))]
    for idx in sorted(groups.values(), key=len, reverse=True):
        min(bins, key=len).extend(idx)
    return [sorted(b) for b in bins if b]


def in_input_order(bins: Sequence[Sequence[int]], results: Sequence[Sequence[R]]) -> list[R]:
    """Per-position results of :func:`split_by_key` bins put back in input order."""
    out: dict[int, R] = {}
    for idx, part in zip(bins, results, strict=True):
        out.update(zip(idx, part, strict=True))
    return [out[i] for i in range(len(out))]


class Engine:
    """Maps a task over partitions and returns the results in partition order.

    Attributes:
        partitions: how many partitions a stage's list is split into.
        in_process: tasks run in this process (their own progress bars are visible).
        task_jobs: worker processes a task may start itself (``None``: the task's default;
            1 on a cluster, whose parallelism is the workers).
    """

    partitions: int = 1
    in_process: bool = True
    task_jobs: int | None = None

    def map(
        self,
        task: Callable[..., R],
        parts: Sequence[Any],
        *shared: Any,
        desc: str = "tasks",
        show_progress: bool = False,
    ) -> list[R]:
        """``[task(part, *shared) for part in parts]``, evaluated by the engine."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the engine's resources (a cluster it started)."""

    def describe(self) -> str:
        """One line naming the engine, for logs and reports."""
        return type(self).__name__

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class LocalEngine(Engine):
    """Runs the tasks in this process, in order.

    Args:
        partitions: partitions per stage (1: each stage is one call, as the screen ran before
            engines existed; more only to check that partitioning does not change results).
    """

    def __init__(self, partitions: int = 1) -> None:
        self.partitions = max(1, int(partitions))

    def map(
        self,
        task: Callable[..., R],
        parts: Sequence[Any],
        *shared: Any,
        desc: str = "tasks",
        show_progress: bool = False,
    ) -> list[R]:
        out: list[R] = []
        show = show_progress and len(parts) > 1
        bar = progress(total=len(parts), desc=desc, disable=not show, unit="part")
        for part in parts:
            out.append(task(part, *shared))
            bar.update()
        bar.close()
        return out

    def describe(self) -> str:
        return "local (this process)"
