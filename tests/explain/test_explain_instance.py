"""Instance explanations: edge masks reach every convolution, node masks act after the embedding,
the normal path is unchanged, explanations permute with the atoms, fidelity beats random."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pymatgen.core import Structure
from torch_geometric.data import Batch
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks
from torch_geometric.nn import MessagePassing

from crystalgnn.explain.fidelity import fidelity_table, regression_fidelity, top_k_mask
from crystalgnn.explain.instance import explain_graph, explain_graphs, undirected_bond_keys
from crystalgnn.explain.masks import ExplainableModel, masked_prediction
from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.models.cgcnn import CGConvLayer
from crystalgnn.models.registry import build_model, make_config
from tinydata import low_symmetry_cells

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = ["cgcnn", "megnet", "schnet", "alignn"]
SMALL = {
    "cgcnn": {"n_conv": 2},
    "megnet": {"nblocks": 2, "radius": 4.0},
    "schnet": {"num_interactions": 2},
    "alignn": {"alignn_layers": 1, "gcn_layers": 1, "hidden_features": 32, "embedding_features": 16},
}
#: convolutions that must receive bond masks: CGCNN convs, MEGNet blocks, SchNet CFConvs,
#: ALIGNN atom-graph convs (one per ALIGNN layer + the gated GCNs); line-graph convs must not
EXPECTED_CONVS = {"cgcnn": 2, "megnet": 2, "schnet": 2, "alignn": 2}


def model_and_batch(name: str, table: torch.Tensor, task: str = "regression", seed: int = 0):
    torch.manual_seed(seed)
    cfg = make_config(name, SMALL[name])
    model = build_model(name, cfg, table, out_dim=1 if task == "regression" else 2, task=task).eval()
    batch = Batch.from_data_list([build_graph(s, cfg.graph_config()) for s in low_symmetry_cells(4)[:2]])
    return model, cfg, batch


@pytest.mark.parametrize("name", MODELS)
def test_every_convolution_receives_the_edge_mask(name: str, table: torch.Tensor) -> None:
    model, _, batch = model_and_batch(name, table)
    wrapped = ExplainableModel(model)
    edge_index = wrapped.edge_index(batch)
    x = torch.ones(batch.num_nodes, 1)
    convs = [m for m in model.modules() if isinstance(m, MessagePassing) and m.explain is not False]
    assert len(convs) == EXPECTED_CONVS[name]
    y0 = wrapped(x, edge_index, batch)
    for conv in convs:  # the mask on this one layer alone changes the output and gets gradients
        mask = torch.ones(edge_index.shape[1], requires_grad=True)
        set_masks(conv, mask, edge_index, apply_sigmoid=False)
        wrapped(x, edge_index, batch).sum().backward()
        assert mask.grad is not None and (mask.grad != 0).sum() > 0.9 * mask.numel()
        set_masks(conv, torch.zeros(edge_index.shape[1]), edge_index, apply_sigmoid=False)
        assert not torch.allclose(wrapped(x, edge_index, batch), y0)
        clear_masks(conv)
    if name == "alignn":  # the line-graph layers are skipped by set_masks
        assert all(layer.edge_update.explain is False for layer in model.encoder.alignn_layers)
    wrapped.remove()


@pytest.mark.parametrize("name", MODELS)
def test_unit_masks_leave_the_prediction_unchanged(name: str, table: torch.Tensor) -> None:
    model, _, batch = model_and_batch(name, table)
    wrapped = ExplainableModel(model)
    with torch.no_grad():
        y = model(batch)
        n, e = batch.num_nodes, wrapped.edge_index(batch).shape[1]
        masked = masked_prediction(wrapped, batch, torch.ones(n), torch.ones(e))
    if name == "cgcnn":  # plain prediction takes CGCNN's folded path: the same to float rounding
        torch.testing.assert_close(masked, y, rtol=1e-5, atol=1e-5)
    else:
        assert torch.equal(masked, y)
    with torch.no_grad():
        assert torch.equal(model(batch), y)  # masks cleared afterwards
    wrapped.remove()


def test_cgcnn_layer_is_the_reference_formula(table: torch.Tensor) -> None:
    """The MessagePassing CGConv layer computes Eq. 5 with the reference batch norms, as before."""
    torch.manual_seed(1)
    layer = CGConvLayer(8, 5).eval()
    for bn in (layer.bn1, layer.bn2):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    x, e = torch.randn(6, 8), torch.randn(18, 5)
    dst = torch.arange(6).repeat_interleave(3)
    src = torch.randint(0, 6, (18,))
    z = torch.cat((x[dst], x[src], e), dim=1)
    filt, core = layer.bn1(layer.fc_full(z)).chunk(2, dim=1)
    summed = torch.zeros(6, 8).index_add_(0, dst, torch.sigmoid(filt) * F.softplus(core))
    expected = F.softplus(x + layer.bn2(summed))
    with torch.no_grad():
        for degree in (None, 3):
            assert torch.allclose(layer(x, torch.stack((src, dst)), e, degree), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["cgcnn", "schnet"])
def test_zero_edge_mask_is_removing_the_bond(name: str, table: torch.Tensor) -> None:
    """Sum aggregation: a zero mask on the edges into atom 0 equals deleting those edges."""
    model, _, batch = model_and_batch(name, table)
    wrapped = ExplainableModel(model)
    drop = batch.edge_index[1] == 0
    mask = (~drop).float()
    with torch.no_grad():
        masked = masked_prediction(wrapped, batch, edge_mask=mask)
        pruned = batch.clone()
        for key in ("edge_index",):
            pruned[key] = batch[key][:, ~drop]
        for key in ("edge_shift", "edge_vec", "edge_dist"):
            pruned[key] = batch[key][~drop]
        assert torch.allclose(masked, model(pruned), atol=1e-5)
        assert not torch.allclose(masked, model(batch), atol=1e-5)
    wrapped.remove()


def permuted(s: Structure, perm: list[int]) -> Structure:
    return Structure.from_sites([s[i] for i in perm])


@pytest.mark.parametrize(("name", "method"), [*((m, "saliency") for m in MODELS), ("schnet", "ig"), ("alignn", "ig")])
def test_explanations_permute_with_the_atoms(name: str, method: str, table: torch.Tensor) -> None:
    model, cfg, _ = model_and_batch(name, table)
    s = low_symmetry_cells(4)[0]
    perm = [3, 0, 4, 2, 1]
    graphs = [build_graph(s, cfg.graph_config()), build_graph(permuted(s, perm), cfg.graph_config())]
    a, b = explain_graphs(model, graphs, ["orig", "perm"], method)
    assert b.elements == [a.elements[i] for i in perm]
    assert b.prediction == pytest.approx(a.prediction, rel=1e-5)  # explaining leaves the model as it was
    np.testing.assert_allclose(b.atom_importance, a.atom_importance[perm], rtol=1e-4, atol=1e-7)
    assert a.atom_importance.max() > 0
    # bonds: the same undirected bonds (sites renamed) with the same importances
    ba, bb = a.bonds(), b.bonds()
    rename = {new: old for new, old in enumerate(perm)}
    key_a = {(r.site_i, r.site_j, round(r.length, 3)): r.importance for r in ba.itertuples()}
    for r in bb.itertuples():
        i, j = sorted((rename[r.site_i], rename[r.site_j]))
        assert key_a[(i, j, round(r.length, 3))] == pytest.approx(r.importance, rel=1e-3, abs=1e-7)
    assert len(ba) == len(bb)


def test_undirected_bonds_take_the_max_of_both_directions() -> None:
    edge_index = np.array([[0, 1, 1], [1, 0, 1]])
    vec = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    keys = undirected_bond_keys(edge_index, vec)
    assert keys[0] == keys[1] and keys[2] != keys[0]


def one_element_model(table: torch.Tensor, z_hot: int) -> tuple[torch.nn.Module, object]:
    """A SchNet whose element embedding is zero for every element but ``z_hot``: atoms of other
    elements carry nothing after the embedding, so masking them cannot change the prediction."""
    model, cfg, _ = model_and_batch("schnet", table, seed=3)
    with torch.no_grad():
        w = model.encoder.embedding.weight
        hot = w[z_hot].clone() * 5
        w.zero_()
        w[z_hot] = hot
    return model, cfg


@pytest.mark.parametrize("method", ["gnnexplainer", "ig", "saliency"])
def test_the_determining_atom_ranks_first_and_beats_random(method: str, table: torch.Tensor) -> None:
    model, cfg = one_element_model(table, z_hot=22)  # Ti, one of the five atoms of SrTiO3
    s = low_symmetry_cells(4)[0]
    g = build_graph(s, cfg.graph_config())
    wrapped = ExplainableModel(model)
    torch.manual_seed(0)
    expl = explain_graph(wrapped, g, method, epochs=60)
    assert expl.atoms()["element"].iloc[0] == "Ti"
    rows = regression_fidelity(wrapped, g, expl, what="atoms", ks=(20,), n_random=20)
    assert rows[0]["size"] == 1 and rows[0]["delta"] > 0
    assert rows[0]["delta"] > 2 * rows[0]["delta_random"]  # random hits Ti about 1 time in 5
    wrapped.remove()


def test_top_k_mask_sizes() -> None:
    imp = np.array([0.1, 0.5, 0.3, 0.2, 0.0])
    assert top_k_mask(imp, 10).tolist() == [0, 1, 0, 0, 0]  # at least one
    assert top_k_mask(imp, 50).tolist() == [0, 1, 1, 1, 0]  # ceil(2.5)


def test_fidelity_table_regression_and_classification(table: torch.Tensor) -> None:
    cells = low_symmetry_cells(4)
    for task in ("regression", "classification"):
        model, cfg, _ = model_and_batch("cgcnn", table, task=task)
        graphs = {"cgcnn": [build_graph(s, cfg.graph_config()) for s in cells[:2]]}
        df = fidelity_table({"cgcnn": model}, graphs, ["saliency"], ks=(20, 50), n_random=3)
        assert len(df) == 4 and set(df["what"]) == {"atoms", "bonds"}
        assert (df["seconds_per_structure"] > 0).all()
        if task == "regression":
            assert (df["delta"] >= 0).all() and (df["delta_random"] > 0).all()
        else:
            cols = ["fid_plus", "fid_minus", "fid_plus_random", "fid_minus_random", "characterization"]
            assert ((df[cols] >= 0) & (df[cols] <= 1)).all().all()


def test_captum_methods_say_how_to_install_captum(table: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from crystalgnn.explain.instance import make_explainer

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "captum" else real(name, *a))
    model, _, _ = model_and_batch("cgcnn", table)
    wrapped = ExplainableModel(model)
    with pytest.raises(ImportError, match=r"crystalgnn\[explain\]"):
        make_explainer(wrapped, "ig")
    assert make_explainer(wrapped, "gnnexplainer") is not None  # GNNExplainer is PyG's own
    wrapped.remove()
