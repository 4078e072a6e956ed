"""Zoo throughput on CPU (issue 15): crystals/s in training and prediction, peak memory and graph
building, for our four models and for the peers matgl MEGNet and alignn ALIGNN, side by side.

Every measurement runs in its own process with ONE torch thread (``torch.set_num_threads(1)``).
Ours run in the project's venv, the peers in the separate peer venv (``benchmarks/peers_env.sh``;
never a project dependency). Pairs alternate (A = ours, B = peer, the order flipping every pair)
so load from other processes on the shared 2-core machine hits both sides alike; the ratio A/B is
taken per pair and its median reported.

A worker process: parses the crystals, builds their graphs (timed, one process, no cache), then
runs ``warmup`` training steps and times ``steps`` more (each: collate a batch as the loader does,
forward, MSE loss, backward, Adam step); records max RSS after training (``ru_maxrss``), then times
one pass of prediction (``torch.no_grad``) over all crystals.

    # driver (project venv); peer workers are started with --peer-python
    PYTHONPATH=src .venv/bin/python benchmarks/zoo_throughput.py run --n 640 --pairs 3 \
        --out benchmarks/out/zoo
    # one worker by hand
    .venv/bin/python benchmarks/zoo_throughput.py worker --side ours --model alignn --batch 64 \
        --data benchmarks/out/zoo/structures.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")

#: peers, and the settings both sides share (cutoff, neighbours, widths, published defaults)
PEER_OF = {"megnet": "matgl-megnet", "alignn": "alignn-pure"}
OURS_OPTIONS: dict[str, dict[str, object]] = {
    # matgl MEGNet defaults: cutoff 4 Å, 100 Gaussians on [0, cutoff + 1] of width 0.5, 16-dim
    # embeddings, 3 blocks, (64, 32) / (64, 64, 32) / (32, 16) units, Set2Set 2 iterations
    "megnet": {"radius": 4.0, "gaussian_max": 5.0, "n_gaussians": 100, "gaussian_width": 0.5},
    "alignn": {},  # published defaults: 8 Å, 12 neighbours, hidden 256, 4 + 4 layers
    "alignn-directed": {"undirected": False},  # the same edge count as the peer's directed graph
    "cgcnn": {},
    "schnet": {},
}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_structures(path: str):
    from pymatgen.core import Structure

    return [Structure.from_dict(d) for d in json.loads(Path(path).read_text())]


# --------------------------------------------------------------------------------------- ours
def ours_setup(model_name: str, structures, batch: int):
    import torch

    from crystalgnn.graphs.atom_features import AtomFeaturizer
    from crystalgnn.graphs.batching import collate_graphs
    from crystalgnn.graphs.builder import build_graph_list
    from crystalgnn.models.registry import build_model, make_config
    from crystalgnn.training.loaders import make_loader

    model_name = model_name.partition("+")[0]  # NAME+compile: compiled by the worker
    arch = "alignn" if model_name.startswith("alignn") else model_name
    cfg = make_config(arch, OURS_OPTIONS[model_name])
    t0 = time.perf_counter()
    graphs, _ = build_graph_list(structures, cfg.graph_config(), n_jobs=1, show_progress=False)
    build_s = time.perf_counter() - t0
    graphs = [g for g in graphs if g is not None]
    table = torch.tensor(AtomFeaturizer.cgcnn().matrix(), dtype=torch.float32)
    model = build_model(arch, cfg, table, out_dim=1)
    loader = make_loader(graphs, batch, shuffle=True, seed=0)
    info: dict[str, object] = {"n_graphs": len(graphs), "n_params": model.n_parameters()}
    first = collate_graphs(graphs[:batch])
    info["edges_per_batch"] = int(first.edge_index.shape[1])
    if arch == "alignn":
        e, _, line, _ = model.encoder.graphs(first)
        info["model_edges_per_batch"], info["triplets_per_batch"] = int(e.shape[1]), int(line.shape[1])

    def batches():
        while True:
            yield from loader

    return model, batches(), build_s, info, (lambda b: model(b).view(-1)), (lambda b: b.num_graphs)


# -------------------------------------------------------------------------------------- peers
def matgl_setup(structures, batch: int):
    import torch
    from matgl.ext.pymatgen import Structure2Graph, get_element_list
    from matgl.graph.data import collate_fn_graph
    from matgl.models import MEGNet

    elements = get_element_list(structures)
    conv = Structure2Graph(element_types=elements, cutoff=4.0)
    t0 = time.perf_counter()
    items = [conv.get_graph(s) for s in structures]
    build_s = time.perf_counter() - t0
    model = MEGNet(element_types=elements, cutoff=4.0, dim_node_embedding=16, dim_edge_embedding=100,
                   dim_state_embedding=2, nblocks=3, gauss_width=0.5)  # fmt: skip
    data = [(g, lat, torch.tensor(s, dtype=torch.float32), {"y": 0.0}) for g, lat, s in items]
    info = {"n_graphs": len(data), "n_params": sum(p.numel() for p in model.parameters())}
    info["edges_per_batch"] = int(collate_fn_graph(data[:batch])[0].edge_index.shape[1])

    def batches():
        gen = torch.Generator().manual_seed(0)
        while True:
            order = torch.randperm(len(data), generator=gen).tolist()
            for k in range(0, len(order) - batch + 1, batch):
                yield collate_fn_graph([data[i] for i in order[k : k + batch]])

    def forward(b):  # as matgl's ModelLightningModule.forward: positions and image shifts, then the model
        g, lat, state, _ = b
        node_lat = lat[g.batch]
        g.pos = (g.frac_coords.unsqueeze(-1) * node_lat).sum(dim=1)
        g.pbc_offshift = (g.pbc_offset.unsqueeze(-1) * lat[g.batch[g.edge_index[0]]]).sum(dim=1)
        return model(g, state_attr=state).view(-1)

    return model, batches(), build_s, info, forward, (lambda b: int(b[0].num_graphs))


def alignn_setup(structures, batch: int):
    import torch
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure, ALIGNNAtomWisePureConfig
    from alignn.torch_graph_builder import batch_torch_graph_pairs, build_pure_torch_graph
    from jarvis.core.atoms import Atoms

    def jatoms(s):
        return Atoms(lattice_mat=s.lattice.matrix, coords=s.frac_coords,
                     elements=[site.specie.symbol for site in s], cartesian=False)  # fmt: skip

    t0 = time.perf_counter()
    pairs = [build_pure_torch_graph(jatoms(s), two_body_cutoff=8.0, max_neighbors=12) for s in structures]
    build_s = time.perf_counter() - t0
    # the classic ALIGNN property model's sizes (ALIGNNConfig defaults) on the DGL-free implementation
    cfg = ALIGNNAtomWisePureConfig(
        name="alignn_atomwise_pure", alignn_layers=4, gcn_layers=4, atom_input_features=92,
        edge_input_features=80, triplet_input_features=40, embedding_features=64, hidden_features=256,
        calculate_gradient=False, gradwise_weight=0.0, use_penalty=False, energy_mult_natoms=False,
        use_zbl=False, three_body_cutoff=8.0,
    )  # fmt: skip
    model = ALIGNNAtomWisePure(cfg)
    g0, lg0 = batch_torch_graph_pairs(pairs[:batch])
    info = {"n_graphs": len(pairs), "n_params": sum(p.numel() for p in model.parameters()),
            "edges_per_batch": g0.num_edges, "model_edges_per_batch": g0.num_edges,
            "triplets_per_batch": lg0.num_edges}  # fmt: skip

    def batches():
        gen = torch.Generator().manual_seed(0)
        while True:
            order = torch.randperm(len(pairs), generator=gen).tolist()
            for k in range(0, len(order) - batch + 1, batch):
                yield batch_torch_graph_pairs([pairs[i] for i in order[k : k + batch]])

    def forward(b):
        g, lg = b
        return model((g, lg, None))["out"].view(-1)

    return model, batches(), build_s, info, forward, (lambda b: b[0].batch_size)


# ------------------------------------------------------------------------------------- worker
def worker(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    structures = load_structures(args.data)
    rss0 = rss_mb()
    if args.side == "ours":
        model, stream, build_s, info, forward, size = ours_setup(args.model, structures, args.batch)
    elif args.model.partition("+")[0] == "megnet":
        model, stream, build_s, info, forward, size = matgl_setup(structures, args.batch)
    else:
        model, stream, build_s, info, forward, size = alignn_setup(structures, args.batch)
    if args.model.endswith("+compile"):  # as train --compile, either side; the warm-up steps compile
        model.compile(dynamic=True)
    rss_built = rss_mb()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    times = []
    for k in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        b = next(stream)
        pred = forward(b)
        loss = torch.nn.functional.mse_loss(pred, torch.zeros_like(pred))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if k >= args.warmup:
            times.append(time.perf_counter() - t0)
    rss_train = rss_mb()
    model.eval()
    n_pred, t_pred = 0, 0.0
    n_batches = max(1, len(structures) // args.batch)
    with torch.no_grad():
        forward(next(stream))  # warm-up
        for _ in range(n_batches):
            t0 = time.perf_counter()
            b = next(stream)
            forward(b)
            t_pred += time.perf_counter() - t0
            n_pred += size(b)
    step = statistics.median(times)
    return {
        "side": args.side, "model": args.model, "batch": args.batch, "threads": torch.get_num_threads(),
        "train_step_s": times, "train_cps": args.batch / step, "predict_cps": n_pred / t_pred,
        "build_ms_per_crystal": 1000 * build_s / len(structures), "rss_start_mb": rss0,
        "rss_after_build_mb": rss_built, "peak_rss_train_mb": rss_train, **info,
    }  # fmt: skip


# ------------------------------------------------------------------------------------- driver
def write_structures(n: int, path: Path) -> None:
    from crystalgnn.data.catalog import catalog_path
    from crystalgnn.data.readers import iter_table_rows, read_table

    src = catalog_path("perovskites")
    rows = (r for _, r in zip(range(n), iter_table_rows(src), strict=False))
    ds = read_table(src, structure_column="cif", rows=rows, name="perovskites")
    path.write_text(json.dumps([s.as_dict() for s in ds.structures]))


def spawn(args: argparse.Namespace, side: str, model: str, batch: int, data: Path) -> dict:
    py = args.peer_python if side == "peer" else sys.executable
    cmd = [py, __file__, "worker", "--side", side, "--model", model, "--batch", str(batch), "--data", str(data),
           "--warmup", str(args.warmup), "--steps", str(args.steps)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        return {"side": side, "model": model, "batch": batch, "error": out.stderr.strip().splitlines()[-1:]}
    res: dict = json.loads(out.stdout.strip().splitlines()[-1])
    res["load1"] = os.getloadavg()[0]
    return res


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "structures.json"
    if not data.exists():
        write_structures(args.n, data)
    log = out / "results.jsonl"
    for batch in args.batches:
        for model in args.models:
            sides = [("ours", model + args.variant)]
            if model in PEER_OF and not args.no_peers:
                sides.append(("peer", model))
                if args.compile_peers:
                    sides.append(("peer", model + "+compile"))
            if model == "alignn":  # ours on the peer's directed graph: equal edges and triplets
                sides.append(("ours", "alignn-directed" + args.variant))
            for p in range(args.pair_offset, args.pair_offset + args.pairs):
                order = sides if p % 2 == 0 else sides[::-1]
                for side, m in order:
                    res = spawn(args, side, m, batch, data)
                    res["pair"] = p
                    with log.open("a") as fh:
                        fh.write(json.dumps(res) + "\n")
                    print(json.dumps({k: v for k, v in res.items() if k != "train_step_s"}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--side", choices=("ours", "peer"), required=True)
    w.add_argument("--model", required=True)
    w.add_argument("--batch", type=int, default=64)
    w.add_argument("--data", required=True)
    w.add_argument("--warmup", type=int, default=2)
    w.add_argument("--steps", type=int, default=5)
    r = sub.add_parser("run")
    r.add_argument("--n", type=int, default=640, help="perovskites (the first N of the file)")
    r.add_argument("--pairs", type=int, default=3)
    r.add_argument("--pair-offset", type=int, default=0, help="number of the first pair (to add pairs later)")
    r.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    r.add_argument("--models", nargs="+", default=["megnet", "alignn", "cgcnn", "schnet"])
    r.add_argument("--warmup", type=int, default=2)
    r.add_argument("--steps", type=int, default=5)
    r.add_argument("--peer-python", default="/work/peers-venv/bin/python")
    r.add_argument("--no-peers", action="store_true")
    r.add_argument("--compile", dest="variant", action="store_const", const="+compile", default="",
                   help="our models compiled (train --compile); use --warmup 2 or more")  # fmt: skip
    r.add_argument("--compile-peers", action="store_true", help="also the peers compiled the same way")
    r.add_argument("--out", default="benchmarks/out/zoo")
    args = ap.parse_args()
    if args.cmd == "worker":
        print(json.dumps(worker(args)))
    else:
        run(args)


if __name__ == "__main__":
    main()
