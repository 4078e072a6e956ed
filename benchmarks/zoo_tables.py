"""Markdown tables from ``benchmarks/zoo_throughput.py``'s ``results.jsonl`` (issue 15).

    python benchmarks/zoo_tables.py benchmarks/out/zoo/results.jsonl

Speeds are medians over runs; a ratio is ours' time / the peer's time (below 1: ours faster),
taken per alternating pair and its median reported (with the range over pairs).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pair_ratios(rows: list[dict], model: str, batch: int, key: str, ours_model: str | None = None) -> list[float]:
    """time(ours) / time(peer) = speed(peer) / speed(ours), per pair."""
    rows = [r for r in rows if r["batch"] == batch]
    ours = {r["pair"]: r[key] for r in rows if r["side"] == "ours" and r["model"] == (ours_model or model)}
    peer = {r["pair"]: r[key] for r in rows if r["side"] == "peer" and r["model"] == model}
    return [peer[p] / ours[p] for p in sorted(set(ours) & set(peer))]


def tables(rows: list[dict]) -> str:
    rows = [r for r in rows if "error" not in r]
    by: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    for r in rows:
        by[(r["side"], r["model"], r["batch"])].append(r)
    out = []
    out.append("| model | batch | side | runs | train crystals/s | predict crystals/s | time ratio train (range) | "
               "time ratio predict (range) | train ratio vs the compiled peer |")  # fmt: skip
    out.append("|---|---|---|---|---|---|---|---|---|")
    for (side, model, batch), rs in sorted(by.items(), key=lambda kv: (kv[0][2], kv[0][1], kv[0][0] != "ours")):
        tr, pr = "", ""
        base_name, _, suffix = model.partition("+")  # NAME+compile: the compiled model
        base = "alignn" if base_name == "alignn-directed" else base_name
        if side == "ours" and any(k == ("peer", base, batch) for k in by):  # against the eager peer
            rt = pair_ratios(rows, base, batch, "train_cps", model)
            rp = pair_ratios(rows, base, batch, "predict_cps", model)
            tr = f"{med(rt):.2f} ({min(rt):.2f}-{max(rt):.2f})" if rt else ""
            pr = f"{med(rp):.2f} ({min(rp):.2f}-{max(rp):.2f})" if rp else ""
        tc = ""
        if side == "ours" and any(k == ("peer", base + "+compile", batch) for k in by):
            rc = pair_ratios(rows, base + "+compile", batch, "train_cps", model)
            tc = f"{med(rc):.2f} ({min(rc):.2f}-{max(rc):.2f})" if rc else ""
        peer_name = {"megnet": "matgl MEGNet", "alignn": "alignn ALIGNN (pure)"}.get(base_name, base_name)
        name = (peer_name + (f" +{suffix}" if suffix else "")) if side == "peer" else model
        out.append(
            f"| {name} | {batch} | {side} | {len(rs)} | {med([r['train_cps'] for r in rs]):.1f} | "
            f"{med([r['predict_cps'] for r in rs]):.1f} | {tr} | {pr} | {tc} |"
        )
    out.append("")
    out.append("| model | side | params | edges / batch (model's) | triplets / batch | graph build ms/crystal | "
               "RSS after graphs MB | peak RSS training (batch) MB | training increment MB |")  # fmt: skip
    out.append("|---|---|---|---|---|---|---|---|---|")
    seen = set()
    for (side, model, _batch), rs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0] != "ours", kv[0][2])):
        if (side, model) in seen:
            continue
        seen.add((side, model))
        mem = by.get((side, model, 64), rs)
        r0 = rs[0]
        edges = r0.get("model_edges_per_batch", r0["edges_per_batch"])
        out.append(
            f"| {model} | {side} | {r0['n_params']:,} | {edges:,} (b{r0['batch']}) | "
            f"{r0.get('triplets_per_batch', '')} | {med([r['build_ms_per_crystal'] for r in rs]):.2f} | "
            f"{med([r['rss_after_build_mb'] for r in mem]):.0f} | {med([r['peak_rss_train_mb'] for r in mem]):.0f} "
            f"(b{mem[0]['batch']}) | {med([r['peak_rss_train_mb'] - r['rss_after_build_mb'] for r in mem]):.0f} |"
        )
    loads = [r["load1"] for r in rows if "load1" in r]
    out.append("")
    out.append(f"Load average (1 min) at the end of each run: median {med(loads):.1f}, range {min(loads):.1f}-"
               f"{max(loads):.1f} on 2 cores; every process used 1 torch thread.")  # fmt: skip
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", nargs="+")
    args = ap.parse_args()
    rows = [json.loads(line) for p in args.results for line in Path(p).read_text().splitlines() if line.strip()]
    print(tables(rows))


if __name__ == "__main__":
    main()
