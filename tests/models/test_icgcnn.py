"""iCGCNN (Park & Wolverton 2020): the three-body pairs, the layer, learning, invariances, CLI."""

from __future__ import annotations

import itertools

import pytest
import torch
from zoo_checks import batch_of, check_invariances, overfit_ratio, train_with_cli

from crystalgnn.models.icgcnn import ICGCNNConfig, ICGConvLayer, star_triplets
from crystalgnn.models.registry import build_model, get_spec, make_config
from tinydata import low_symmetry_cells

pytestmark = pytest.mark.usefixtures("one_thread")


def test_star_triplets_are_every_ordered_pair_of_bonds_of_an_atom():
    centre = torch.tensor([2, 0, 2, 1, 0, 2, 2])
    got = {tuple(t) for t in star_triplets(centre, 4).T.tolist()}
    expected = {(a, b) for a, b in itertools.permutations(range(7), 2) if centre[a] == centre[b]}
    assert got == expected
    assert star_triplets(centre, 4).shape[1] == sum(d * (d - 1) for d in torch.bincount(centre).tolist())


def test_registered_with_voronoi_graph_and_options():
    spec = get_spec("icgcnn")
    assert spec.config_cls is ICGCNNConfig and "Park" in spec.description
    cfg = make_config("icgcnn", {"max_neighbors": 8, "three_body": False})
    assert cfg.graph_config().neighbors == "voronoi" and cfg.graph_config().max_neighbors == 8
    with pytest.raises(KeyError, match="unknown icgcnn option"):
        make_config("icgcnn", {"n_conv_layers": 2})


def test_three_body_term_changes_the_messages(table):
    b = batch_of(low_symmetry_cells(4), "icgcnn")
    torch.manual_seed(0)
    model = build_model("icgcnn", make_config("icgcnn"), table, out_dim=1).eval()
    x = model.encoder.embedding(model.encoder.atom_features(b.z))
    e = model.encoder.edge_features(b)
    conv: ICGConvLayer = model.encoder.convs[0]
    triplets = star_triplets(b.edge_index[1], b.num_nodes)
    with_three, e_new = conv(x, b.edge_index, e, triplets)
    without, _ = conv(x, b.edge_index, e, triplets[:, :0])
    assert not torch.allclose(with_three, without)
    assert e_new.shape == e.shape and not torch.allclose(e_new, e)  # bonds updated (Eq. 6)
    last: ICGConvLayer = model.encoder.convs[-1]
    assert not last.edge_output and last(x, b.edge_index, e, triplets)[1] is e


def test_needs_the_voronoi_graph(table):
    b = batch_of(low_symmetry_cells(4), "cgcnn")
    model = build_model("icgcnn", make_config("icgcnn"), table, out_dim=1)
    with pytest.raises(ValueError, match="Voronoi"):
        model(b)


def test_overfits_sixteen_structures(table):
    first, last = overfit_ratio("icgcnn", table, {"atom_fea_len": 32})
    assert last < first / 10, (first, last)


def test_permutation_rotation_supercell_invariance(table):
    check_invariances("icgcnn", table)


def test_trains_through_the_cli(tmp_path):
    metrics = train_with_cli("icgcnn", tmp_path)
    assert metrics["epochs_run"] == 2 and metrics["n_test"] == 8
