"""Do neighbour ties explain the perovskite MAE gap? Compares, per test perovskite of a run, the
12-neighbour multiset (element, distance) of our graphs with the original code's rule (pymatgen's
``get_all_neighbors(8)`` sorted by distance, first 12), and the test MAE of the two groups.

    python benchmarks/perovskite_ties.py benchmarks/out/perov-default/predictions.csv
"""

from __future__ import annotations

import collections
import sys

import numpy as np
import pandas as pd

from crystalgnn.data.readers import load_source
from crystalgnn.graphs.crystal_graph import GraphConfig, build_graph


def differs(structure) -> bool:
    g = build_graph(structure, GraphConfig())
    ours = collections.defaultdict(list)
    for j, i, d in zip(*g.edge_index.numpy(), g.edge_dist.numpy(), strict=True):
        ours[int(i)].append((int(g.z[j]), round(float(d), 3)))
    for i, nbrs in enumerate(structure.get_all_neighbors(8.0, include_index=True)):
        ref = sorted((structure[n[2]].specie.Z, round(n[1], 3)) for n in sorted(nbrs, key=lambda n: n[1])[:12])
        if ref != sorted(ours[i]):
            return True
    return False


def main() -> None:
    pred = pd.read_csv(sys.argv[1])
    ds = load_source("perovskites", show_progress=False)
    pos = {i: k for k, i in enumerate(ds.ids)}
    aff = np.array([differs(ds.structures[pos[str(i)]]) for i in pred["id"]])
    err = (pred["prediction"] - pred["target"]).abs().to_numpy()
    print(
        f"{aff.sum()} of {len(aff)} test structures keep different neighbours; "
        f"MAE {err[aff].mean():.4f} (those) vs {err[~aff].mean():.4f} (the rest), all {err.mean():.4f}"
    )


if __name__ == "__main__":
    main()
