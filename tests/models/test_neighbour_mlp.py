"""The neighbour-list MLP (``neighbour-mlp``): its features against a per-atom reference, per-site
equivariance, the readouts that apply, and training through the one training path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystalgnn.graphs.batching import collate_graphs
from crystalgnn.graphs.crystal_graph import GraphConfig, build_graph
from crystalgnn.models.basis import GaussianBasis
from crystalgnn.models.neighbour_mlp import NeighbourListEncoder, NeighbourMLPConfig
from crystalgnn.models.registry import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def cells() -> list[Structure]:
    """A rock-salt cell (many tied distances), a cubic perovskite and a low-symmetry cell."""
    return [
        Structure(Lattice.cubic(2.82), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure(
            Lattice.cubic(3.905), ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        ),
        Structure(
            Lattice.from_parameters(4.1, 4.5, 5.2, 80, 95, 100), ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.45, 0.52], [0.5, 0.5, 0], [0.1, 0.5, 0.5], [0.5, 0.0, 0.55]],
        ),
    ]  # fmt: skip


def reference_features(graph, table: torch.Tensor, k: int, radius: float = 8.0, step: float = 0.2) -> torch.Tensor:
    """[x_i, (x_j1, u(d_ij1)), ..., (x_jk, u(d_ijk))] atom by atom, edge by edge (plain loops):
    the k edges into atom i with the smallest distances (equal ones in edge order), zero-padded."""
    basis = GaussianBasis.cgcnn(0.0, radius, step)
    z = graph.z.tolist()
    src, dst = graph.edge_index.tolist()
    dist = graph.edge_dist
    width = table.shape[1] + basis.num_features
    rows = []
    for i in range(len(z)):
        mine = sorted((float(dist[e]), e) for e in range(len(dst)) if dst[e] == i)[:k]
        parts = [table[z[i]]]
        for _, e in mine:
            parts += [torch.nan_to_num(table[z[src[e]]]), basis(dist[e : e + 1])[0]]
        parts.append(torch.zeros((k - len(mine)) * width))
        rows.append(torch.cat(parts))
    return torch.stack(rows)


@pytest.mark.parametrize("k", [12, 40])
@pytest.mark.parametrize("graph_config", [GraphConfig(), GraphConfig(radius=4.0, max_neighbors=None)])
def test_features_equal_a_per_atom_reference(table: torch.Tensor, k: int, graph_config: GraphConfig) -> None:
    # k=40 on 12-neighbour graphs: zero padding; uncapped 4 Å graphs: atoms with fewer and more
    # edges than k (truncated to the k nearest)
    graphs = [build_graph(s, graph_config) for s in cells()]
    g = graphs[2]  # edges in another order: the encoder sorts them itself
    perm = torch.randperm(g.edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    g.edge_index, g.edge_dist = g.edge_index[:, perm], g.edge_dist[perm]
    enc = NeighbourListEncoder(NeighbourMLPConfig(max_neighbors=k), table)
    got = enc.features(collate_graphs(graphs))
    want = torch.cat([reference_features(g, table, k) for g in graphs])
    assert got.shape == (sum(len(s) for s in cells()), enc.feature_dim) == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-7)


def test_the_12_nearest_neighbours_sorted_by_distance(table: torch.Tensor) -> None:
    s = cells()[2]
    enc = NeighbourListEncoder(NeighbourMLPConfig(), table)
    f = enc.features(collate_graphs([build_graph(s)]))
    fa, fu = table.shape[1], enc.expansion.num_features
    pair = f[:, fa:].view(len(s), 12, fa + fu)
    # the distance is where the Gaussians peak (to within the 0.2 Å spacing): compare the slots
    # with pymatgen's 12 nearest neighbours
    centres = enc.expansion.centres
    for i in range(len(s)):
        nearest = sorted(s.get_neighbors(s[i], 6.0), key=lambda n: n.nn_distance)[:12]
        peaks = centres[pair[i, :, fa:].argmax(dim=1)]
        np.testing.assert_allclose(peaks, [n.nn_distance for n in nearest], atol=0.1 + 1e-6)
        symbols = [n.specie.Z for n in nearest]
        np.testing.assert_array_equal(pair[i, :, :fa].numpy(), table[symbols].nan_to_num().numpy())


def test_per_site_outputs_permute_with_the_atoms(table: torch.Tensor) -> None:
    # a low-symmetry cell: with tied distances the order among ties follows the atom indices
    s = cells()[2]
    perm = np.array([3, 0, 4, 2, 1])
    permuted = Structure.from_sites([s[int(i)] for i in perm])
    torch.manual_seed(0)
    model = build_model("neighbour-mlp", {"hidden": 16}, table, out_dim=1, readout="site").eval()
    with torch.no_grad():
        a = model(collate_graphs([build_graph(s)]))[:, 0]
        b = model(collate_graphs([build_graph(permuted)]))[:, 0]
    assert a.shape == (5,) and float(a.std()) > 0
    torch.testing.assert_close(b, a[perm], rtol=0, atol=1e-6)


def test_readouts(table: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="neighbour-mlp predicts per-site values: use --readout site"):
        build_model("neighbour-mlp", {}, table, out_dim=1, readout="graph")
    batch = collate_graphs([build_graph(s) for s in cells()])
    linear = build_model("neighbour-mlp", {"hidden": 8, "n_layers": 1}, table, out_dim=1, readout="site-linear")
    assert linear(batch).shape == (3, 1)
    raw = build_model("neighbour-mlp", {"n_layers": 0}, table, out_dim=1, readout="site")
    assert raw.encoder.out_channels == 92 + 12 * (92 + 41) and raw(batch).shape == (12, 1)
    from crystalgnn.experiments.learners import gnn_names

    assert "neighbour-mlp" not in gnn_names()  # not a graph-level model of the benchmark


# --------------------------------------------------------------------------- the one training path
VALUES = {"Na": 0.3, "Cl": -0.3, "Sr": 0.1, "Ti": -0.8, "O": 0.05}


def test_train_end_to_end(tmp_path: Path) -> None:
    from crystalgnn.training.config import TrainConfig
    from crystalgnn.training.run import train

    rng = np.random.default_rng(0)
    table_path = tmp_path / "sites.jsonl"
    with table_path.open("w") as f:
        for i in range(12):
            s = cells()[i % 3].copy()
            s.apply_strain(rng.uniform(-0.03, 0.03, 3))
            q = [VALUES[site.specie.symbol] + 0.01 * rng.normal() for site in s]
            f.write(json.dumps({"id": f"x{i}", "structure": s.as_dict(), "q": q}) + "\n")
    cfg = TrainConfig(
        source=str(table_path), site_target="q", model="neighbour-mlp", model_options={"hidden": 16, "n_layers": 1},
        epochs=2, batch_size=4, split="0.5,0.25,0.25", optimizer="adam", lr=0.005, out=str(tmp_path / "run"),
        progress=False, num_threads=1, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    res = train(cfg)
    m = res.metrics
    assert m["model"] == "neighbour-mlp" and m["readout"] == "site" and m["level"] == "site"
    assert m["epochs_run"] == 2 and np.isfinite(m["test"]["mae"])
    assert (res.run_dir / "predictions.csv").is_file() and (res.run_dir / "checkpoints" / "best.ckpt").is_file()
