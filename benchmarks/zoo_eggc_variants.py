"""Where ALIGNN's edge-gated convolution spends the gap to alignn's (issue 15): our layer and
variants of it timed in one process, alternating, one thread, at the size of
``zoo_eggc_pair.py`` (3,840 nodes, 46,080 edges, 256 channels; forward + backward).

Variants (diagnostic; only ``ours`` is the model):
- ``ours``: ``crystalgnn.models.alignn.EdgeGatedGraphConv`` as it is;
- ``scatter``: the two sums with ``scatter_add_`` on an expanded index (as alignn's pure model)
  instead of ``index_add_``;
- ``layernorm``: LayerNorm instead of BatchNorm (alignn's pure model; a different model);
- ``compiled``: ``torch.compile(ours, dynamic=True)`` (inductor's fused CPU kernels).

    PYTHONPATH=src .venv/bin/python benchmarks/zoo_eggc_variants.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from crystalgnn.models.alignn import EdgeGatedGraphConv


class ScatterEGGC(EdgeGatedGraphConv):
    """``ours`` with ``scatter_add_`` sums (numerically the same sums, another kernel)."""

    def forward(self, x, edge_index, e):
        src, dst = edge_index
        m = self.gate_src(x)[src] + self.gate_dst(x)[dst] + self.gate_edge(e)
        sigma = torch.sigmoid(m)
        idx = dst.view(-1, 1).expand_as(sigma)
        num = x.new_zeros(x.shape[0], self.channels).scatter_add_(0, idx, sigma * self.update_nbr(x)[src])
        den = x.new_zeros(x.shape[0], self.channels).scatter_add_(0, idx, sigma)
        x_new = x + F.silu(self.bn_nodes(self.update_self(x) + num / (den + 1e-6)))
        return x_new, e + F.silu(self.bn_edges(m))


def layernorm_variant(c: int) -> EdgeGatedGraphConv:
    conv = EdgeGatedGraphConv(c)
    conv.bn_nodes, conv.bn_edges = nn.LayerNorm(c), nn.LayerNorm(c)  # type: ignore[assignment]
    return conv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--variants", nargs="+", default=["ours", "scatter", "layernorm", "compiled"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n, k, c = 3840, 12, 256
    dst = torch.arange(n).repeat_interleave(k)
    src = torch.randint(0, n, (n * k,))
    ei = torch.stack((src, dst))
    x = torch.randn(n, c, requires_grad=True)
    t = torch.randn(n * k, c, requires_grad=True)
    base = EdgeGatedGraphConv(c)
    make = {
        "ours": lambda: base,
        "scatter": lambda: ScatterEGGC(c),
        "layernorm": lambda: layernorm_variant(c),
        "compiled": lambda: torch.compile(base, dynamic=True),
    }
    convs = {v: make[v]() for v in args.variants}
    for v in ("scatter",):
        if v in convs:
            convs[v].load_state_dict(base.state_dict())
    outs = {}
    for v, conv in convs.items():  # warm-up (compiles) and outputs
        t0 = time.perf_counter()
        a, b = conv(x, ei, t)
        (a.sum() + b.sum()).backward()
        outs[v] = (a.detach(), b.detach())
        print(f"{v}: first call {time.perf_counter() - t0:.1f} s")
    for v in outs:
        if v != "layernorm":
            da = (outs[v][0] - outs["ours"][0]).abs().max().item()
            db = (outs[v][1] - outs["ours"][1]).abs().max().item()
            print(f"{v}: max |diff| vs ours {max(da, db):.2e}")
    times: dict[str, list[float]] = {v: [] for v in convs}
    for r in range(args.rounds):
        order = list(convs) if r % 2 == 0 else list(reversed(list(convs)))
        for v in order:
            t0 = time.perf_counter()
            a, b = convs[v](x, ei, t)
            (a.sum() + b.sum()).backward()
            times[v].append(time.perf_counter() - t0)
    ref = statistics.median(times["ours"]) if "ours" in times else None
    for v, ts in times.items():
        med = statistics.median(ts)
        rel = f", {med / ref:.2f} of ours" if ref else ""
        print(f"{v}: median {1000 * med:.0f} ms (min {1000 * min(ts):.0f}, {len(ts)} rounds{rel})")


if __name__ == "__main__":
    main()
