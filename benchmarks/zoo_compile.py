"""Training steps with and without ``torch.compile`` (issue 15): each zoo model on the same
batches, eager and compiled (``nn.Module.compile(dynamic=True)``, inductor's CPU kernels), in one
process and one thread, alternating rounds; prints the compile time (first compiled steps), the
median step time of each and the largest difference of the first step's loss.

    PYTHONPATH=src .venv/bin/python benchmarks/zoo_compile.py --models alignn megnet cgcnn schnet \
        --n 384 --batch 64 --steps 4 --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from zoo_throughput import load_structures, ours_setup


def step_time(model, batches, opt, steps: int) -> float:
    """Median seconds of ``steps`` training steps (forward, MSE against 0, backward, Adam)."""
    times = []
    for _ in range(steps):
        b = next(batches)
        t0 = time.perf_counter()
        loss = model(b).view(-1).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["alignn", "megnet", "cgcnn", "schnet"])
    ap.add_argument("--data", default="benchmarks/out/zoo/structures.json")
    ap.add_argument("--n", type=int, default=384)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    structures = load_structures(args.data)[: args.n]
    for name in args.models:
        torch.manual_seed(0)
        eager, batches, _, _, _, _ = ours_setup(name, structures, args.batch)
        compiled = copy.deepcopy(eager)
        compiled.compile(dynamic=True)
        first = next(batches)
        diff = (eager(first).view(-1) - compiled(first).view(-1)).abs().max().item()
        t0 = time.perf_counter()
        opt_c = torch.optim.Adam(compiled.parameters(), 1e-3)
        for _ in range(2):  # compiles forward and backward (and a second shape)
            step_time(compiled, batches, opt_c, 1)
        compile_s = time.perf_counter() - t0
        opt_e = torch.optim.Adam(eager.parameters(), 1e-3)
        step_time(eager, batches, opt_e, 1)
        med = {"eager": [], "compiled": []}
        for r in range(args.rounds):
            for side in ("eager", "compiled") if r % 2 == 0 else ("compiled", "eager"):
                m, o = (eager, opt_e) if side == "eager" else (compiled, opt_c)
                med[side].append(step_time(m, batches, o, args.steps))
        e, c = statistics.median(med["eager"]), statistics.median(med["compiled"])
        row = {"model": name, "batch": args.batch, "threads": args.threads, "compile_s": round(compile_s, 1),
               "eager_step_s": round(e, 4), "compiled_step_s": round(c, 4), "ratio": round(c / e, 3),
               "max_output_diff": diff}  # fmt: skip
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
