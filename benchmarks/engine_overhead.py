"""Per-task overhead of Dask distributed and Ray on a local 2-worker cluster (issue 17 part 4:
"choose by measurement").

Standard library only (run it with the interpreter of the venv that has the engine: Ray is not
installed beside crystalgnn). For each engine: cluster start-up; ``--tasks`` trivial tasks
submitted at once then gathered (throughput: overhead per task); ``--round-trips`` tasks
submitted one at a time, each awaited (latency); ``--tasks`` tasks each taking its own 100 kB
argument (shipping data to workers); and ``--tasks`` tasks reading one shared 100 kB object put
on the cluster once (scatter/broadcast, ``ray.put``). Workers: processes, one thread each.

    PYTHONPATH=src python benchmarks/engine_overhead.py dask
    /work/ray-venv/bin/python benchmarks/engine_overhead.py ray
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

SIZE = 100_000


def trivial(x: int) -> int:
    return x + 1


def size_of(blob: bytes, i: int = 0) -> int:
    return len(blob) + i


def timed(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Median seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_dask(workers: int, n: int, trips: int) -> dict[str, float]:
    import logging

    from distributed import Client, LocalCluster

    t = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    )
    client = Client(cluster)
    client.gather(client.map(trivial, range(workers * 2), pure=False))  # workers ready
    start = time.perf_counter() - t
    blobs = [os.urandom(SIZE) for _ in range(n)]
    try:
        out = {"start_s": start}
        out["throughput_s"] = timed(lambda: client.gather(client.map(trivial, range(n), pure=False)))
        out["round_trip_s"] = timed(lambda: [client.submit(trivial, i, pure=False).result() for i in range(trips)])
        out["ship_100kB_s"] = timed(lambda: client.gather(client.map(size_of, blobs, pure=False)))

        def shared() -> None:
            [future] = client.scatter([blobs[0]], broadcast=True, hash=False)
            client.gather([client.submit(size_of, future, i, pure=False) for i in range(n)])

        out["shared_100kB_s"] = timed(shared)
        return out
    finally:
        client.close()
        cluster.close()


def bench_ray(workers: int, n: int, trips: int) -> dict[str, float]:
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    remote_trivial = ray.remote(num_cpus=1)(trivial)
    remote_size = ray.remote(num_cpus=1)(size_of)
    ray.get([remote_trivial.remote(i) for i in range(workers * 2)])  # workers ready
    start = time.perf_counter() - t
    blobs = [os.urandom(SIZE) for _ in range(n)]
    try:
        out = {"start_s": start}
        out["throughput_s"] = timed(lambda: ray.get([remote_trivial.remote(i) for i in range(n)]))
        out["round_trip_s"] = timed(lambda: [ray.get(remote_trivial.remote(i)) for i in range(trips)])
        out["ship_100kB_s"] = timed(lambda: ray.get([remote_size.remote(b) for b in blobs]))

        def shared() -> None:
            ref = ray.put(blobs[0])
            ray.get([remote_size.remote(ref, i) for i in range(n)])

        out["shared_100kB_s"] = timed(shared)
        return out
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("engine", choices=["dask", "ray"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--round-trips", type=int, default=200)
    args = ap.parse_args()
    bench = bench_dask if args.engine == "dask" else bench_ray
    raw = bench(args.workers, args.tasks, args.round_trips)
    version = __import__("distributed" if args.engine == "dask" else "ray").__version__
    per_task = {
        "start_s": round(raw["start_s"], 2),
        "throughput_ms_per_task": round(1e3 * raw["throughput_s"] / args.tasks, 3),
        "round_trip_ms": round(1e3 * raw["round_trip_s"] / args.round_trips, 3),
        "ship_100kB_ms_per_task": round(1e3 * raw["ship_100kB_s"] / args.tasks, 3),
        "shared_100kB_ms_per_task": round(1e3 * raw["shared_100kB_s"] / args.tasks, 3),
    }
    report = {"engine": args.engine, "version": version, "python": sys.version.split()[0], **vars(args), **per_task}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
