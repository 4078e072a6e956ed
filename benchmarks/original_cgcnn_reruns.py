"""Re-run the original CGCNN code on the perovskites, several times, to see its own spread.

The issue's reference (test MAE 0.092 eV/cell at the original defaults) is one run of the
original code. This script runs that code again on the same data with different torch seeds, so
our numbers can be compared with its distribution instead of with one draw. It needs a checkout
of the original code (https://github.com/txie-93/cgcnn, MIT; not part of this repository) and
writes the CGCNN data folder it reads: ``id_prop.csv`` in the order of our data file (so the
original's ``random.seed(123)`` shuffle gives the split of ``benchmarks/original_split.py``),
one CIF per structure, and the reference ``atom_init.json`` from ``../shared/data/aux``.

    python benchmarks/original_cgcnn_reruns.py --cgcnn-repo PATH --seeds 1 2 3 4 --work /tmp/orig

Each run is ``python main.py --train-ratio 0.6 --val-ratio 0.2 --test-ratio 0.2 DATA`` (all
other options at the original defaults: SGD lr 0.01, momentum 0.9, batch 256, 30 epochs) in
its own folder, after ``torch.manual_seed(seed)`` (the original leaves torch unseeded), on one
torch thread; two runs go side by side on a 2-core machine (``--parallel``). The test MAE is read
from the ``output/test_results.csv`` the original writes. When ``torch_scatter`` (which the
original's current model imports) is not installed, a two-function stand-in with the same
results is put on its path.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"

#: a stand-in for torch_scatter's scatter_add / scatter_mean (dim 0, 1-D index), same numbers
SCATTER_SHIM = """import torch
def scatter_add(x, index, dim=0):
    return x.new_zeros((int(index.max()) + 1,) + tuple(x.shape[1:])).index_add_(0, index, x)
def scatter_mean(x, index, dim=0):
    s = scatter_add(x, index)
    n = torch.bincount(index, minlength=s.shape[0]).clamp(min=1).to(x.dtype)
    return s / n.view(-1, *([1] * (x.dim() - 1)))
"""

#: run the original main.py as a script after seeding torch (argv as the original CLI expects)
RUNNER = """import runpy, sys, torch
torch.manual_seed(int(sys.argv[1]))
torch.set_num_threads(1)
main = sys.argv[2]
sys.argv = [main] + sys.argv[3:]
runpy.run_path(main, run_name="__main__")
"""


def write_cgcnn_folder(out: Path, source: Path = SHARED / "castelli_perovskites_cdvae.jsonl.gz") -> int:
    """The original's data folder for the perovskites (``heat_all``); returns the row count."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with gzip.open(source, "rt") as f:
        for line in f:
            r = json.loads(line)
            rows.append(f"{r['id']},{r['heat_all']}\n")
            (out / f"{r['id']}.cif").write_text(r["cif"])
    (out / "id_prop.csv").write_text("".join(rows))
    shutil.copy(SHARED / "aux" / "cgcnn_atom_init.json", out / "atom_init.json")
    return len(rows)


def start_run(repo: Path, data: Path, seed: int, work: Path) -> tuple[subprocess.Popen, Path, float]:
    run_dir = work / f"seed{seed}"
    (run_dir / "output").mkdir(parents=True, exist_ok=True)
    (work / "runner.py").write_text(RUNNER)
    paths = [str(repo)]
    try:
        import torch_scatter  # noqa: F401
    except ImportError:
        shim = work / "shim"
        shim.mkdir(exist_ok=True)
        (shim / "torch_scatter.py").write_text(SCATTER_SHIM)
        paths.append(str(shim))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(work / "runner.py"), str(seed), str(repo / "main.py"),
           "--train-ratio", "0.6", "--val-ratio", "0.2", "--test-ratio", "0.2", str(data)]  # fmt: skip
    log = open(run_dir / "log.txt", "w")  # noqa: SIM115 - the child process writes it until it exits
    return subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT), run_dir, time.time()


def test_mae(run_dir: Path) -> float:
    """MAE of the original's ``output/test_results.csv`` (id, target, prediction)."""
    table = np.loadtxt(run_dir / "output" / "test_results.csv", delimiter=",", usecols=(1, 2))
    return float(np.abs(table[:, 0] - table[:, 1]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cgcnn-repo", type=Path, required=True, help="checkout of txie-93/cgcnn (main.py, cgcnn/)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--work", type=Path, default=Path("benchmarks/out/original_cgcnn"))
    ap.add_argument("--parallel", type=int, default=2, help="runs at a time (one torch thread each)")
    args = ap.parse_args()
    data = args.work / "perovskites"
    if not (data / "id_prop.csv").is_file():
        print("structures written:", write_cgcnn_folder(data))
    results = {}
    pending = list(args.seeds)
    while pending:
        batch, pending = pending[: args.parallel], pending[args.parallel :]
        runs = [(s, *start_run(args.cgcnn_repo.resolve(), data.resolve(), s, args.work)) for s in batch]
        for seed, proc, run_dir, t0 in runs:
            if proc.wait() != 0:
                raise SystemExit(f"seed {seed} failed; see {run_dir / 'log.txt'}")
            results[seed] = {"test_mae": round(test_mae(run_dir), 5), "wall_s": round(time.time() - t0, 1)}
            print(seed, results[seed], flush=True)
    maes = np.array([r["test_mae"] for r in results.values()])
    summary = {
        "runs": results,
        "mean": round(float(maes.mean()), 5),
        "std": round(float(maes.std(ddof=1)), 5) if len(maes) > 1 else None,
    }
    (args.work / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
