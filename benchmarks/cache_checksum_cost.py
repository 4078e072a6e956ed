"""What the graph cache's record checksums cost on a warm load.

Fills a temporary cache with the perovskites' graphs (8,596 structures), then times warm loads
(``build_graph_list`` with every graph in the cache: hashing, LMDB reads, checksum, unpacking)
with the CRC-32 verification on and off, alternating, five of each; reports the medians, their
ranges, and the time of the checksums alone (``damaged_records`` over all records).

    python benchmarks/cache_checksum_cost.py            # perovskites
    python benchmarks/cache_checksum_cost.py --limit 1000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")

from crystalgnn.data.readers import load_source
from crystalgnn.graphs import cache as cache_module
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.cache import GraphCache
from crystalgnn.graphs.columns import damaged_records
from crystalgnn.graphs.crystal_graph import GraphConfig

REPEATS = 5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="perovskites")
    ap.add_argument("--limit", type=int, default=None, help="first N structures only")
    args = ap.parse_args()
    ds = load_source(args.dataset)
    structures = ds.structures[: args.limit] if args.limit else ds.structures
    cfg = GraphConfig()
    tmp = Path(tempfile.mkdtemp(prefix="cg-crc-"))
    try:
        cache = GraphCache(tmp / "graphs.lmdb")
        _, rep = build_graph_list(structures, cfg, cache=cache)  # fill the cache
        n = len(structures)
        keys = [k for k in rep.keys if k is not None]
        times: dict[str, list[float]] = {"verified": [], "unverified": []}
        for _ in range(REPEATS):
            for name, verify in (("verified", True), ("unverified", False)):
                cache_module._VERIFY = verify
                t = time.perf_counter()
                graphs, warm = build_graph_list(structures, cfg, cache=cache)
                times[name].append(time.perf_counter() - t)
                assert warm.n_from_cache == len(keys) and warm.n_built == 0
                del graphs
        cache_module._VERIFY = True
        records = cache.get_many(keys)
        crc_s = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            assert not damaged_records(records)
            crc_s.append(time.perf_counter() - t)
        out = {
            "dataset": args.dataset,
            "structures": n,
            "graphs_in_cache": len(keys),
            "record_bytes_mean": round(sum(len(r) for r in records if r is not None) / len(keys), 1),
        }
        for name, ts in times.items():
            med = statistics.median(ts)
            out[f"warm_{name}_s"] = round(med, 4)
            out[f"warm_{name}_graphs_per_s"] = round(n / med, 1)
            out[f"warm_{name}_graphs_per_s_range"] = [round(n / max(ts), 1), round(n / min(ts), 1)]
        out["checksums_alone_s"] = round(statistics.median(crc_s), 4)
        out["checksum_share_of_warm_load"] = round(statistics.median(crc_s) / out["warm_verified_s"], 4)
        cache.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
