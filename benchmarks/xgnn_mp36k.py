"""XGNN on mp-36k (10k subset), step 3: explain the four label classifiers and test the thesis' claims.

Steps (see benchmarks/RESULTS.md, section 10):
  1. python benchmarks/xgnn_mp36k_prepare.py      (median-split tables + label atom_init files)
  2. benchmarks/xgnn_mp36k_train.sh                (4 CGCNN classifiers, one thread)
  3. python benchmarks/xgnn_mp36k.py [OUT] [ITERATIONS]   (this script; one thread)

For each classifier (band gap / formation energy x group / period labels) it trains one
generator per class (0 = below the training median, 1 = above), keeps up to 150 graphs with
p > 0.8, writes the summaries to OUT/explain/<target>-<labels>/ and prints: the classifier's test
accuracy, the generator's final training probability, kept/sampled graphs, and the counts behind
the claims (i) metals and metal-metal bonds more frequent in low-gap explanations; (ii) period-2
atoms and group 16-17 - metal bonds more frequent in low-formation-energy explanations. The same
fractions over the structures of each class of the data are printed for reference.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from crystalgnn.explain.xgnn import XGNNConfig, explain_model, prepare
from crystalgnn.explain.xgnn_labels import METAL_GROUPS, element_label
from crystalgnn.explain.xgnn_summary import explanation_statistics, write_summary

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out/xgnn")
ITERATIONS = int(sys.argv[2]) if len(sys.argv) > 2 else 150
RUNS = sys.argv[3] if len(sys.argv) > 3 else "runs"
TARGETS = ("band_gap", "formation_energy_per_atom")
torch.set_num_threads(1)


def data_fractions(table: Path, column: str) -> dict[str, dict[str, float]]:
    """Per class of the table: fraction of atoms in metal groups, in groups 16-17, in period 2."""
    from pymatgen.core import Structure

    sums = {0: np.zeros(3), 1: np.zeros(3)}
    counts = {0: 0, 1: 0}
    with gzip.open(table, "rt") as f:
        for k, line in enumerate(f):
            if k >= 3000:
                break
            row = json.loads(line)
            zs = Structure.from_str(row["cif"], fmt="cif").atomic_numbers
            g = [element_label(z, "group") + 1 for z in zs]
            p = [element_label(z, "period") + 1 for z in zs]
            sums[row[column]] += [
                np.mean([x in METAL_GROUPS for x in g]),
                np.mean([x in (16, 17) for x in g]),
                np.mean([x == 2 for x in p]),
            ]
            counts[row[column]] += 1
    return {
        ("low", "high")[c]: dict(zip(("metal", "group16_17", "period2"), (s / max(counts[c], 1)).tolist(), strict=True))
        for c, s in sums.items()
    }


def main() -> None:
    summary: dict[str, object] = {}
    for target in TARGETS:
        table = OUT / target / f"{target}_median_split.jsonl.gz"
        for kind in ("group", "period"):
            run = OUT / RUNS / f"{target}-{kind}"
            if not (run / "metrics.json").is_file():
                print(f"{run}: not trained, skipped")
                continue
            acc = json.loads((run / "metrics.json").read_text())["test"]["accuracy"]
            t0 = time.time()
            setup = prepare(run, kind, data=table, max_structures=1000)
            results = {}
            for cls in (0, 1):
                cfg = XGNNConfig(iterations=ITERATIONS, seed=cls)
                results[cls] = explain_model(setup, None, cls, 150, 0.8, config=cfg, max_samples=5000)
            write_summary(results, OUT / "explain" / f"{RUNS}-{target}-{kind}", title=f"{target} ({kind} labels)")
            stats = {("low", "high")[c]: explanation_statistics(r) for c, r in results.items()}
            final = {("low", "high")[c]: float(np.mean(r.history[-10:])) for c, r in results.items()}
            summary[f"{target}-{kind}"] = {"test_accuracy": acc, "final_train_p": final, "stats": stats,
                                           "seconds": round(time.time() - t0, 1)}  # fmt: skip
            print(f"\n## {target}, {kind} labels: test accuracy {acc:.3f}, {time.time() - t0:.0f} s")
            for name, st in stats.items():
                extra = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in st.items()}
                print(f"  {name}: final training p {final[name]:.3f}; {extra}")
    for target in TARGETS:
        column = f"{target}_high"
        summary[f"data-{target}"] = data_fractions(OUT / target / f"{target}_median_split.jsonl.gz", column)
        print(f"data {target} (mean atom fractions per structure, first 3000 rows):", summary[f"data-{target}"])
    (OUT / f"xgnn_summary_{RUNS}.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
