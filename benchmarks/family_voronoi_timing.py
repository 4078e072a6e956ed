"""Voronoi neighbours of N perovskites (a seeded random subset): crystalgnn's builder vs pymatgen's VoronoiNN.

Times ``crystalgnn.graphs.voronoi.voronoi_neighbors`` (Qhull on the image-extended cell, array
arithmetic for the faces), the whole Voronoi graph build (``build_graph_list`` with
``GraphConfig(neighbors="voronoi")``, one process, no cache) and ``VoronoiNN.get_all_nn_info``
(pymatgen, the reference in the tests), and checks that both find the same faces with the same
weights::

    python benchmarks/family_voronoi_timing.py perovskites --n 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from crystalgnn.data.readers import load_source
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.crystal_graph import GraphConfig
from crystalgnn.graphs.voronoi import max_normalised, voronoi_neighbors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", help="dataset short name (perovskites)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--pymatgen-n", type=int, default=None, help="structures for VoronoiNN (default: --n)")
    args = ap.parse_args()
    from pymatgen.analysis.local_env import VoronoiNN

    structures = load_source(args.source, subset=args.n, n_jobs=1, show_progress=False).structures
    t = time.perf_counter()
    ours = [voronoi_neighbors(s.cart_coords, s.lattice.matrix) for s in structures]
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    _, report = build_graph_list(structures, GraphConfig(neighbors="voronoi", max_neighbors=None), n_jobs=1,
                                 show_progress=False)  # fmt: skip
    t_graph = time.perf_counter() - t
    m = args.pymatgen_n or len(structures)
    vnn = VoronoiNN(allow_pathological=True)
    t = time.perf_counter()
    refs = [vnn.get_all_nn_info(s) for s in structures[:m]]
    t_pmg = time.perf_counter() - t
    # VoronoiNN keeps the zero-area faces of degenerate (cubic) cells, weights of ~1e-16, which
    # crystalgnn drops (MIN_FRACTION): counted both ways
    worst, same_count, same_nonzero = 0.0, 0, 0
    for s, v, ref in zip(structures[:m], ours[:m], refs, strict=True):
        w = max_normalised(v.solid_angle, v.center, len(s))
        counts = np.bincount(v.center, minlength=len(s)).tolist()
        same_count += int(counts == [len(r) for r in ref])
        same_nonzero += int(counts == [sum(d["weight"] > 1e-6 for d in r) for r in ref])
        for i, site in enumerate(ref):
            a = np.sort(w[v.center == i])
            b = np.sort([d["weight"] for d in site if d["weight"] > 1e-6])
            if len(a) == len(b):
                worst = max(worst, float(np.abs(a - b).max()))
    n = len(structures)
    print(f"{n} structures ({sum(len(s) for s in structures)} atoms), {len(report.rejected)} rejected")
    print(f"voronoi_neighbors:        {t_ours:7.2f} s  ({1e3 * t_ours / n:.2f} ms per structure)")
    print(f"build_graph_list voronoi: {t_graph:7.2f} s  ({1e3 * t_graph / n:.2f} ms per structure)")
    print(f"pymatgen VoronoiNN:       {t_pmg:7.2f} s  ({1e3 * t_pmg / m:.2f} ms per structure, {m} structures)")
    print(
        f"same face counts: {same_count}/{m}; without VoronoiNN's zero-area faces (weight < 1e-6): {same_nonzero}/{m}"
    )
    print(f"largest weight difference: {worst:.2e}")


if __name__ == "__main__":
    main()
