"""The Dask distributed engine of the screen (``crystalgnn screen --engine dask``).

Tasks are submitted to a Dask distributed scheduler (Rocklin, Proc. SciPy 2015; the
``distributed`` package), either an existing one (``--address HOST:PORT``, e.g. started with
``dask scheduler`` and ``dask worker`` on a cluster) or a ``LocalCluster`` of single-threaded
worker processes that the engine starts and closes. The objects every task needs (models,
reference hull) are scattered once to every worker (``Client.scatter(..., broadcast=True)``)
and kept there while the engine is open: every task on a worker, in this and later maps,
shares that worker's copy, so a model is deserialised once per worker, not once per task, and
a hull built on a worker serves its later batches. Partitions are scattered too (so the scheduler places each task where its data
is) and results are gathered in partition order. Warnings raised inside tasks are not shown.
Dask is an optional dependency (``pip install 'crystalgnn[distributed]'``).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from crystalgnn.discovery.engine import Engine, EngineError
from crystalgnn.progress import progress

R = TypeVar("R")

PARTITIONS_PER_WORKER = 4
"""Partitions per worker and stage: enough for load balancing, few enough to keep the per-task
overhead (milliseconds) negligible next to a partition's work."""

_ADDRESS = re.compile(r"^(?:(tcp|tls|inproc)://)?([^\s:/]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$")


def scheduler_address(address: str) -> str:
    """``HOST:PORT`` (or ``tcp://HOST:PORT``) as a Dask address; ``ValueError`` when malformed."""
    m = _ADDRESS.match(address.strip())
    if m is None or not 0 < int(m.group(3)) < 65536:
        raise ValueError(f"scheduler address {address!r} is not of the form HOST:PORT")
    return f"{m.group(1) or 'tcp'}://{m.group(2)}:{m.group(3)}"


def _quietly(task: Callable[..., R], part: Any, *shared: Any) -> R:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's chatter would go to the workers' logs
        return task(part, *shared)


class DaskEngine(Engine):
    """Runs the tasks on a Dask distributed cluster.

    Args:
        address: ``HOST:PORT`` of a running scheduler, or ``None`` to start a ``LocalCluster``.
        workers: workers of the started cluster (1 thread each); ignored with ``address``.
        connect_timeout: seconds to wait for the scheduler (and the started cluster's workers).
        processes: the started cluster's workers are processes (``False``: threads of this
            process, which start faster but share its interpreter lock).

    Raises:
        EngineError: ``distributed`` is not installed, or the scheduler cannot be reached or
            has no worker within ``connect_timeout``.
        ValueError: a malformed address.
    """

    in_process = False
    task_jobs = 1

    def __init__(
        self,
        address: str | None = None,
        workers: int = 2,
        connect_timeout: float = 10.0,
        processes: bool = True,
    ) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise EngineError(f"Dask is not installed ({exc}): pip install 'crystalgnn[distributed]'") from exc
        self._cluster: Any = None
        self._shared: dict[int, tuple[Any, Any]] = {}
        target = scheduler_address(address) if address else None
        try:
            if target is None:
                self._cluster = LocalCluster(
                    n_workers=max(1, workers),
                    threads_per_worker=1,
                    processes=processes,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
                self.client = Client(self._cluster, timeout=connect_timeout)
            else:
                self.client = Client(target, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            self.close()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            where = f"scheduler at {target}" if target else "a local Dask cluster"
            raise EngineError(f"cannot reach {where} within {connect_timeout:g} s ({first})") from exc
        if target is not None:
            try:
                self.client.wait_for_workers(1, timeout=connect_timeout)  # not a hang without workers
            except TimeoutError as exc:
                self.close()
                raise EngineError(f"the scheduler at {target} has no worker after {connect_timeout:g} s") from exc
        self.address = str(self._cluster.scheduler_address if target is None else target)
        self.workers = max(1, sum(self.client.nthreads().values())) if target else max(1, workers)
        self.partitions = PARTITIONS_PER_WORKER * self.workers

    def map(
        self,
        task: Callable[..., R],
        parts: Sequence[Any],
        *shared: Any,
        desc: str = "tasks",
        show_progress: bool = False,
    ) -> list[R]:
        from distributed import as_completed

        if not parts:
            return []
        on_workers = [self._on_every_worker(obj) for obj in shared]
        data = self.client.scatter(list(parts), hash=False)
        futures = [self.client.submit(_quietly, task, part, *on_workers, pure=False) for part in data]
        bar = progress(total=len(futures), desc=desc, disable=not show_progress, unit="part")
        for _ in as_completed(futures):
            bar.update()
        bar.close()
        results: list[R] = self.client.gather(futures)
        del futures, data  # the cluster may forget the partitions
        return results

    def _on_every_worker(self, obj: Any) -> Any:
        """A future of ``obj`` broadcast to every worker, once per object for the engine's life:
        later maps reuse the workers' copies (and what they cached, e.g. hulls already built).
        """
        key = id(obj)
        if key not in self._shared:
            [future] = self.client.scatter([obj], broadcast=True, hash=False)
            self._shared[key] = (obj, future)  # holding obj keeps its id unique
        return self._shared[key][1]

    def close(self) -> None:
        self._shared.clear()
        client, cluster = getattr(self, "client", None), self._cluster
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        self._cluster = None

    def describe(self) -> str:
        started = "LocalCluster" if self._cluster is not None else "scheduler"
        return f"dask ({started} {self.address}, {self.workers} workers)"
