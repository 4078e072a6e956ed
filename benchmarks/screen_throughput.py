"""Throughput of the cathode screen, stage by stage (issue 17 part 3).

Hosts: Li electrodes of ``electrodes`` (discharged structures, <= 30 atoms, a seeded sample)
plus the bundled cathodes; generators: explicit substitutions and three prototypes. Reports
candidates/s for generation + validity filter, duplicate removal, known flagging, charged end
members, and scoring (formation energy of both end members, hull distance of both, voltage (a)
and (b), capacities, band gap, metal probability), each on one torch thread.

    PYTHONPATH=src python benchmarks/screen_throughput.py --hosts 60 --out benchmarks/out/screen_throughput.json

The shipped ``electrode-voltage`` model does not exist yet: ``--voltage-model`` defaults to
``mp-band-gap`` as a stand-in of the same architecture and cost (a CGCNN on the discharged cell).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=60, help="electrode rows sampled as hosts")
    ap.add_argument("--voltage-model", default="mp-band-gap")
    ap.add_argument("--known", default="electrodes,mp-36k", help="known-structure data sets, or 'none'")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/screen_throughput.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")

    from crystalgnn.data.examples import examples_dir
    from crystalgnn.discovery.candidates import load_hosts
    from crystalgnn.discovery.scoring import load_models, score_pairs
    from crystalgnn.discovery.screen import load_hull, prepare_candidates
    from crystalgnn.discovery.screen_config import ScreenConfig

    t = time.perf_counter()
    hosts, _ = load_hosts("electrodes", "Li", subset=args.hosts * 3, subset_seed=0)
    hosts = [h for h in hosts if len(h.structure) <= 30][: args.hosts]
    bundled, _ = load_hosts(str(examples_dir()), "Li")
    hosts += bundled
    load_s = time.perf_counter() - t
    config = ScreenConfig(
        hosts=["(sampled)"],
        substitute="Co->Ni,Mn,Fe; Ni->Co,Mn; Mn->Fe,Ni,Co; Fe->Mn,Co,Ni; V->Cr,Mn; P->Si,S",
        prototypes=["layered", "spinel", "olivine"],
        metals=["Co", "Ni", "Mn", "Fe", "V", "Cr"],
        voltage_model=args.voltage_model,
        known_references=[] if args.known == "none" else args.known.split(","),
    )
    pairs, rejected, counts, seconds = prepare_candidates(hosts, config)
    t = time.perf_counter()
    models, notes = load_models("mp-formation-energy", args.voltage_model, "mp-band-gap", "mp-metal-classifier")
    hull = load_hull("mp-36k")
    seconds["load_models_and_hull"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = score_pairs(pairs, models, hull)
    seconds["score"] = time.perf_counter() - t
    rates = {
        "generate_and_filter_per_s": counts["generated"] / seconds["generate"],
        "dedup_per_s": counts["valid"] / seconds["dedup"],
        "generate_filter_dedup_per_s": counts["generated"] / (seconds["generate"] + seconds["dedup"]),
        "known_flag_per_s": counts["unique"] / max(seconds["known"], 1e-9),
        "end_members_per_s": counts["unique"] / seconds["end_members"],
        "score_per_s": len(rows) / seconds["score"],
        "end_to_end_per_s": len(rows) / sum(v for k, v in seconds.items() if k != "load_models_and_hull"),
    }
    atoms = [len(d.structure) for d, _ in pairs]
    report = {
        "hosts": len(hosts),
        "host_load_s": round(load_s, 2),
        "counts": {**counts, "rejected": len(rejected), "scored": len(rows)},
        "atoms_per_candidate": {"mean": sum(atoms) / max(len(atoms), 1), "max": max(atoms, default=0)},
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "rates": {k: round(v, 1) for k, v in rates.items()},
        "notes": notes,
        "torch_threads": torch.get_num_threads(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
