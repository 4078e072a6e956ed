"""The cathode screen on the local engine and on a Dask LocalCluster: time and equality (issue 17 part 4).

Hosts: Li electrodes of ``electrodes`` (discharged structures, <= 30 atoms, a seeded sample)
plus the bundled cathodes; generators: explicit substitutions and three prototypes (as
``screen_throughput.py``). Runs candidate preparation (generation + filter, duplicates, known
flag, end members) and scoring (every default model) once with ``LocalEngine`` and once with
``DaskEngine`` (a ``LocalCluster`` of ``--workers`` single-threaded worker processes, started
and closed here; start-up timed apart), then checks that both give the same candidates and
ranking, numbers equal to float32 rounding.

    PYTHONPATH=src python benchmarks/screen_engines.py --hosts 60 --out benchmarks/out/screen_engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")

import numpy as np
import pandas as pd
import torch


def run(engine: Any, hosts: list[Any], config: Any, models: Any, hull: Any) -> tuple[pd.DataFrame, dict[str, float]]:
    from crystalgnn.discovery.ranking import rank_candidates
    from crystalgnn.discovery.screen import prepare_candidates
    from crystalgnn.discovery.screen_scoring import score_candidates

    t0 = time.perf_counter()
    pairs, _, counts, seconds = prepare_candidates(hosts, config, engine=engine)
    t = time.perf_counter()
    rows = score_candidates(pairs, models, hull, engine)
    seconds["score"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    ranked = rank_candidates(pd.DataFrame(rows), config.max_hull, config.voltage_window, config.objective)
    return ranked, {**seconds, **{f"n_{k}": v for k, v in counts.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=60, help="electrode rows sampled as hosts")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", action="store_true", help="worker threads instead of processes (smoke test)")
    ap.add_argument("--known", default="mp-36k", help="known-structure data sets, or 'none'")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/screen_engines.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")

    from crystalgnn.data.examples import examples_dir
    from crystalgnn.discovery.candidates import load_hosts
    from crystalgnn.discovery.dask_engine import DaskEngine
    from crystalgnn.discovery.engine import LocalEngine
    from crystalgnn.discovery.scoring import load_models
    from crystalgnn.discovery.screen import load_hull
    from crystalgnn.discovery.screen_config import ScreenConfig

    hosts, _ = load_hosts("electrodes", "Li", subset=args.hosts * 3, subset_seed=0)
    hosts = [h for h in hosts if len(h.structure) <= 30][: args.hosts]
    hosts += load_hosts(str(examples_dir()), "Li")[0]
    config = ScreenConfig(
        hosts=["(sampled)"],
        substitute="Co->Ni,Mn,Fe; Ni->Co,Mn; Mn->Fe,Ni,Co; Fe->Mn,Co,Ni; V->Cr,Mn; P->Si,S",
        prototypes=["layered", "spinel", "olivine"],
        metals=["Co", "Ni", "Mn", "Fe", "V", "Cr"],
        known_references=[] if args.known == "none" else args.known.split(","),
    )
    models, notes = load_models("mp-formation-energy", "electrode-voltage", "mp-band-gap", "mp-metal-classifier")
    hull = load_hull("mp-36k")

    local, local_s = run(LocalEngine(), hosts, config, models, hull)
    t = time.perf_counter()
    engine = DaskEngine(workers=args.workers, processes=not args.threads, connect_timeout=120)
    startup = time.perf_counter() - t
    try:
        dask, dask_s = run(engine, hosts, config, models, hull)
        warm, warm_s = run(engine, hosts, config, models, hull)  # workers' imports and caches warm
    finally:
        engine.close()

    numeric = [c for c in local.columns if local[c].dtype.kind == "f"]
    diff = {c: np.abs(local[c].to_numpy() - dask[c].to_numpy()) for c in numeric}
    rel = {c: d / np.maximum(np.abs(local[c].to_numpy()), 1e-12) for c, d in diff.items()}
    worst = max(numeric, key=lambda c: np.nanmax(diff[c], initial=0.0))
    report = {
        "hosts": len(hosts),
        "workers": args.workers,
        "worker_processes": not args.threads,
        "torch_threads_client": torch.get_num_threads(),
        "local_s": {k: round(v, 3) for k, v in local_s.items()},
        "dask_cluster_start_s": round(startup, 2),
        "dask_first_s": {k: round(v, 3) for k, v in dask_s.items()},
        "dask_warm_s": {k: round(v, 3) for k, v in warm_s.items()},
        "same_ids_and_ranks": bool(
            list(local["id"]) == list(dask["id"]) == list(warm["id"])
            and list(local["rank"]) == list(dask["rank"]) == list(warm["rank"])
        ),
        "max_abs_number_difference": [worst, float(np.nanmax(diff[worst], initial=0.0))],
        "max_rel_number_difference": max(float(np.nanmax(r, initial=0.0)) for r in rel.values()),
        "passing": int(local["rank"].notna().sum()),
        "notes": notes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
