"""MEGNet specifics: reference layer sizes, bond features, the global state, the readout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.models.megnet import MEGNetConfig, MEGNetEncoder, MEGNetReadout
from crystalgnn.models.registry import build_model, get_spec, make_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def batch() -> Batch:
    cells = [
        Structure(
            Lattice.from_parameters(4.1, 4.5, 5.2, 80, 95, 100),
            ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.45, 0.52], [0.5, 0.5, 0], [0.1, 0.5, 0.5], [0.5, 0.0, 0.55]],
        ),
        Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ]
    return Batch.from_data_list([build_graph(s, MEGNetConfig().graph_config()) for s in cells])


def test_defaults_follow_the_reference():
    c = make_config("megnet")
    assert (c.nblocks, c.n1, c.n2, c.n3, c.npass, c.embedding_dim, c.state_dim) == (3, 64, 32, 16, 3, 16, 2)
    g = c.graph_config()
    assert g.radius == 5.0 and g.max_neighbors is None


def test_architecture_sizes(table):
    torch.manual_seed(0)
    m = build_model("megnet", make_config("megnet"), table, out_dim=1, task="regression")
    assert get_spec("megnet").encoder_cls is MEGNetEncoder and get_spec("megnet").readout_cls is MEGNetReadout
    assert isinstance(m.encoder, MEGNetEncoder) and isinstance(m.readout, MEGNetReadout)
    enc = m.encoder
    assert len(enc.blocks) == 3 and len(enc.block_ff) == 2  # the first block has no dense pre-block
    assert enc.blocks[0].phi_e.sizes == [4 * 32, 64, 64, 32]  # v_i + v_j + e + u
    assert enc.blocks[0].phi_v.sizes == [3 * 32, 64, 64, 32]
    assert enc.blocks[0].phi_u.sizes == [3 * 32, 64, 64, 32]
    assert m.readout.mlp.sizes == [2 * 16 + 2 * 16 + 32, 32, 16]  # Set2Set(atoms) + Set2Set(bonds) + state
    assert enc.bond_ff.sizes == [100, 64, 32]
    assert sum(p.numel() for p in m.parameters()) == 170033


def test_gaussian_bond_features_match_reference_formula(table):
    m = build_model("megnet", make_config("megnet"), table, out_dim=1, task="regression")
    d = torch.tensor([0.0, 1.234, 4.99])
    centres = np.linspace(0, 5, 100)
    ref = np.exp(-((d.numpy()[:, None] - centres[None, :]) ** 2) / 0.5**2)
    np.testing.assert_allclose(m.encoder.bond_basis(d).numpy(), ref, rtol=1e-5, atol=1e-6)


def _matgl_variant() -> MEGNetConfig:
    import yaml

    cfg = yaml.safe_load((Path(__file__).parents[2] / "configs" / "megnet-matgl.yaml").read_text())
    return make_config("megnet", cfg["model_options"])


def test_matgl_variant_has_matgls_layers(table, batch):
    """configs/megnet-matgl.yaml builds matgl 4's MEGNet: its 4 Å bonds, its broad Gaussians
    exp(-0.5 (d - mu)^2), update functions that end in the activation, Set2Set on the 32-dim
    features; 189,713 parameters, matgl's 189,621 (measured with its 89-element vocabulary)
    plus 12 more element rows of 16 (our vocabulary has 101) minus its 100 Gaussian centres."""
    c = _matgl_variant()
    assert c.graph_config().radius == 4.0 and c.npass == 2
    torch.manual_seed(0)
    m = build_model("megnet", c, table, out_dim=1, task="regression")
    assert sum(p.numel() for p in m.parameters()) == 189621 + 12 * 16 - 100
    assert m.readout.mlp.sizes == [2 * 64 + 32, 32, 16]
    d = torch.tensor([0.0, 1.234, 3.9])
    ref = np.exp(-0.5 * (d.numpy()[:, None] - np.linspace(0, 5, 100)[None, :]) ** 2)
    np.testing.assert_allclose(m.encoder.bond_basis(d).numpy(), ref, rtol=1e-5, atol=1e-6)
    block = m.encoder.blocks[0]
    x, e, u = torch.randn(batch.num_nodes, 32) * 5, torch.randn(batch.num_edges, 32) * 5, torch.randn(2, 32) * 5
    outs = block(x, e, u, batch.edge_index, batch.batch)
    assert all(bool((o >= -math.log(2) - 1e-6).all()) for o in outs)  # softplus(.) - ln 2 >= -ln 2
    plain = build_model("megnet", make_config("megnet"), table, out_dim=1, task="regression").encoder.blocks[0]
    plain_outs = plain(x, e, u, batch.edge_index, batch.batch)
    assert any(bool((o < -1.0).any()) for o in plain_outs)  # the reference's update functions end linear
    assert m(batch).shape == (2, 1)


def test_init_schemes(table):
    """keras: Glorot weights, zero biases, embeddings in +-0.05; torch: PyTorch's defaults (matgl)."""
    torch.manual_seed(0)
    keras = build_model("megnet", make_config("megnet"), table, out_dim=1, task="regression")
    torch_init = build_model("megnet", make_config("megnet", {"init": "torch"}), table, out_dim=1, task="regression")
    keras.requires_grad_(False)
    torch_init.requires_grad_(False)
    assert keras.encoder.embedding.weight.abs().max() <= 0.05
    assert 0.8 < float(torch_init.encoder.embedding.weight.std()) < 1.2
    first = [enc.encoder.bond_ff.layers[0] for enc in (keras, torch_init)]
    assert float(first[0].bias.abs().max()) == 0.0 and float(first[1].bias.abs().max()) > 0.0
    bound = 1 / math.sqrt(100)  # fan-in of the bond pre-block
    assert float(first[1].weight.abs().max()) <= bound < float(first[0].weight.abs().max())
    assert float(torch_init.readout.fc_out.bias.abs().max()) > 0.0  # the readout too
    with pytest.raises(ValueError, match="init"):
        make_config("megnet", {"init": "he"})


