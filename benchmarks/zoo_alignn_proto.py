"""Prototype for the lead (issue 15): a fused edge-gated graph convolution for ALIGNN.

``EdgeGatedGraphConv.forward`` (src/crystalgnn/models/alignn.py) runs, per layer, five node
``Linear`` calls and two gathers by ``src`` (``gate_src(x)[src]``, ``update_nbr(x)[src]``) plus one
by ``dst``, then two ``index_add_`` (numerator and denominator). On the line graph (|T| ~ 14 |E|,
256 channels) the gathers and scatters of (|T|, 256) tensors dominate. The fused variant computes
``[gate_src | update_nbr](x)`` as one (C, 2C) matmul, gathers it once by ``src``, and scatters
``[sigma * Vh | sigma]`` with one ``index_add_`` of width 2C. Same weights, same maths: outputs
agree to float32 round-off. The script times forward + backward both ways (alternating, one
thread) on a real batch's line graph and does not change the model.

    PYTHONPATH=src .venv/bin/python benchmarks/zoo_alignn_proto.py --batch 64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from crystalgnn.data.catalog import catalog_path
from crystalgnn.data.readers import iter_table_rows, read_table
from crystalgnn.graphs.batching import collate_graphs
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.line_graph import line_graph, symmetrize_edges
from crystalgnn.models.alignn import EdgeGatedGraphConv
from crystalgnn.models.registry import make_config


def fused_forward(conv: EdgeGatedGraphConv, x: Tensor, edge_index: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
    """``EdgeGatedGraphConv.forward`` with the src-side linears and the two scatters fused."""
    src, dst = edge_index
    c = conv.channels
    w = torch.cat((conv.gate_src.weight, conv.update_nbr.weight))
    b = torch.cat((conv.gate_src.bias, conv.update_nbr.bias))
    src_terms = F.linear(x, w, b)[src]  # (M, 2C): one gather instead of two
    m = src_terms[:, :c] + conv.gate_dst(x)[dst] + conv.gate_edge(e)
    sigma = torch.sigmoid(m)
    both = x.new_zeros(x.shape[0], 2 * c).index_add_(0, dst, torch.cat((sigma * src_terms[:, c:], sigma), dim=1))
    h = conv.update_self(x) + both[:, :c] / (both[:, c:] + 1e-6)
    x_new = x + F.silu(conv.bn_nodes(h))
    assert conv.bn_edges is not None
    return x_new, e + F.silu(conv.bn_edges(m))


def index_select_forward(conv: EdgeGatedGraphConv, x: Tensor, edge_index: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
    """``EdgeGatedGraphConv.forward`` with ``t.index_select(0, i)`` for ``t[i]``: the same values,
    but the backward is an ``index_add_`` instead of advanced indexing's ``index_put_`` with
    accumulation.
    """
    src, dst = edge_index
    m = conv.gate_src(x).index_select(0, src) + conv.gate_dst(x).index_select(0, dst) + conv.gate_edge(e)
    sigma = torch.sigmoid(m)
    msg = sigma * conv.update_nbr(x).index_select(0, src)
    num = x.new_zeros(x.shape[0], conv.channels).index_add_(0, dst, msg)
    den = x.new_zeros(x.shape[0], conv.channels).index_add_(0, dst, sigma)
    h = conv.update_self(x) + num / (den + 1e-6)
    x_new = x + F.silu(conv.bn_nodes(h))
    assert conv.bn_edges is not None
    return x_new, e + F.silu(conv.bn_edges(m))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    src = catalog_path("perovskites")
    rows = (r for _, r in zip(range(args.batch), iter_table_rows(src), strict=False))
    structures = read_table(src, structure_column="cif", rows=rows, name="perovskites").structures
    graphs, _ = build_graph_list(structures, make_config("alignn", {}).graph_config(), n_jobs=1, show_progress=False)
    b = collate_graphs([g for g in graphs if g is not None])
    ei, shift, _ = symmetrize_edges(b.edge_index, b.edge_shift, b.edge_vec)
    li = line_graph(ei, b.num_nodes, edge_shift=shift)
    conv = EdgeGatedGraphConv(256)  # the line-graph half of an ALIGNN layer: "nodes" are bonds
    x = torch.randn(ei.shape[1], 256, requires_grad=True)
    t = torch.randn(li.shape[1], 256, requires_grad=True)
    ref = conv(x, li, t)
    new = fused_forward(conv, x, li, t)
    err = max(float((a - c).detach().abs().max()) for a, c in zip(ref, new, strict=True))
    sel = index_select_forward(conv, x, li, t)
    err_sel = max(float((a - c).detach().abs().max()) for a, c in zip(ref, sel, strict=True))

    def step(fn) -> float:
        t0 = time.perf_counter()
        out = fn(x, li, t)
        (out[0].sum() + out[1].sum()).backward()
        return time.perf_counter() - t0

    step(conv)
    step(lambda *a: fused_forward(conv, *a))
    step(lambda *a: index_select_forward(conv, *a))
    t_ref, t_new, t_sel = [], [], []
    for _ in range(args.repeats):  # alternate so load hits all alike
        t_ref.append(step(conv))
        t_new.append(step(lambda *a: fused_forward(conv, *a)))
        t_sel.append(step(lambda *a: index_select_forward(conv, *a)))
    r, s, q = statistics.median(t_ref), statistics.median(t_new), statistics.median(t_sel)
    print(
        f"EGGC on the line graph ({ei.shape[1]} bonds, {li.shape[1]} triplets, C=256) fwd+bwd, 1 thread: "
        f"current {1000 * r:.0f} ms; fused {1000 * s:.0f} ms, ratio {s / r:.2f}, max |diff| {err:.1e}; "
        f"index_select {1000 * q:.0f} ms, ratio {q / r:.2f}, max |diff| {err_sel:.1e}"
    )


if __name__ == "__main__":
    main()
