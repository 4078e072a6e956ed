"""Per-call cost of the screen's chemistry: oxidation-state guesses and RLS volumes, old vs new.

1. Oxidation states of a seeded sample of the ``electrodes`` data set's reduced formulas (both
   end members), every formula new to both paths: ``crystalgnn.discovery.oxidation``'s
   :func:`best_oxidation_states` with its per-element tables cleared (cold) and again with them
   warm (what the screen sees after the first hosts), then pymatgen's
   ``Composition.oxi_state_guesses(max_sites=-50)`` (the old path; run last, so it gets any
   shared pymatgen caches). Answers are compared one by one.
2. RLS volume of substitution products of the bundled cathodes from their host: the old path
   (decorated copies + ``RLSVolumePredictor``) vs :func:`rls_volume`, oxidation guesses cached.

One thread, no torch. Run:

    PYTHONPATH=src python benchmarks/fastchem_timing.py --formulas 500 --out /tmp/fastchem.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

SUBSTITUTIONS = {"Co": ["Ni", "Mn", "Fe"], "Fe": ["Mn", "Co", "Ni"], "Mn": ["Fe", "Ni"], "Ni": ["Co", "Mn"]}
SUBSTITUTIONS |= {"P": ["Si", "S"], "Li": ["Na"], "O": ["S", "F"]}


def electrode_formulas() -> list[str]:
    from pymatgen.core import Composition

    from crystalgnn.data.catalog import catalog_path

    find = re.compile(r'"(?:low|high)_formula":\s*"([^"]+)"')
    formulas: dict[str, None] = {}
    with gzip.open(catalog_path("electrodes"), "rt", encoding="utf-8") as fh:
        for line in fh:
            for raw in find.findall(line):
                try:
                    formulas[Composition(raw).reduced_formula] = None
                except ValueError:
                    continue
    return list(formulas)


def per_call(fn: Any, items: list[Any]) -> tuple[list[Any], list[float]]:
    out, seconds = [], []
    for item in items:
        start = time.perf_counter()
        out.append(fn(item))
        seconds.append(time.perf_counter() - start)
    return out, seconds


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "mean_ms": round(1e3 * statistics.fmean(seconds), 4),
        "median_ms": round(1e3 * statistics.median(seconds), 4),
        "max_ms": round(1e3 * max(seconds), 2),
        "total_s": round(sum(seconds), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formulas", type=int, default=500, help="electrode formulas sampled (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--repeats", type=int, default=20, help="RLS calls per substitution pair (default 20)")
    parser.add_argument("--out", default="benchmarks/out/fastchem.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from crystalgnn.data.examples import cathode_examples
    from crystalgnn.discovery.oxidation import best_oxidation_states, element_sum_table, pymatgen_oxidation_states
    from crystalgnn.discovery.volume import pymatgen_rls_volume, rls_volume

    log: dict[str, Any] = {}
    pool = electrode_formulas()
    sample = random.Random(args.seed).sample(pool, min(args.formulas, len(pool)))
    pymatgen_oxidation_states("NaCl")  # pymatgen's occurrence table loads once, outside the timings
    element_sum_table.cache_clear()
    new, t_cold = per_call(best_oxidation_states, sample)
    _, t_warm = per_call(best_oxidation_states, sample)
    old, t_old = per_call(pymatgen_oxidation_states, sample)
    same = sum(a == b for a, b in zip(old, new, strict=True))
    log["oxidation"] = {
        "formulas": len(sample),
        "identical": same,
        "solved": sum(g is not None for g in old),
        "pymatgen": summary(t_old),
        "new_cold_tables": summary(t_cold),
        "new_warm_tables": summary(t_warm),
        "element_tables": element_sum_table.cache_info().currsize,
    }
    print(json.dumps(log["oxidation"], indent=1), flush=True)

    pairs = []
    for host in cathode_examples().values():
        for el in host.composition.elements:
            for new_el in SUBSTITUTIONS.get(el.symbol, []):
                product = host.copy()
                product.replace_species({el.symbol: new_el})
                pairs.append((product, host))
    items = pairs * args.repeats
    fast, t_fast = per_call(lambda p: rls_volume(*p), items)  # first call per pair fills the caches
    slow, t_slow = per_call(lambda p: pymatgen_rls_volume(*p), items)
    agree = [f is None or abs(f - s) <= 1e-12 * abs(s) for f, s in zip(fast, slow, strict=True)]
    log["rls_volume"] = {
        "pairs": len(pairs),
        "calls": len(items),
        "fast_path_calls": sum(f is not None for f in fast),
        "agree_rel_1e-12": sum(agree),
        "pymatgen": summary(t_slow),
        "new": summary([t for t, f in zip(t_fast, fast, strict=True) if f is not None]),
    }
    print(json.dumps(log["rls_volume"], indent=1), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(log, indent=1), encoding="utf-8")
    print("wrote", out)


if __name__ == "__main__":
    main()
