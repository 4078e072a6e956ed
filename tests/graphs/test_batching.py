"""collate_graphs gives PyG's own batch, field for field, faster."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from crystalgnn.graphs.batching import collate_graphs
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.crystal_graph import GraphConfig


def _same(a, b) -> bool:
    return torch.equal(a, b) if torch.is_tensor(a) else a == b


@pytest.fixture
def graphs(structures) -> list[Data]:
    gs, report = build_graph_list(list(structures.values()), GraphConfig(radius=5.0), n_jobs=1)
    assert not report.rejected
    for i, g in enumerate(gs):  # the fields training attaches
        g.y = torch.tensor([[float(i), -float(i)]])
        g.idx = torch.tensor([i])
        g.site_y = torch.arange(g.num_nodes, dtype=torch.float32).view(-1, 1) + 10 * i
    return gs


def test_equals_pyg_batch(graphs) -> None:
    ours, ref = collate_graphs(graphs), Batch.from_data_list(graphs)
    assert type(ours) is type(ref)
    assert set(ours.keys()) == set(ref.keys())
    for k in ref.keys():
        assert _same(ours[k], ref[k]), k
    assert ours.num_graphs == ref.num_graphs == len(graphs)
    assert int(ours.edge_index.max()) == ours.num_nodes - 1  # offsets applied
    for k in ref._slice_dict:
        assert torch.equal(ours._slice_dict[k], ref._slice_dict[k]), k
        assert torch.equal(torch.as_tensor(ours._inc_dict[k]), torch.as_tensor(ref._inc_dict[k])), k


def test_examples_round_trip(graphs) -> None:
    batch = collate_graphs(graphs)
    for i, g in enumerate(graphs):
        back = batch.get_example(i)
        assert set(back.keys()) == set(g.keys())
        for k in g.keys():
            assert _same(back[k], g[k]), (i, k)


def test_reordered_subset(graphs) -> None:
    picked = [graphs[3], graphs[0], graphs[3]]
    ours, ref = collate_graphs(picked), Batch.from_data_list(picked)
    for k in ref.keys():
        assert _same(ours[k], ref[k]), k


def test_other_graphs_fall_back_to_pyg() -> None:
    a = Data(x=torch.ones(2, 3), edge_index=torch.tensor([[0, 1], [1, 0]]), name="a")  # a string field
    b = Data(x=torch.ones(1, 3), edge_index=torch.tensor([[0], [0]]), name="b")
    batch = collate_graphs([a, b])
    assert batch.name == ["a", "b"]
    assert batch.edge_index.tolist() == [[0, 1, 2], [1, 0, 2]]
    with pytest.raises(ValueError, match="empty"):
        collate_graphs([])
