"""ALIGNN specifics: reference size, the graphs it builds in forward, batching of line graphs."""

from __future__ import annotations

import math

import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.graphs.line_graph import line_graph_size, symmetrize_edges
from crystalgnn.models.alignn import ALIGNNEncoder, ALIGNNReadout
from crystalgnn.models.registry import build_model, get_spec, make_config

pytestmark = pytest.mark.usefixtures("one_thread")


def cells() -> list[Structure]:
    return [
        Structure(
            Lattice.cubic(3.905),
            ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        ),
        Structure(
            Lattice.from_parameters(3.1, 3.3, 6.9, 88, 93, 117),
            ["Li", "Fe", "O", "O"],
            [[0, 0, 0.5], [0.02, 0.01, 0.0], [0.35, 0.66, 0.26], [0.66, 0.31, 0.74]],
        ),
    ]


def test_defaults_and_reference_parameter_count(table):
    c = make_config("alignn")
    assert (c.alignn_layers, c.gcn_layers, c.hidden_features, c.embedding_features) == (4, 4, 256, 64)
    assert (c.edge_input_features, c.triplet_input_features) == (80, 40)
    g = c.graph_config()
    assert (g.radius, g.max_neighbors) == (8.0, 12)
    m = build_model("alignn", c, table, out_dim=1, task="regression")
    assert get_spec("alignn").encoder_cls is ALIGNNEncoder and get_spec("alignn").readout_cls is ALIGNNReadout
    assert isinstance(m.encoder, ALIGNNEncoder) and isinstance(m.readout, ALIGNNReadout)
    # the reference ALIGNN (BatchNorm MLPLayers, biased linears, 92-dim CGCNN atom input):
    # atom 24,320 + bond RBF MLPs 22,464 + angle RBF MLPs 19,904 + 12 gated convs x 329,984 + fc 257,
    # less the two edge BatchNorms (2 x 512) whose outputs the reference computes but never reads
    # (the last ALIGNN layer's angle update and the last gated GCN's bond update)
    assert sum(p.numel() for p in m.parameters()) == 4_026_753 - 2 * 512
    assert sum(p.numel() for p in m.readout.parameters()) == 257
    enc = m.encoder
    assert math.isclose(enc.edge_rbf.gamma, 79 / 8.0) and math.isclose(enc.angle_rbf.gamma, 39 / 2.0)
    assert (enc.edge_rbf.num_features, enc.angle_rbf.num_features) == (80, 40)


def test_graphs_built_in_forward_are_per_structure(table):
    """The batch line graph is the union of the per-structure line graphs (no triplet mixes
    two crystals), on the undirected version of each 12-NN graph."""
    m = build_model("alignn", make_config("alignn"), table, out_dim=1, task="regression")
    gcfg = make_config("alignn").graph_config()
    graphs = [build_graph(s, gcfg) for s in cells()]
    b = Batch.from_data_list(graphs)
    edge_index, vec, line_index, cos = m.encoder.graphs(b)
    sizes = []
    for g in graphs:
        ei, _, _ = symmetrize_edges(g.edge_index, g.edge_shift, g.edge_vec)
        sizes.append(line_graph_size(ei, g.num_nodes))
    assert line_index.shape[1] == sum(sizes) == cos.numel()
    graph_of_edge = b.batch[edge_index[1]]
    assert torch.equal(graph_of_edge[line_index[0]], graph_of_edge[line_index[1]])
    assert torch.equal(edge_index[1, line_index[0]], edge_index[0, line_index[1]])
    assert float(cos.min()) >= -1.0 and float(cos.max()) <= 1.0
    torch.testing.assert_close(vec.norm(dim=1)[: b.edge_index.shape[1]], b.edge_dist)
    # the encoding carries the bond features on those undirected edges
    m.eval()
    with torch.no_grad():
        enc = m.encoder(b)
    assert torch.equal(enc.edge_index, edge_index) and enc.edge_attr.shape == (edge_index.shape[1], 256)
    assert enc.x.shape == (b.num_nodes, 256) and enc.state is None


def test_directed_option_and_no_backtracking(table):
    gcfg = make_config("alignn").graph_config()
    b = Batch.from_data_list([build_graph(s, gcfg) for s in cells()])
    m = build_model("alignn", make_config("alignn", {"undirected": False}), table, out_dim=1, task="regression")
    edge_index, _, line_index, _ = m.encoder.graphs(b)
    assert torch.equal(edge_index, b.edge_index) and line_index.shape[1] == 12 * b.edge_index.shape[1]
    m2 = build_model(
        "alignn",
        make_config("alignn", {"undirected": False, "backtracking": False}),
        table,
        out_dim=1,
        task="regression",
    )
    _, _, pruned, _ = m2.encoder.graphs(b)
    assert pruned.shape[1] < line_index.shape[1]
    m2.eval()
    with torch.no_grad():
        assert m2(b).shape == (2, 1)


def test_atom_features_come_from_the_table(table):
    """ALIGNN reads the 92-dim table (not a learned embedding): a custom table changes outputs."""
    gcfg = make_config("alignn").graph_config()
    b = Batch.from_data_list([build_graph(s, gcfg) for s in cells()])
    torch.manual_seed(0)
    m = build_model("alignn", make_config("alignn"), table, out_dim=1, task="regression").eval()
    assert m.encoder.atom_embedding[0].in_features == 92
    with torch.no_grad():
        before = m(b)
        m.atom_features.table[8] = torch.flip(m.atom_features.table[8], dims=[0])  # change O
        after = m(b)
    assert not torch.allclose(before, after)
