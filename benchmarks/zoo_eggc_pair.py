"""One edge-gated graph convolution, ours vs alignn's pure-torch one, at equal sizes (issue 15).

Isolates the layer that dominates ALIGNN's step: the line-graph half of an ALIGNN layer on a batch
of 64 perovskites' directed line graph (3,840 bonds, 46,080 triplets, 256 channels; a seeded
random graph of that size and in-degree 12). ``--side ours`` runs
``crystalgnn.models.alignn.EdgeGatedGraphConv`` (BatchNorm) in the project venv, ``--side peer``
``alignn.models.alignn_atomwise_pure.EdgeGatedGraphConvPure`` (LayerNorm) in the peer venv; the
driver alternates them in separate processes, one thread each, and prints the median of
forward + backward times.

    PYTHONPATH=src .venv/bin/python benchmarks/zoo_eggc_pair.py --pairs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def worker(side: str, repeats: int) -> list[float]:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    n, k, c = 3840, 12, 256
    dst = torch.arange(n).repeat_interleave(k)
    src = torch.randint(0, n, (n * k,))
    x = torch.randn(n, c, requires_grad=True)
    t = torch.randn(n * k, c, requires_grad=True)
    if side == "ours":
        from crystalgnn.models.alignn import EdgeGatedGraphConv

        conv = EdgeGatedGraphConv(c)
        ei = torch.stack((src, dst))

        def run():
            return conv(x, ei, t)
    else:
        from alignn.models.alignn_atomwise_pure import EdgeGatedGraphConvPure

        conv = EdgeGatedGraphConvPure(c, c)

        def run():
            return conv.forward_tensors(src, dst, n, x, t)

    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        a, b = run()
        (a.sum() + b.sum()).backward()
        if i:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", choices=("ours", "peer"))
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer-python", default="/work/peers-venv/bin/python")
    args = ap.parse_args()
    if args.side:
        print(json.dumps(worker(args.side, args.repeats)))
        return
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ratios, med = [], {"ours": [], "peer": []}
    for p in range(args.pairs):
        got = {}
        for side in ("ours", "peer") if p % 2 == 0 else ("peer", "ours"):
            py = args.peer_python if side == "peer" else sys.executable
            cmd = [py, __file__, "--side", side, "--repeats", str(args.repeats)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            got[side] = statistics.median(json.loads(out.stdout.strip().splitlines()[-1]))
            med[side].append(got[side])
        ratios.append(got["ours"] / got["peer"])
    print(
        f"EGGC fwd+bwd (3840 nodes, 46080 edges, C=256, 1 thread): ours {1000 * statistics.median(med['ours']):.0f} ms, "
        f"peer {1000 * statistics.median(med['peer']):.0f} ms; time ratio ours/peer median {statistics.median(ratios):.2f} "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}, {args.pairs} pairs)"
    )


if __name__ == "__main__":
    main()
