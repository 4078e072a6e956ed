"""Candidate generation and de-duplication rate (candidates/s) of ``crystalgnn.discovery``.

Hosts: the bundled cathode examples plus a seeded sample of the ``electrodes`` data set
(discharged end members; each host's working ion from the data set). Stages, timed one by one
on one thread: host checks, explicit substitution rules (without and with RLS volume
rescaling), prototype decoration, probabilistic (Hautier 2011) substitution on a few hosts,
validity filters, duplicate removal (StructureMatcher grouped by formula) and charged end
members. Run:

    PYTHONPATH=src python benchmarks/discovery_generation.py --hosts 200 --out /tmp/discovery.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def timed(log: dict[str, Any], name: str, n_in: int, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    kept = result[0] if isinstance(result, tuple) else result
    n_out = len(kept)
    log[name] = {"in": n_in, "out": n_out, "seconds": round(seconds, 3), "out_per_s": round(n_out / seconds, 1)}
    print(f"{name:28s} in {n_in:6d} out {n_out:6d} {seconds:8.2f} s {n_out / seconds:9.1f} /s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=200, help="electrode hosts sampled (default 200)")
    parser.add_argument("--probabilistic-hosts", type=int, default=10, help="hosts for Hautier substitution")
    parser.add_argument("--rescale-hosts", type=int, default=25, help="hosts for the RLS-rescaled rules")
    parser.add_argument("--threshold", type=float, default=1e-3, help="Hautier probability threshold")
    parser.add_argument("--out", default="benchmarks/out/discovery_generation.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from crystalgnn.data.examples import cathode_examples
    from crystalgnn.data.readers import load_source
    from crystalgnn.discovery.candidates import filter_valid, hosts_from, remove_duplicates
    from crystalgnn.discovery.end_members import end_member_pairs
    from crystalgnn.discovery.prototypes import PROTOTYPES, decorate_prototypes
    from crystalgnn.discovery.substitution import apply_rules, parse_rules, probable_substitutions

    log: dict[str, Any] = {"hosts_requested": args.hosts}
    start = time.perf_counter()
    ds = load_source("electrodes", subset=args.hosts, subset_seed=0, show_progress=False, n_jobs=1)
    log["load_seconds"] = round(time.perf_counter() - start, 2)
    print(f"loaded {len(ds)} electrode hosts in {log['load_seconds']} s", flush=True)
    items = list(cathode_examples().items()) + list(zip(ds.ids, ds.structures, strict=True))
    ions = ["Li"] * len(cathode_examples()) + [m.get("working_ion") for m in ds.metadata]

    def check_hosts() -> tuple[list[Any], list[Any]]:
        hosts, rejected = [], []
        for (hid, s), ion in zip(items, ions, strict=True):
            h, r = hosts_from([(hid, s)], working_ion=ion)
            hosts += h
            rejected += r
        return hosts, rejected

    hosts, host_rej = timed(log, "host checks", len(items), check_hosts)
    log["host_rejections"] = [f"{r.id}: {r.reason}" for r in host_rej]
    sizes = sorted(len(h.structure) for h in hosts)
    log["host_atoms"] = {"median": sizes[len(sizes) // 2], "max": sizes[-1]}
    print("host atoms", log["host_atoms"], flush=True)
    rules = parse_rules("Co->Ni,Mn,Fe Fe->Mn,Co,Ni Mn->Fe,Ni,Co Ni->Co,Mn V->Cr,Ti P->Si,S")
    subs, _ = timed(log, "rules (no rescale)", len(hosts), lambda: apply_rules(hosts, rules))
    timed(log, "rules again (warm cache)", len(hosts), lambda: apply_rules(hosts, rules))
    some = hosts[: args.rescale_hosts]
    timed(log, "rules (RLS rescale)", len(some), lambda: apply_rules(some, rules, rescale=True))
    metals = ["Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu"]
    protos, _ = timed(
        log,
        "prototypes (rescaled)",
        len(PROTOTYPES) * len(metals) * 3,
        lambda: decorate_prototypes(PROTOTYPES, metals, ["Li", "Na", "Mg"]),
    )
    few = hosts[: args.probabilistic_hosts]
    probs, _ = timed(log, "Hautier substitution", len(few), lambda: probable_substitutions(few, args.threshold, 20))
    every = subs + protos + probs
    valid, invalid = timed(log, "validity filters", len(every), lambda: filter_valid(every))
    log["invalid_reasons"] = sorted({r.reason.split(" (")[0] for r in invalid})[:20]
    unique, _ = timed(log, "duplicate removal", len(valid), lambda: remove_duplicates(valid))
    timed(log, "charged end members", len(unique), lambda: end_member_pairs(unique))
    stages = ["rules (no rescale)", "prototypes (rescaled)", "Hautier substitution"]
    stages += ["validity filters", "duplicate removal"]
    total = sum(log[s]["seconds"] for s in stages)
    log["generate_filter_dedup"] = {"unique": len(unique), "seconds": round(total, 2)}
    print(f"generation + filters + de-duplication: {len(unique)} unique in {total:.1f} s", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(log, fh, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
