"""Profile one training step of our ALIGNN, MEGNet and SchNet (issue 15): torch.profiler, one
torch thread, a batch of 64 perovskites; top operators by self CPU time, and for ALIGNN the cost of
the graph preparation done in the forward pass (edge doubling, line graph, bond cosines).

    PYTHONPATH=src .venv/bin/python benchmarks/zoo_profile.py --models alignn megnet schnet \
        --out benchmarks/out/zoo-profile

Writes ``<model>.txt`` (the profiler table) per model and prints a summary.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")

import torch
from torch.profiler import ProfilerActivity, profile

from crystalgnn.data.catalog import catalog_path
from crystalgnn.data.readers import iter_table_rows, read_table
from crystalgnn.graphs.atom_features import AtomFeaturizer
from crystalgnn.graphs.batching import collate_graphs
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.line_graph import _bond_ids, bond_cosines, line_graph, symmetrize_edges
from crystalgnn.models.registry import build_model, make_config


def perovskites(n: int):
    src = catalog_path("perovskites")
    rows = (r for _, r in zip(range(n), iter_table_rows(src), strict=False))
    return read_table(src, structure_column="cif", rows=rows, name="perovskites").structures


def median_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def profile_model(name: str, structures, batch_size: int, out: Path, top: int) -> None:
    cfg = make_config(name, {})
    graphs, _ = build_graph_list(structures, cfg.graph_config(), n_jobs=1, show_progress=False)
    batch = collate_graphs([g for g in graphs if g is not None][:batch_size])
    table = torch.tensor(AtomFeaturizer.cgcnn().matrix(), dtype=torch.float32)
    torch.manual_seed(0)
    model = build_model(name, cfg, table, out_dim=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        pred = model(batch).view(-1)
        loss = torch.nn.functional.mse_loss(pred, torch.zeros_like(pred))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    t_step = median_time(step, 2)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        step()
    text = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)
    (out / f"{name}.txt").write_text(text)
    print(f"## {name}: training step {t_step:.3f} s (median of 2), batch {batch_size}, 1 thread")
    print(text)
    if name == "alignn":
        e, shift, vec = batch.edge_index, batch.edge_shift, batch.edge_vec
        t_sym = median_time(lambda: symmetrize_edges(e, shift, vec))
        e2, s2, v2 = symmetrize_edges(e, shift, vec)
        t_lg = median_time(lambda: line_graph(e2, batch.num_nodes, edge_shift=s2))
        li = line_graph(e2, batch.num_nodes, edge_shift=s2)
        t_cos = median_time(lambda: bond_cosines(v2, li))
        s_all, d_all, sh_all = torch.cat((e[0], e[1])), torch.cat((e[1], e[0])), torch.cat((shift, -shift))
        rows = torch.cat((s_all[:, None], d_all[:, None], sh_all), dim=1)
        t_rows = median_time(lambda: torch.unique(rows, dim=0, return_inverse=True))
        t_key = median_time(lambda: _bond_ids(s_all, d_all, sh_all))
        print(
            f"edge doubling's unique: previous torch.unique(dim=0) {1000 * t_rows:.1f} ms, "
            f"packed 1-D key {1000 * t_key:.1f} ms"
        )
        print(
            f"ALIGNN graph preparation per batch: symmetrize_edges {1000 * t_sym:.1f} ms, "
            f"line_graph {1000 * t_lg:.1f} ms, bond_cosines {1000 * t_cos:.1f} ms; "
            f"{e.shape[1]} -> {e2.shape[1]} edges, {li.shape[1]} triplets"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["alignn", "megnet", "schnet"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", default="benchmarks/out/zoo-profile")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    structures = perovskites(args.batch)
    for name in args.models:
        profile_model(name, structures, args.batch, out, args.top)


if __name__ == "__main__":
    main()
