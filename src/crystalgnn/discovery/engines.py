"""The screen's engines by name (``crystalgnn screen --engine local|dask --address HOST:PORT``).

:func:`open_engine` returns a :class:`~crystalgnn.discovery.engine.LocalEngine` or a
:class:`~crystalgnn.discovery.dask_engine.DaskEngine` (imported only when asked for, so Dask
stays optional).
"""

from __future__ import annotations

from crystalgnn.discovery.engine import Engine, LocalEngine

ENGINES: tuple[str, ...] = ("local", "dask")
"""Engine names accepted by :func:`open_engine`."""


def open_engine(
    kind: str = "local",
    address: str | None = None,
    workers: int = 2,
    connect_timeout: float = 10.0,
    processes: bool = True,
) -> Engine:
    """The engine ``kind`` (one of :data:`ENGINES`).

    Args:
        address: ``HOST:PORT`` of a running Dask scheduler; ``None`` starts a ``LocalCluster``
            of ``workers`` worker processes (``processes=False``: threads), 1 thread each,
            closed with the engine.
        connect_timeout: seconds to wait for the scheduler before :class:`~crystalgnn.discovery.engine.EngineError`.

    Raises:
        ValueError: an unknown kind, or an address given to the local engine.
        EngineError: Dask is not installed or the scheduler cannot be reached.
    """
    if kind not in ENGINES:
        raise ValueError(f"unknown engine {kind!r} (choose from {', '.join(ENGINES)})")
    if kind == "local":
        if address:
            raise ValueError("--address needs --engine dask")
        return LocalEngine()
    from crystalgnn.discovery.dask_engine import DaskEngine

    return DaskEngine(address, workers=workers, connect_timeout=connect_timeout, processes=processes)
