"""Tests for crystalgnn.models.cgcnn: the CGCNN encoder + readout and its gated convolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.models.base import CrystalModel
from crystalgnn.models.basis import GaussianBasis, gaussian_basis
from crystalgnn.models.cgcnn import CGCNNConfig, CGCNNEncoder, CGCNNReadout, CGConvLayer, uniform_degree
from crystalgnn.models.readouts import SoftplusMLP
from crystalgnn.models.registry import build_model, get_spec, make_config, model_names
from crystalgnn.training.targets import TargetSpec
from crystalgnn.training.task import CrystalTask
from tinydata import perovskite_rows, structures_of

SMALL = CGCNNConfig(atom_fea_len=32, h_fea_len=64)


pytestmark = pytest.mark.usefixtures("one_thread")


def cgcnn(config: CGCNNConfig, table: torch.Tensor, out_dim: int = 1, task: str = "regression") -> CrystalModel:
    """CGCNN (encoder + its published graph readout), as the registry builds it."""
    return build_model("cgcnn", config, table, out_dim=out_dim, task=task)


@pytest.fixture(scope="module")
def perovskites() -> tuple[list[Structure], torch.Tensor]:
    rows = perovskite_rows(32)
    return structures_of(rows), torch.tensor([r["heat_all"] for r in rows], dtype=torch.float32)


def graphs_of(structures: list[Structure], config: CGCNNConfig = SMALL) -> list:
    graphs, report = build_graph_list(structures, config.graph_config(), n_jobs=1)
    assert not report.rejected
    return graphs


@pytest.fixture(scope="module")
def trained(table, perovskites) -> tuple[CrystalModel, list, torch.Tensor, tuple[float, float]]:
    """CGCNN overfitted (full batch, Adam) to 32 perovskite formation energies."""
    structures, y = perovskites
    torch.manual_seed(0)
    model = cgcnn(SMALL, table)
    graphs = graphs_of(structures)
    batch = Batch.from_data_list(graphs)
    mean, std = float(y.mean()), float(y.std())
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(batch)[:, 0] - (y - mean) / std) ** 2).mean()
        loss.backward()
        opt.step()
    model.eval()
    return model, graphs, y, (mean, std)


def predict(model: CrystalModel, structures: list[Structure]) -> np.ndarray:
    with torch.no_grad():
        return model(Batch.from_data_list(graphs_of(structures)))[:, 0].numpy()


# ----------------------------------------------------------------------------- basics
def test_registry_and_config() -> None:
    assert "cgcnn" in model_names()
    spec = get_spec("cgcnn")
    assert spec.encoder_cls is CGCNNEncoder and spec.readout_cls is CGCNNReadout and spec.config_cls is CGCNNConfig
    cfg = make_config("cgcnn", {"n_conv": 2})
    assert cfg == CGCNNConfig(n_conv=2)
    # the reference's option name is still accepted (old configs and checkpoints)
    assert make_config("cgcnn", {"max_num_nbr": 8}) == CGCNNConfig(max_neighbors=8)
    assert "max_num_nbr" not in CGCNNConfig().to_dict()
    with pytest.raises(KeyError, match="n_convs"):
        make_config("cgcnn", {"n_convs": 2})
    with pytest.raises(KeyError, match="unknown model"):
        get_spec("no-such-model")
    g = CGCNNConfig(radius=6.0, max_neighbors=8, pad_to_max_neighbors=True).graph_config()
    assert (g.radius, g.max_neighbors, g.pad_to_max_neighbors) == (6.0, 8, True)


@pytest.mark.parametrize(
    ("config", "out_dim", "task"),
    [
        (CGCNNConfig(), 1, "regression"),
        (CGCNNConfig(atom_fea_len=16, h_fea_len=24, n_conv=2, n_h=3), 3, "regression"),
        (CGCNNConfig(atom_fea_len=16, conv="shared"), 1, "regression"),
        (CGCNNConfig(atom_fea_len=16, h_fea_len=8), 2, "classification"),
    ],
)
def test_output_shapes(table, structures, config, out_dim, task) -> None:
    model = build_model("cgcnn", config.to_dict(), table, out_dim=out_dim, task=task)
    graphs = graphs_of(list(structures.values()), config)
    batch = Batch.from_data_list(graphs)
    out = model(batch)
    assert out.shape == (len(graphs), out_dim)
    assert torch.isfinite(out).all()
    emb = model.node_embeddings(batch)
    assert emb.shape == (batch.num_nodes, config.atom_fea_len)
    torch.testing.assert_close(model.encoder(batch).x, emb)
    assert isinstance(model.encoder, CGCNNEncoder) and isinstance(model.readout, CGCNNReadout)
    assert model.level == "graph" and model.config == config and model.encoder.out_channels == config.atom_fea_len
    assert len(model.encoder.convs) == config.n_conv
    assert isinstance(model.readout.mlp, SoftplusMLP)
    assert len(model.readout.mlp.fcs) == config.n_h - 1
    assert model.encoder.expansion.num_features == 41
    assert model.readout.mlp.dropout.p == (config.dropout if task == "classification" else 0.0)
    assert model.atom_features.num_features == 92
    assert model.atom_features is model.encoder.atom_features
    # embedding 92 -> F, conv fc_full (2F + 41) -> 2F, head F -> h -> out
    if config.conv == "gated":
        assert model.encoder.convs[0].fc_full.weight.shape == (2 * config.atom_fea_len, 2 * config.atom_fea_len + 41)
    assert model.readout.mlp.conv_to_fc.weight.shape == (config.h_fea_len, config.atom_fea_len)
    assert model.readout.mlp.fc_out.weight.shape == (out_dim, config.h_fea_len)


def test_repr(table) -> None:
    model = cgcnn(CGCNNConfig(n_conv=4, h_fea_len=32), table, out_dim=2, task="classification")
    r = repr(model)
    assert r.startswith("CrystalModel(")
    for part in ("name='cgcnn'", "task='classification'", "level='graph'"):
        assert part in r
    assert repr(model.encoder) == "CGCNNEncoder(atom_fea_len=64, n_conv=4, conv=gated, radius=8.0)"
    assert "(encoder): CGCNNEncoder(atom_fea_len=64, n_conv=4, conv=gated, radius=8.0)" in r
    ro = repr(model.readout)
    assert ro.startswith("CGCNNReadout(") and "(readout): CGCNNReadout(" in r
    # h_fea_len=32, n_h=1 (no hidden fcs), out_dim=2, classification dropout
    assert "(conv_to_fc): Linear(in_features=64, out_features=32, bias=True)" in ro
    assert "(fcs): ModuleList()" in ro
    assert "(fc_out): Linear(in_features=32, out_features=2, bias=True)" in ro
    assert "Dropout(p=0.5" in ro
    assert repr(model.encoder.convs[0]) == "CGConvLayer(64, edge_dim=41, shared=False)"
    assert "centres=41" in repr(model.encoder.expansion)


def test_parameter_count(table) -> None:
    # the original CGCNN sizes (atom_fea_len 64, h_fea_len 128, 3 convs, 1 hidden layer)
    model = cgcnn(CGCNNConfig(), table)
    f, g, h = 64, 41, 128
    expected = (92 * f + f) + 3 * ((2 * f + g) * 2 * f + 2 * f + 2 * (2 * f) + 2 * f) + (f * h + h) + (h + 1)
    assert sum(p.numel() for p in model.parameters()) == expected == model.n_parameters()
    enc = sum(p.numel() for p in model.encoder.parameters())
    assert enc == (92 * f + f) + 3 * ((2 * f + g) * 2 * f + 2 * f + 2 * (2 * f) + 2 * f)


def test_reset_parameters_reinitialises(table, structures) -> None:
    torch.manual_seed(0)
    model = cgcnn(SMALL, table)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # wreck everything, including batch-norm statistics
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.123)
        for name, buf in model.named_buffers():
            if "running" in name:
                buf.fill_(7.0)
    model.reset_parameters()
    after = model.state_dict()
    for k, v in after.items():
        if k.endswith("num_batches_tracked"):
            assert int(v) == 0
        elif k.endswith("running_mean"):
            assert torch.equal(v, torch.zeros_like(v)), k
        elif k.endswith("running_var"):
            assert torch.equal(v, torch.ones_like(v)), k
        elif k in ("encoder.atom_features.table", "encoder.expansion.centres"):
            assert torch.equal(v.nan_to_num(-1), before[k].nan_to_num(-1)), k  # fixed buffers untouched
        elif "bn" in k.split(".")[-2]:
            assert torch.equal(v, torch.ones_like(v) if k.endswith("weight") else torch.zeros_like(v)), k
        else:  # Linear weights and biases: freshly drawn, not the filler, not the old draw
            assert not torch.all(v == 0.123), k
            assert not torch.equal(v, before[k]), k
            assert v.numel() == 1 or v.std() > 0, k
    out = model(Batch.from_data_list(graphs_of(list(structures.values()))))
    assert torch.isfinite(out).all()


# ----------------------------------------------------------------------------- the convolution
def explicit_gated(layer: CGConvLayer, x, edge_index, edge_attr):
    """Eq. 5 as written: z_ij = v_i (+) v_j (+) u_ij, one fc_full per edge."""
    src, dst = edge_index
    z = torch.cat([x[dst], x[src], edge_attr], dim=1)
    gated = layer.bn1(layer.fc_full(z))
    filt, core = gated.chunk(2, dim=1)
    msg = torch.sigmoid(filt) * F.softplus(core)
    summed = torch.zeros_like(x)
    for e in range(len(dst)):
        summed[dst[e]] = summed[dst[e]] + msg[e]
    return F.softplus(x + layer.bn2(summed))


def explicit_shared(layer: CGConvLayer, x, edge_index, edge_attr):
    """Eq. 4: v_i' = g(v_i W_s + BN(sum_j (v_j (+) u_ij) W_c) + b)."""
    src, dst = edge_index
    msg = layer.fc_nbr(torch.cat([x[src], edge_attr], dim=1))
    summed = torch.zeros_like(x)
    for e in range(len(dst)):
        summed[dst[e]] = summed[dst[e]] + msg[e]
    return F.softplus(layer.fc_self(x) + layer.bn(summed))


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("train_mode", [True, False])
def test_split_evaluation_equals_concat(shared: bool, train_mode: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    n, f, g, e = 9, 6, 5, 40
    layer = CGConvLayer(f, g, shared=shared).double()
    with torch.no_grad():  # non-trivial batch-norm parameters and statistics
        for m in layer.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.5, 0.5, generator=gen)
                m.running_mean.uniform_(-1, 1, generator=gen)
                m.running_var.uniform_(0.5, 2, generator=gen)
    layer.train(train_mode)
    x = torch.randn(n, f, generator=gen, dtype=torch.float64)
    edge_index = torch.randint(0, n, (2, e), generator=gen)
    edge_attr = torch.rand(e, g, generator=gen, dtype=torch.float64)
    ref_layer = CGConvLayer(f, g, shared=shared).double()
    ref_layer.load_state_dict(layer.state_dict())
    ref_layer.train(train_mode)
    got = layer(x, edge_index, edge_attr)
    ref = (explicit_shared if shared else explicit_gated)(ref_layer, x, edge_index, edge_attr)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    if train_mode:  # the same running statistics were accumulated
        for (k, a), (_, b) in zip(layer.state_dict().items(), ref_layer.state_dict().items(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=k)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("train_mode", [True, False])
def test_dense_neighbour_path_equals_scatter(shared: bool, train_mode: bool) -> None:
    """Edges sorted by centre with k per atom: the broadcast/sum path gives the scatter's numbers."""
    gen = torch.Generator().manual_seed(5)
    n, f, g, k = 7, 6, 5, 4
    dst = torch.arange(n).repeat_interleave(k)
    src = torch.randint(0, n, (n * k,), generator=gen)
    edge_index = torch.stack([src, dst])
    assert uniform_degree(dst, n) == k
    layer = CGConvLayer(f, g, shared=shared).double().train(train_mode)
    x = torch.randn(n, f, generator=gen, dtype=torch.float64, requires_grad=True)
    edge_attr = torch.rand(n * k, g, generator=gen, dtype=torch.float64)
    dense = layer(x, edge_index, edge_attr, degree=k)
    (grad_dense,) = torch.autograd.grad(dense.square().sum(), x)
    sparse = layer(x, edge_index, edge_attr)
    (grad_sparse,) = torch.autograd.grad(sparse.square().sum(), x)
    torch.testing.assert_close(dense, sparse, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_dense, grad_sparse, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dense", [False, True])
def test_folded_prediction_path_equals_the_layer_formula(dense: bool) -> None:
    """Evaluation without gradients (bn1 folded into fc_full, GEMM accumulating into the
    gathered terms) gives Eq. 5's numbers: against the written-out formula, on both the
    scatter and the dense k-neighbour layouts, with non-trivial batch-norm statistics."""
    gen = torch.Generator().manual_seed(11)
    n, f, g, k = 8, 6, 5, 3
    layer = CGConvLayer(f, g).double().eval()
    with torch.no_grad():
        for m in (layer.bn1, layer.bn2):
            m.weight.uniform_(0.5, 1.5, generator=gen)
            m.bias.uniform_(-0.5, 0.5, generator=gen)
            m.running_mean.uniform_(-1, 1, generator=gen)
            m.running_var.uniform_(0.5, 2, generator=gen)
    dst = torch.arange(n).repeat_interleave(k) if dense else torch.randint(0, n, (n * k,), generator=gen)
    edge_index = torch.stack([torch.randint(0, n, (n * k,), generator=gen), dst])
    x = torch.randn(n, f, generator=gen, dtype=torch.float64)
    edge_attr = torch.rand(n * k, g, generator=gen, dtype=torch.float64)
    ref = explicit_gated(layer, x, edge_index, edge_attr)  # gradients on: the training formula
    with torch.no_grad():
        fast = layer(x, edge_index, edge_attr, degree=k if dense else None)
        w, b = layer.folded_weights()
        z = torch.cat([x[edge_index[1]], x[edge_index[0]], edge_attr], dim=1)
        torch.testing.assert_close(z @ w.T + b, layer.bn1(layer.fc_full(z)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast, ref.detach(), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(layer.bn1.running_var, torch.ones(2 * f, dtype=torch.float64))


def test_uniform_degree_detects_irregular_edges() -> None:
    assert uniform_degree(torch.tensor([0, 0, 1, 1, 2, 2]), 3) == 2
    assert uniform_degree(torch.tensor([0, 1, 0, 1, 2, 2]), 3) is None  # not grouped by centre
    assert uniform_degree(torch.tensor([0, 0, 0, 1, 2, 2]), 3) is None  # unequal degrees
    assert uniform_degree(torch.tensor([0, 0, 1, 1, 2]), 3) is None
    assert uniform_degree(torch.tensor([], dtype=torch.long), 3) is None


def test_batch_of_irregular_graphs_matches_per_graph_predictions(table, structures) -> None:
    """Padding-free graphs with unequal degrees take the scatter path; per-graph and batched agree."""
    config = CGCNNConfig(atom_fea_len=8, h_fea_len=8, n_conv=2, radius=3.0, max_neighbors=12)
    graphs = graphs_of(list(structures.values()), config)
    batch = Batch.from_data_list(graphs)
    assert uniform_degree(batch.edge_index[1], batch.num_nodes) is None  # some atom has < 12 within 3 Å
    torch.manual_seed(0)
    model = cgcnn(config, table).eval()
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(Batch.from_data_list([g])) for g in graphs])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("dmin", "dmax", "step"), [(0, 8, 0.2), (0, 5, 0.3), (0, 7.5, 0.2), (0.5, 6, 0.5), (0, 10, 0.7)]
)
def test_gaussian_expansion_matches_reference(dmin, dmax, step) -> None:
    exp = GaussianBasis.cgcnn(dmin, dmax, step)
    centres = np.arange(dmin, dmax + step, step)  # the original code's GaussianDistance.filter
    assert exp.num_features == len(centres)
    np.testing.assert_allclose(exp.centres.numpy(), centres, atol=1e-6)
    d = torch.tensor([0.0, 1.234, 4.9, 7.9, 9.0])
    ref = np.exp(-((d.numpy()[:, None] - centres) ** 2) / step**2)
    np.testing.assert_allclose(exp(d).numpy(), ref, atol=1e-6)


def test_gaussian_basis_floor_only_touches_underflowing_values() -> None:
    """The exponent floor (a speed measure) leaves every value above exp(-87) (~ float32's
    smallest normal number) as it was, puts the rest under 2e-38, and the gradient path gives
    the same values."""
    d = torch.linspace(0.0, 8.0, 4001)
    centres = torch.arange(41, dtype=torch.float32) * 0.2
    got = gaussian_basis(d, centres, 25.0)
    exact = np.exp(-25.0 * (d.double().numpy()[:, None] - centres.double().numpy()) ** 2)
    kept = exact > np.exp(-87.0)  # exp(-87) = 1.65e-38, just above float32's smallest normal number
    assert 0.3 < kept.mean() < 0.7  # both kinds are really tested
    # float32 exponents near -87 carry ~87 * 6e-8 relative rounding, hence the tolerance
    np.testing.assert_allclose(got.numpy()[kept], exact[kept], rtol=1e-5 * 3)
    assert got.numpy()[~kept].max() < 2e-38
    with_grad = gaussian_basis(d.clone().requires_grad_(True), centres, 25.0)
    torch.testing.assert_close(with_grad.detach(), got, rtol=1e-6, atol=0.0)


# ----------------------------------------------------------------------------- learning
def test_overfits_real_structures(trained) -> None:
    model, graphs, y, (mean, std) = trained
    with torch.no_grad():
        pred = model(Batch.from_data_list(graphs))[:, 0] * std + mean
    mae = (pred - y).abs().mean()
    assert mae < 0.05 * y.std(), f"MAE {mae:.4f} vs target std {y.std():.4f}"


# ----------------------------------------------------------------------------- invariances
@pytest.fixture(scope="module")
def probe_structures(perovskites) -> list[Structure]:
    """Training structures (slightly perturbed: no ties at the 12th neighbour) and a triclinic cell."""
    out = []
    for k, s in enumerate(perovskites[0][:6]):
        s = s.copy()
        s.perturb(0.05, seed=k)
        out.append(s)
    out.append(
        Structure(
            Lattice.from_parameters(4.31, 5.07, 5.93, 81.3, 97.9, 104.2),
            ["Li", "Fe", "O", "O", "P"],
            [[0.03, 0.11, 0.07], [0.52, 0.41, 0.33], [0.29, 0.77, 0.58], [0.81, 0.16, 0.69], [0.37, 0.93, 0.12]],
        )
    )
    return out


def _assert_close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_predictions_are_not_trivial(trained, probe_structures) -> None:
    model = trained[0]
    p = predict(model, probe_structures)
    assert np.std(p) > 0.1  # normalised units: the model tells structures apart


def test_invariant_to_permutation_rotation_translation_supercell(trained, probe_structures) -> None:
    model = trained[0]
    ref = predict(model, probe_structures)
    rng = np.random.default_rng(0)
    variants: dict[str, list[Structure]] = {"permuted": [], "rotated": [], "translated": [], "supercell": []}
    for s in probe_structures:
        perm = rng.permutation(len(s))
        variants["permuted"].append(Structure(s.lattice, [s.species[p] for p in perm], s.frac_coords[perm]))
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        variants["rotated"].append(Structure(Lattice(s.lattice.matrix @ q.T), s.species, s.frac_coords))
        variants["translated"].append(Structure(s.lattice, s.species, (s.frac_coords + rng.uniform(size=3)) % 1))
        variants["supercell"].append(s * (2, 2, 2))
    for name, structs in variants.items():
        got = predict(model, structs)
        assert np.abs(got - ref).max() < 1e-4 * max(1.0, np.abs(ref).max()), name


def test_graph_alone_equals_graph_in_batch(trained, probe_structures) -> None:
    model = trained[0]
    graphs = graphs_of(probe_structures)
    with torch.no_grad():
        together = model(Batch.from_data_list(graphs))[:, 0]
        for k, g in enumerate(graphs):
            alone = model(Batch.from_data_list([g]))[0, 0]
            torch.testing.assert_close(alone, together[k], rtol=1e-5, atol=1e-5)
        # order within the batch does not matter either
        rev = model(Batch.from_data_list(graphs[::-1]))[:, 0]
    torch.testing.assert_close(rev.flip(0), together, rtol=1e-5, atol=1e-5)


def test_eval_mode_is_deterministic(trained, probe_structures) -> None:
    model = trained[0]
    batch = Batch.from_data_list(graphs_of(probe_structures))
    with torch.no_grad():
        a, b = model(batch), model(batch)
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- classification
def test_classification_probabilities_sum_to_one(table, structures) -> None:
    torch.manual_seed(0)
    target = TargetSpec(["is_metal"], kind="classification").to_dict()
    task = CrystalTask("cgcnn", SMALL.to_dict(), SMALL.graph_config().to_dict(), target, atom_table=table).eval()
    assert task.is_classification and task.model.task == "classification"
    batch = Batch.from_data_list(graphs_of(list(structures.values())))
    with torch.no_grad():
        p = task(batch)
    assert p.shape == (len(structures), 2)
    assert (p >= 0).all() and (p <= 1).all()
    torch.testing.assert_close(p.sum(dim=1), torch.ones(len(structures)))
    # the logits are the model's output; probabilities are their softmax
    with torch.no_grad():
        torch.testing.assert_close(p, torch.softmax(task.model(batch), dim=-1))


def test_regression_task_denormalises(table, structures) -> None:
    target = TargetSpec(["a", "b"], mean=[2.0, -1.0], std=[3.0, 0.5]).to_dict()
    task = CrystalTask("cgcnn", SMALL.to_dict(), SMALL.graph_config().to_dict(), target, atom_table=table).eval()
    batch = Batch.from_data_list([build_graph(s) for s in structures.values()])
    with torch.no_grad():
        raw = task.model(batch)
        out = task(batch)
    torch.testing.assert_close(out, raw * torch.tensor([3.0, 0.5]) + torch.tensor([2.0, -1.0]))
