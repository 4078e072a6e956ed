"""The explain masks leave the normal path unchanged: every zoo model's outputs and a CGCNN /
SchNet training-step time, saved from one source tree and compared on another.

    git archive <base> src | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before/src .venv/bin/python benchmarks/explain_fidelity_mask_overhead.py save
    PYTHONPATH=src .venv/bin/python benchmarks/explain_fidelity_mask_overhead.py compare
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from pymatgen.core import Structure
from torch_geometric.data import Batch

from crystalgnn.graphs.atom_features import AtomFeaturizer
from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.models.registry import build_model, make_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tinydata import perovskite_rows

REF = Path("/tmp/explain_mask_reference_outputs.pt")


def main() -> None:
    torch.set_num_threads(1)
    mode = sys.argv[1] if len(sys.argv) > 1 else "compare"
    structs = [Structure.from_str(r["cif"], fmt="cif") for r in perovskite_rows(32)]
    table = torch.tensor(AtomFeaturizer.cgcnn().matrix())
    out = {}
    for name in ("cgcnn", "megnet", "schnet", "alignn"):
        cfg = make_config(name)
        batch = Batch.from_data_list([build_graph(s, cfg.graph_config()) for s in structs[:8]])
        torch.manual_seed(0)
        model = build_model(name, cfg, table, out_dim=1).train()
        y_train = model(batch).detach()
        with torch.no_grad():
            out[name] = (y_train, model.eval()(batch))
    if mode == "save":
        torch.save(out, REF)
    else:
        ref = torch.load(REF)
        for name, (y_train, y_eval) in out.items():
            d_train = (y_train - ref[name][0]).abs().max().item()
            d_eval = (y_eval - ref[name][1]).abs().max().item()
            print(f"{name}: max |diff| train {d_train}, eval {d_eval}, identical {torch.equal(y_eval, ref[name][1])}")
    for name in ("cgcnn", "schnet"):
        cfg = make_config(name)
        batch = Batch.from_data_list([build_graph(s, cfg.graph_config()) for s in structs])
        torch.manual_seed(0)
        model = build_model(name, cfg, table, out_dim=1).train()
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        times = []
        for _ in range(25):
            t = time.perf_counter()
            opt.zero_grad()
            model(batch).pow(2).mean().backward()
            opt.step()
            times.append(time.perf_counter() - t)
        times = sorted(times[5:])
        print(f"{mode} {name}: training step median {1e3 * times[len(times) // 2]:.1f} ms, min {1e3 * times[0]:.1f} ms")


if __name__ == "__main__":
    main()
