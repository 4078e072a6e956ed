"""Descriptor baselines on the Castelli perovskites (heat_all): mean, per-element, SOAP -> SVR.

Usage::

    CRYSTALGNN_PROGRESS=0 python benchmarks/soap_check.py [--source perovskites] [--target heat_all]
        [--seed 0] [--n-jobs N] [--grid-search] [--fresh-cache]

Prints the SOAP feature time (computed from scratch in a temporary cache unless ``--cached``),
and test MAE, fit time, parameters and pickled size of each baseline on
``random_split(n, (0.8, 0.1, 0.1), seed)`` (trained on the train part only).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from crystalgnn.baselines import SoapConfig, dataset_soap, fit_predict_baseline
from crystalgnn.data.parsing import default_jobs
from crystalgnn.data.readers import load_source
from crystalgnn.data.splits import random_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default="perovskites")
    ap.add_argument("--target", default="heat_all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-jobs", type=int, default=None)
    ap.add_argument("--grid-search", action="store_true", help="also run soap-svr with a 3-fold grid search")
    ap.add_argument("--cached", action="store_true", help="use the normal SOAP cache (time may be a cache hit)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    ds = load_source(args.source, targets=[args.target])
    print(f"loaded {ds!r} in {time.perf_counter() - t0:.1f} s; unit {ds.units.get(args.target, '')!r}")
    split = random_split(len(ds), (0.8, 0.1, 0.1), seed=args.seed)
    jobs = args.n_jobs or default_jobs()

    with tempfile.TemporaryDirectory() as tmp:
        cache = None if args.cached else tmp
        t0 = time.perf_counter()
        X = dataset_soap(ds, SoapConfig(), n_jobs=jobs, cache_dir=cache)
        soap_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        dataset_soap(ds, SoapConfig(), n_jobs=jobs, cache_dir=cache)
        reload_s = time.perf_counter() - t0
    print(
        f"SOAP {SoapConfig()}: {X.shape[0]} structures x {X.shape[1]} features, "
        f"{soap_s:.1f} s with {jobs} processes; cached reload {reload_s:.2f} s"
    )

    runs = [("mean", {}), ("per-element", {}), ("soap-svr", {})]
    if args.grid_search:
        runs.append(("soap-svr", {"grid_search": True}))
    rows = []
    for name, opts in runs:
        out = fit_predict_baseline(name, ds, args.target, split, features=X, n_jobs=jobs, **opts)
        label = name + (" (grid)" if opts else "")
        rows.append(
            {
                "baseline": label,
                "test_mae": round(out["mae"], 4),
                "n_train": out["n_train"],
                "n_test": out["n_test"],
                "train_time_s": round(out["train_time_s"], 2),
                "n_parameters": out["n_parameters"],
                "model_bytes": out["model_bytes"],
                "info": out["info"],
            }
        )
        print(json.dumps(rows[-1], default=str))
    print(f"\n{'baseline':<18}{'test MAE':>10}  {'fit s':>8}  {'params':>10}")
    for r in rows:
        print(f"{r['baseline']:<18}{r['test_mae']:>10.4f}  {r['train_time_s']:>8.2f}  {r['n_parameters']:>10}")


if __name__ == "__main__":
    main()
