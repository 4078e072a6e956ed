"""Prepare the XGNN benchmark: median-split tables of mp-36k (10k subset) and label atom_init files.

Run: PYTHONPATH=src python benchmarks/xgnn_mp36k_prepare.py [OUT]  (default benchmarks/out/xgnn)
"""

from __future__ import annotations

import sys
from pathlib import Path

from crystalgnn.explain.xgnn_data import median_split_table
from crystalgnn.explain.xgnn_labels import write_label_atom_init

out = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/out/xgnn")
for kind in ("group", "period"):
    write_label_atom_init(kind, out / f"atom_init_{kind}.json")
for target in ("band_gap", "formation_energy_per_atom"):
    res = median_split_table("mp-36k", target, out / target, subset=10000, subset_seed=0, seed=0)
    print(f"{target}: median {res.median:.4f}, counts {res.counts}, table {res.table}")
