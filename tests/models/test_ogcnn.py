"""OGCNN (Karamad et al. 2020): OFM atom features, learning, invariances, CLI."""

from __future__ import annotations

import pytest
import torch
from zoo_checks import batch_of, check_invariances, overfit_ratio, train_with_cli

from crystalgnn.graphs.orbital_field_matrix import valence_table
from crystalgnn.models.ogcnn import OGCNNConfig
from crystalgnn.models.registry import build_model, get_spec, make_config
from tinydata import low_symmetry_cells

pytestmark = pytest.mark.usefixtures("one_thread")


def test_registered_with_voronoi_graph():
    spec = get_spec("ogcnn")
    assert spec.config_cls is OGCNNConfig and "Karamad" in spec.description
    gcfg = make_config("ogcnn").graph_config()
    assert gcfg.neighbors == "voronoi" and gcfg.max_neighbors is None  # the OFM needs every face


def test_ofm_enters_the_atom_features(table):
    b = batch_of(low_symmetry_cells(4), "ogcnn")
    torch.manual_seed(0)
    model = build_model("ogcnn", make_config("ogcnn"), table, out_dim=1).eval()
    ablated = build_model("ogcnn", make_config("ogcnn", {"use_ofm": False}), table, out_dim=1)
    assert model.encoder.encode.in_features == table.shape[1] + 1024
    assert ablated.encoder.encode.in_features == table.shape[1]
    ofm = model.encoder.ofm(b)
    assert ofm.shape == (b.num_nodes, 1024) and bool((ofm >= 0).all()) and float(ofm.sum()) > 0
    # the valence table is a buffer (in the checkpoint), equal to the module's table
    rows = model.encoder.valence.shape[0]
    torch.testing.assert_close(model.encoder.valence[:rows], torch.from_numpy(valence_table()[:rows]))
    assert "encoder.valence" in model.state_dict()
    # the OFM changes the prediction: zero it and the output moves
    with torch.no_grad():
        out = model(b)
        model.encoder.valence.zero_()
        assert not torch.allclose(model(b), out)


def test_needs_the_voronoi_graph(table):
    model = build_model("ogcnn", make_config("ogcnn"), table, out_dim=1)
    with pytest.raises(ValueError, match="Voronoi"):
        model(batch_of(low_symmetry_cells(4), "cgcnn"))


def test_overfits_sixteen_structures(table):
    first, last = overfit_ratio("ogcnn", table, {})
    assert last < first / 10, (first, last)


def test_permutation_rotation_supercell_invariance(table):
    check_invariances("ogcnn", table)


def test_trains_through_the_cli(tmp_path):
    metrics = train_with_cli("ogcnn", tmp_path)
    assert metrics["epochs_run"] == 2 and metrics["n_test"] == 8
