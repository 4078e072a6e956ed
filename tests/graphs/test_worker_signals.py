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
