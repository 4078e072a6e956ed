"""SchNet on periodic edges: PyG interaction blocks, smooth cutoff, readouts, small cells."""

from __future__ import annotations

import math

import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch
from torch_geometric.nn.models.schnet import InteractionBlock

from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.models.registry import build_model, get_spec, make_config
from crystalgnn.models.schnet import SchNetConfig, SchNetEncoder, SchNetReadout

pytestmark = pytest.mark.usefixtures("one_thread")


def cell() -> Structure:
    return Structure(
        Lattice.from_parameters(4.1, 4.5, 5.2, 80, 95, 100),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.45, 0.52], [0.5, 0.5, 0], [0.1, 0.5, 0.5], [0.5, 0.0, 0.55]],
    )


def model(table, **opts):
    torch.manual_seed(0)
    return build_model("schnet", make_config("schnet", opts), table, out_dim=1, task="regression").eval()


def test_defaults_and_pyg_blocks(table):
    c = make_config("schnet")
    assert (c.hidden_channels, c.num_filters, c.num_interactions, c.radius, c.pooling) == (64, 64, 6, 5.0, "mean")
    assert c.graph_config().radius == 5.0 and c.graph_config().max_neighbors is None
    # the former option names are still accepted (old configs and checkpoints)
    assert make_config("schnet", {"cutoff": 4.0, "readout": "sum"}) == SchNetConfig(radius=4.0, pooling="sum")
    assert get_spec("schnet").encoder_cls is SchNetEncoder and get_spec("schnet").readout_cls is SchNetReadout
    m = model(table)
    assert isinstance(m.encoder, SchNetEncoder) and isinstance(m.readout, SchNetReadout)
    enc = m.encoder
    assert len(enc.interactions) == 6 and all(isinstance(b, InteractionBlock) for b in enc.interactions)
    offsets = enc.distance_expansion.centres
    assert offsets.numel() == 51 and math.isclose(float(offsets[1] - offsets[0]), 0.1, rel_tol=1e-5)
    # PyG's GaussianSmearing width: gamma = 0.5 / spacing^2
    assert math.isclose(enc.distance_expansion.gamma, 0.5 / 0.1**2, rel_tol=1e-4)


def test_cosine_cutoff_makes_edges_at_the_cutoff_vanish(table):
    """An extra bond just inside the cutoff changes nothing (the filter goes smoothly to 0)."""
    m = model(table)
    g = build_graph(cell(), make_config("schnet").graph_config())
    extra = g.clone()
    extra.edge_index = torch.cat((g.edge_index, torch.tensor([[0], [1]])), dim=1)
    extra.edge_dist = torch.cat((g.edge_dist, torch.tensor([5.0 - 1e-4])))
    with torch.no_grad():
        a, b = m(Batch.from_data_list([g])), m(Batch.from_data_list([extra]))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_mean_and_sum_readouts_under_supercell(table):
    s = cell()
    gcfg = make_config("schnet").graph_config()
    both = Batch.from_data_list([build_graph(s, gcfg), build_graph(s * (1, 2, 1), gcfg)])
    with torch.no_grad():
        mean = model(table)(both)
        total = model(table, pooling="sum")(both)
    torch.testing.assert_close(mean[1], mean[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(total[1], 2 * total[0], atol=1e-4, rtol=1e-5)


def test_cell_smaller_than_the_cutoff(table):
    """One atom in a 2.5 Å cube: every neighbour is a periodic image of itself."""
    s = Structure(Lattice.cubic(2.5), ["Cu"], [[0, 0, 0]])
    gcfg = make_config("schnet").graph_config()
    g = build_graph(s, gcfg)
    assert bool((g.edge_index == 0).all()) and g.edge_index.shape[1] == 6 + 12 + 8  # shells < 5 Å
    with torch.no_grad():
        small, big = model(table)(Batch.from_data_list([g, build_graph(s * 2, gcfg)]))
    torch.testing.assert_close(small, big, atol=1e-5, rtol=1e-5)
