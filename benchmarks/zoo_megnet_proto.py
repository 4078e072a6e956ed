"""Prototype for the lead (issue 15): MEGNet's edge update with the first dense layer split.

``MEGNetBlock.forward`` (src/crystalgnn/models/megnet.py) computes
``phi_e(cat(x[dst], x[src], e, u[edge_batch]))``: the first layer multiplies an (|E|, 4 n2) matrix.
Linear algebra gives the same pre-activation as

    (x W_d)[dst] + (x W_s)[src] + e W_e + (u W_u)[edge_batch] + b

(W split by input columns), where the node and state terms are computed once per atom / structure
(|V| ~ |E| / 14 on the perovskite graphs) and no (|E|, 4 n2) concatenation is made. This script
times one block's forward + backward both ways on a real batch (one thread) and checks the outputs
agree to float32 round-off. It does not change the model.

    PYTHONPATH=src .venv/bin/python benchmarks/zoo_megnet_proto.py --batch 64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from crystalgnn.data.catalog import catalog_path
from crystalgnn.data.readers import iter_table_rows, read_table
from crystalgnn.graphs.batching import collate_graphs
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.models.megnet import MEGNetBlock
from crystalgnn.models.registry import make_config


def split_forward(block: MEGNetBlock, x: Tensor, e: Tensor, u: Tensor, edge_index: Tensor, batch: Tensor):
    """``MEGNetBlock.forward`` with phi_e's first layer applied per atom / per structure."""
    src, dst = edge_index
    n = x.shape[1]
    edge_batch = batch[dst]
    first = block.phi_e.layers[0]
    w_d, w_s, w_e, w_u = first.weight.split([n, n, e.shape[1], u.shape[1]], dim=1)
    h = (x @ w_d.T)[dst] + (x @ w_s.T)[src] + torch.addmm(first.bias, e, w_e.T) + (u @ w_u.T)[edge_batch]
    layers = block.phi_e.layers
    for k in range(1, len(layers)):
        h = layers[k](block.phi_e.act(h))
    e_new = h
    b_ev = scatter(e_new, dst, dim=0, dim_size=x.shape[0], reduce="mean")
    x_new = block.phi_v(torch.cat((b_ev, x, u[batch]), dim=-1))
    b_eu = scatter(e_new, edge_batch, dim=0, dim_size=u.shape[0], reduce="mean")
    b_vu = scatter(x_new, batch, dim=0, dim_size=u.shape[0], reduce="mean")
    return x_new, e_new, block.phi_u(torch.cat((b_eu, b_vu, u), dim=-1))


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    src = catalog_path("perovskites")
    rows = (r for _, r in zip(range(args.batch), iter_table_rows(src), strict=False))
    structures = read_table(src, structure_column="cif", rows=rows, name="perovskites").structures
    cfg = make_config("megnet", {"radius": 4.0, "gaussian_max": 5.0})
    graphs, _ = build_graph_list(structures, cfg.graph_config(), n_jobs=1, show_progress=False)
    b = collate_graphs([g for g in graphs if g is not None])
    block = MEGNetBlock(32, 32, 32, [64, 64, 32])
    x = torch.randn(b.num_nodes, 32, requires_grad=True)
    e = torch.randn(b.edge_index.shape[1], 32, requires_grad=True)
    u = torch.randn(b.num_graphs, 32, requires_grad=True)

    def run(fn):
        def go():
            out = fn(x, e, u, b.edge_index, b.batch)
            sum(o.sum() for o in out).backward()

        return go

    ref = block(x, e, u, b.edge_index, b.batch)
    new = split_forward(block, x, e, u, b.edge_index, b.batch)
    err = max(float((a - c).detach().abs().max()) for a, c in zip(ref, new, strict=True))
    for _ in range(3):
        run(block)()
        run(lambda *a: split_forward(block, *a))()
    t_ref, t_new = [], []
    for _ in range(3):  # alternate so load hits both alike
        t_ref.append(timed(run(block), args.repeats))
        t_new.append(timed(run(lambda *a: split_forward(block, *a)), args.repeats))
    r, s = statistics.median(t_ref), statistics.median(t_new)
    print(
        f"MEGNet block fwd+bwd, {b.num_nodes} atoms, {b.edge_index.shape[1]} edges, 1 thread: "
        f"concat {1000 * r:.2f} ms, split {1000 * s:.2f} ms, ratio {s / r:.2f}; max |diff| {err:.1e}"
    )


if __name__ == "__main__":
    main()
