"""Main-process CPU time for loading the perovskites and building their graphs, with the cyclic
GC paused (crystalgnn's default) and with it left running.

    CRYSTALGNN_PROGRESS=0 python benchmarks/gc_pause_check.py
"""

from __future__ import annotations

import contextlib
import gc
import os
import time

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")

import crystalgnn.gc_pause as gc_pause
from crystalgnn.data.readers import load_source
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.crystal_graph import GraphConfig


def once() -> tuple[float, float]:
    c0 = time.process_time()
    ds = load_source("perovskites")
    c1 = time.process_time()
    build_graph_list(ds.structures, GraphConfig())
    return c1 - c0, time.process_time() - c1


def main() -> None:
    paused = gc_pause.gc_paused
    for mode in ("gc running", "gc paused", "gc running", "gc paused"):
        gc_pause.gc_paused = paused if mode == "gc paused" else contextlib.nullcontext  # type: ignore[assignment]
        load, graphs = once()
        print(f"{mode}: main-process CPU load {load:.2f} s + graphs {graphs:.2f} s = {load + graphs:.2f} s")
        gc.collect()
    gc_pause.gc_paused = paused


if __name__ == "__main__":
    main()