def test_shifted_softplus_is_zero_at_zero(table):
    m = build_model("megnet", make_config("megnet"), table, out_dim=1, task="regression")
    x = torch.tensor([-3.0, 0.0, 2.0])
    act = m.encoder.atom_ff.act
    torch.testing.assert_close(act(x), torch.nn.functional.softplus(x) - math.log(2.0))
    assert float(act(torch.zeros(1))) == 0.0


def test_global_state_input(table, batch):
    torch.manual_seed(0)
    m = build_model("megnet", make_config("megnet"), table, out_dim=1, task="regression").eval()
    with torch.no_grad():
        default = m(batch)
        batch.state = torch.zeros(2, 2)
        explicit_zero = m(batch)
        batch.state = torch.tensor([[1.0, -1.0], [0.5, 2.0]])
        other = m(batch)
    torch.testing.assert_close(default, explicit_zero)
    assert not torch.allclose(default, other)


def test_node_embeddings_and_dropout(table, batch):
    torch.manual_seed(0)
    m = build_model("megnet", make_config("megnet", {"dropout": 0.5}), table, out_dim=2, task="classification")
    assert m.node_embeddings(batch).shape == (batch.num_nodes, 32)
    # the encoding carries the bond features and the global state the readout pools
    m.eval()
    with torch.no_grad():
        enc = m.encoder(batch)
    assert enc.edge_attr.shape == (batch.edge_index.shape[1], 32) and enc.state.shape == (2, 32)
    assert torch.equal(enc.edge_index, batch.edge_index)
    with torch.no_grad():
        torch.testing.assert_close(m(batch), m(batch))  # no dropout at inference


def _block_by_concatenation(block, x, e, u, edge_index, batch_index):
    """The block as first written (the oracle): each update function on concatenated rows."""
    from torch_geometric.utils import scatter

    src, dst = edge_index
    edge_batch = batch_index[dst]
    e_new = block.phi_e(torch.cat((x[dst], x[src], e, u[edge_batch]), dim=-1))
    b_ev = scatter(e_new, dst, dim=0, dim_size=x.shape[0], reduce="mean")
    x_new = block.phi_v(torch.cat((b_ev, x, u[batch_index]), dim=-1))
    b_eu = scatter(e_new, edge_batch, dim=0, dim_size=u.shape[0], reduce="mean")
    b_vu = scatter(x_new, batch_index, dim=0, dim_size=u.shape[0], reduce="mean")
    return x_new, e_new, block.phi_u(torch.cat((b_eu, b_vu, u), dim=-1))


@pytest.mark.parametrize("last_activation", [False, True])
def test_gathered_dense_stack_equals_concatenation(last_activation):
    from crystalgnn.models.megnet import DenseStack

    g = torch.Generator().manual_seed(0)
    stack = DenseStack([7 + 3 + 2, 16, 8], last_activation=last_activation)
    a, e, u = torch.randn(5, 7, generator=g), torch.randn(11, 3, generator=g), torch.randn(2, 2, generator=g)
    idx, ub = torch.randint(0, 5, (11,), generator=g), torch.randint(0, 2, (11,), generator=g)
    want = stack(torch.cat((a[idx], e, u[ub]), dim=-1))
    got = stack.forward_gathered([(a, idx), (e, None), (u, ub)])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert not torch.equal(stack.forward_gathered([(a, ub * 2), (e, None), (u, ub)]), want)  # indices matter


def test_megnet_block_numerics_unchanged_with_gradients(batch):
    """The optimised block (gathered first layers) equals the concatenating one, values and grads."""
    from crystalgnn.models.megnet import MEGNetBlock

    torch.manual_seed(0)
    block = MEGNetBlock(32, 32, 32, [64, 64, 32])  # the reference sizes (n1, n1, n2)
    n_nodes, n_edges = batch.num_nodes, batch.edge_index.shape[1]
    x = torch.randn(n_nodes, block.node_dim, requires_grad=True)
    e = torch.randn(n_edges, block.edge_dim, requires_grad=True)
    u = torch.randn(batch.num_graphs, block.state_dim, requires_grad=True)
    outs = {}
    for name, fn in (("new", block.forward), ("old", lambda *a: _block_by_concatenation(block, *a))):
        block.zero_grad()
        for t in (x, e, u):
            t.grad = None
        res = fn(x, e, u, batch.edge_index, batch.batch)
        sum(r.square().sum() for r in res).backward()
        outs[name] = (res, [t.grad.clone() for t in (x, e, u)], [p.grad.clone() for p in block.parameters()])
    for new, old in zip(outs["new"][0] + tuple(outs["new"][1]) + tuple(outs["new"][2]),
                        outs["old"][0] + tuple(outs["old"][1]) + tuple(outs["old"][2]), strict=True):  # fmt: skip
        torch.testing.assert_close(new, old, atol=1e-5, rtol=1e-4)
