"""Graph workers do not inherit the parent's Python signal handlers."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from typing import Any

from crystalgnn.graphs.builder import _worker_signals


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: Any) -> None:  # a handler such as crystalgnn train's
    raise _Stop


def _child(reset: bool) -> None:
    if reset:
        _worker_signals()
    os.kill(os.getpid(), signal.SIGINT)  # ignored by a reset worker
    time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)


def test_forked_worker_dies_quietly_on_sigterm_and_ignores_sigint() -> None:
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        ctx = mp.get_context("fork")
        codes = {}
        for reset in (True, False):
            proc = ctx.Process(target=_child, args=(reset,))
            proc.start()
            proc.join(10)
            codes[reset] = proc.exitcode
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert codes[True] == -signal.SIGTERM  # killed by the default action, no traceback
    assert codes[False] == 1  # the inherited handlers: KeyboardInterrupt, an exception exit


def _child_sigterm_only() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)


def test_train_sigterm_handler_lets_forked_children_die_quietly() -> None:
    """A fork of `crystalgnn train` (the parsing pool's workers) inherits its SIGTERM handler:
    the handler must not raise in the child (a traceback per worker when the pool closes)."""
    from crystalgnn.cli import train as train_cli

    train_cli._on_sigterm.received = False  # type: ignore[attr-defined]
    train_cli._on_sigterm.pid = os.getpid()  # type: ignore[attr-defined]
    previous = signal.signal(signal.SIGTERM, train_cli._on_sigterm)
    try:
        proc = mp.get_context("fork").Process(target=_child_sigterm_only)
        proc.start()
        proc.join(10)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert proc.exitcode == -signal.SIGTERM
    assert train_cli._on_sigterm.received is False  # type: ignore[attr-defined]  # the parent was not told to stop
