"""Dump every generated candidate and rejection of a fixed generation run, to compare two trees.

Hosts: the bundled cathodes plus a seeded sample of ``electrodes`` rows. Stages: explicit rules
with RLS rescaling, prototype decoration, Hautier substitution on a few hosts, validity
filters, duplicate removal, charged end members. Written: candidate ids, formulas, ``repr`` of
volumes and lattice lengths (bit-level), rejections, unique ids and duplicate mapping. Run once
per source tree and compare the files byte for byte:

    PYTHONPATH=/path/to/old/src python benchmarks/discovery_candidates_dump.py /tmp/old.json
    PYTHONPATH=src python benchmarks/discovery_candidates_dump.py /tmp/new.json
    cmp /tmp/old.json /tmp/new.json
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RULES = "Co->Ni,Mn,Fe Fe->Mn,Co,Ni Mn->Fe,Ni,Co Ni->Co,Mn V->Cr,Ti P->Si,S Li->Na O->S,F"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="JSON file to write")
    parser.add_argument("--hosts", type=int, default=150, help="electrode hosts sampled (default 150)")
    parser.add_argument("--seed", type=int, default=1, help="sampling seed (default 1)")
    parser.add_argument("--probabilistic-hosts", type=int, default=4, help="hosts for Hautier substitution")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from crystalgnn.data.examples import cathode_examples
    from crystalgnn.data.readers import load_source
    from crystalgnn.discovery.candidates import filter_valid, hosts_from, remove_duplicates
    from crystalgnn.discovery.end_members import end_member_pairs
    from crystalgnn.discovery.prototypes import PROTOTYPES, decorate_prototypes
    from crystalgnn.discovery.substitution import apply_rules, parse_rules, probable_substitutions

    ds = load_source("electrodes", subset=args.hosts, subset_seed=args.seed, show_progress=False, n_jobs=1)
    items = list(cathode_examples().items()) + list(zip(ds.ids, ds.structures, strict=True))
    ions = ["Li"] * len(cathode_examples()) + [m.get("working_ion") for m in ds.metadata]
    hosts, rejected = [], []
    for (host_id, structure), ion in zip(items, ions, strict=True):
        found, bad = hosts_from([(host_id, structure)], working_ion=ion)
        hosts += found
        rejected += bad
    subs, bad_rules = apply_rules(hosts, parse_rules(RULES), rescale=True)
    metals = ["Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu"]
    protos, bad_protos = decorate_prototypes(PROTOTYPES, metals, ["Li", "Na", "Mg"])
    probs, bad_probs = probable_substitutions(hosts[: args.probabilistic_hosts], 1e-3, 20)
    every = subs + protos + probs
    valid, invalid = filter_valid(every)
    unique, duplicate_of = remove_duplicates(valid)
    pairs, bad_pairs = end_member_pairs(unique)
    out: dict[str, Any] = {
        "candidates": [(c.id, c.formula, repr(c.structure.volume), repr(c.structure.lattice.abc)) for c in every],
        "rejections": [(r.id, r.reason) for r in [*rejected, *bad_rules, *bad_protos, *bad_probs, *invalid]],
        "unique": [c.id for c in unique],
        "duplicate_of": duplicate_of,
        "charged": [(d.id, c.id, c.formula, repr(c.structure.volume)) for d, c in pairs],
        "charged_rejections": [(r.id, r.reason) for r in bad_pairs],
    }
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=0)
    print(f"{len(every)} candidates, {len(invalid)} invalid, {len(unique)} unique, {len(pairs)} pairs -> {args.out}")


if __name__ == "__main__":
    main()
