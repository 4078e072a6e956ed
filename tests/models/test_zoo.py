"""Every registered model behind the one interface (encoder + readout): learning, invariances,
heads, checkpoints."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch
from pymatgen.core import Structure
from torch_geometric.data import Batch
from zoo_checks import batch_of, check_invariances

from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.graphs.neighbors import periodic_neighbors
from crystalgnn.models.base import CrystalModel, Encoder, Encoding, GraphReadout
from crystalgnn.models.registry import build_model, get_spec, make_config, model_names
from crystalgnn.training.targets import TargetSpec
from crystalgnn.training.task import CrystalTask
from tinydata import low_symmetry_cells, read_predictions, strained_crystals

MODELS = ["cgcnn", "megnet", "schnet", "alignn"]
#: small variants for the tests that train (the architecture is the same, only narrower/shallower)
SMALL = {
    "cgcnn": {},
    "megnet": {"nblocks": 1, "radius": 4.0},
    "schnet": {"num_interactions": 3},
    "alignn": {"alignn_layers": 1, "gcn_layers": 1, "hidden_features": 64, "embedding_features": 32},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def base_cells() -> list[Structure]:
    """Low-symmetry cells (tests/tinydata.py)."""
    return low_symmetry_cells(4)


def crystals(n: int, seed: int = 0) -> list[Structure]:
    """``n`` distinct cells (tests/tinydata.py)."""
    return strained_crystals(n, seed)


def k_nn_gap(s: Structure, k: int = 12, radius: float = 9.0) -> float:
    """Smallest gap between the k-th and (k+1)-th neighbour distance over all atoms."""
    pairs = periodic_neighbors(s.cart_coords, s.lattice.matrix, radius, "numpy")
    gaps = []
    for i in range(len(s)):
        d = np.sort(pairs.distance[pairs.center == i])
        gaps.append(d[k] - d[k - 1])
    return float(min(gaps))


# ----------------------------------------------------------------------------- interface
def test_registry_lists_every_model():
    assert set(MODELS) <= set(model_names())
    for name in MODELS:
        spec = get_spec(name)
        assert spec.description
        assert issubclass(spec.encoder_cls, Encoder) and issubclass(spec.readout_cls, GraphReadout)
        assert spec.site_readouts  # every graph model has per-atom features


@pytest.mark.parametrize("name", MODELS)
def test_config_round_trip_and_unknown_option(name):
    cfg = make_config(name)
    assert make_config(name, cfg.to_dict()) == cfg
    assert cfg.graph_config().radius > 0
    with pytest.raises(KeyError, match="unknown"):
        make_config(name, {"not_an_option": 1})


@pytest.mark.parametrize("name", MODELS)
def test_forward_shapes_and_repr(name, table):
    torch.manual_seed(0)
    model = build_model(name, make_config(name), table, out_dim=3, task="regression").eval()
    spec = get_spec(name)
    assert isinstance(model, CrystalModel) and model.name == name and model.level == "graph"
    assert type(model.encoder) is spec.encoder_cls and type(model.readout) is spec.readout_cls
    assert model.config == make_config(name)
    b = batch_of(crystals(3), name)
    out = model(b)
    assert out.shape == (3, 3)
    with torch.no_grad():
        enc = model.encoder(b)
        assert isinstance(enc, Encoding)
        torch.testing.assert_close(model.readout(enc, b), out.detach())  # forward = readout(encoder(batch))
    emb = model.node_embeddings(b)
    assert emb.shape == (b.num_nodes, model.encoder.out_channels) and emb.ndim == 2
    r = repr(model)
    assert r.startswith("CrystalModel(") and f"name={name!r}" in r
    assert repr(model.encoder).startswith(spec.encoder_cls.__name__ + "(")
    assert f"(readout): {spec.readout_cls.__name__}(" in r
    before = [p.detach().clone() for p in model.parameters()]
    torch.manual_seed(1)
    model.reset_parameters()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


# ----------------------------------------------------------------------------- learning
@pytest.mark.parametrize("name", MODELS)
def test_overfits_sixteen_structures(name, table):
    torch.manual_seed(0)
    structs = crystals(16, seed=1)
    b = batch_of(structs, name)
    vol = np.array([s.volume / len(s) for s in structs])
    y = torch.tensor((vol - vol.mean()) / vol.std(), dtype=torch.float32).view(-1, 1)
    model = build_model(name, make_config(name, SMALL[name]), table, out_dim=1, task="regression")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses: list[float] = []
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(b) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < losses[0] / 10:
            break
    assert losses[-1] < losses[0] / 10, (name, losses[0], losses[-1], len(losses))


# ----------------------------------------------------------------------------- invariances
@pytest.mark.parametrize("name", MODELS)
def test_permutation_rotation_supercell_invariance(name, table):
    structs = base_cells()
    for s in structs:
        assert k_nn_gap(s) > 1e-3  # no ties at the 12th neighbour: the graphs are unique
    check_invariances(name, table)


# ----------------------------------------------------------------------------- heads
@pytest.mark.parametrize("name", MODELS)
def test_classification_probabilities(name):
    torch.manual_seed(0)
    cfg = make_config(name)
    task = CrystalTask(
        model_name=name,
        model_config=cfg.to_dict(),
        graph_config=cfg.graph_config().to_dict(),
        target=TargetSpec(["cls"], kind="classification", n_classes=3).to_dict(),
    ).eval()
    with torch.no_grad():
        p = task(batch_of(crystals(4), name))
    assert p.shape == (4, 3)
    assert bool((p >= 0).all())
    torch.testing.assert_close(p.sum(dim=1), torch.ones(4))


# ----------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_dict_round_trip_is_exact(name, tmp_path):
    """A checkpoint dict (hyper-parameters + state_dict, current format) rebuilds the same network."""
    from crystalgnn.prediction import Predictor
    from crystalgnn.training.checkpoints import format_version, read_checkpoint, save_task
    from crystalgnn.training.migration import FORMAT_VERSION

    torch.manual_seed(0)
    cfg = make_config(name, SMALL[name])
    task = CrystalTask(
        model_name=name,
        model_config=cfg.to_dict(),
        graph_config=cfg.graph_config().to_dict(),
        target=TargetSpec(["a", "b"], mean=[1.0, -2.0], std=[0.5, 3.0]).to_dict(),
    )
    graphs = [build_graph(s, cfg.graph_config()) for s in crystals(5, seed=4)]
    task.train()
    with torch.no_grad():
        task.model(Batch.from_data_list(graphs))  # batch-norm statistics move away from init
    task.eval()
    path = tmp_path / "model.ckpt"
    torch.save(
        {
            "hyper_parameters": dict(task.hparams),
            "state_dict": task.state_dict(),
            "crystalgnn_format_version": FORMAT_VERSION,
        },
        path,
    )
    with torch.no_grad():
        expected = task(Batch.from_data_list(graphs)).numpy()
    got = Predictor.load(path).predict_graphs(graphs)
    np.testing.assert_array_equal(got, expected)
    # the same through save_task, which writes the current format
    saved = save_task(task, tmp_path / "saved.ckpt")
    assert format_version(read_checkpoint(saved)) == FORMAT_VERSION
    loaded = Predictor.load(saved)
    assert loaded.kind == "regression" and loaded.targets == ["a", "b"]
    np.testing.assert_array_equal(loaded.predict_graphs(graphs), expected)


def write_cif_folder(folder, structs, values) -> None:
    folder.mkdir()
    rows = []
    for k, (s, v) in enumerate(zip(structs, values, strict=True)):
        (folder / f"c{k:03d}.cif").write_text(s.to(fmt="cif"))
        rows.append([f"c{k:03d}", f"{v:.6f}"])
    with (folder / "id_prop.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)


@pytest.mark.parametrize("name", MODELS)
def test_train_one_epoch_then_predict_from_run_folder(name, tmp_path):
    """Train one epoch through ``run.train`` (Lightning, checkpoints, test report), then
    ``Predictor.load(run_dir)`` on the CIF files must reproduce the run's test predictions."""
    from crystalgnn.data.readers import load_source
    from crystalgnn.prediction import Predictor
    from crystalgnn.training.config import TrainConfig
    from crystalgnn.training.run import train

    structs = crystals(40, seed=5)
    values = [s.volume / len(s) for s in structs]
    write_cif_folder(tmp_path / "cifs", structs, values)
    cfg = TrainConfig(
        source=str(tmp_path / "cifs"),
        targets=["target"],
        model=name,
        model_options=SMALL[name],
        epochs=1,
        batch_size=16,
        optimizer="adam",
        lr=1e-3,
        scheduler="none",
        out=str(tmp_path / "run"),
        n_jobs=1,
        use_cache=False,
        progress=False,
    )
    result = train(cfg)
    assert result.metrics["model"] == name and result.metrics["n_parameters"] > 0
    saved = read_predictions(tmp_path / "run" / "predictions.csv")
    pred = Predictor.load(tmp_path / "run")
    assert pred.model_name == name and dataclasses.asdict(make_config(name, SMALL[name])) == dict(
        pred.task.hparams.model_config
    )
    ds = load_source(tmp_path / "cifs", n_jobs=1, show_progress=False)
    out = pred.predict(ds, n_jobs=1, show_progress=False)
    by_id = dict(zip(out.ids, out.values[:, 0], strict=True))
    again = np.array([by_id[i] for i in saved["id"]], dtype=np.float32)
    np.testing.assert_array_equal(again, saved["prediction"].to_numpy(dtype=np.float32))


@pytest.mark.parametrize("name", MODELS)
def test_shipped_config_file_holds_the_model_defaults(name):
    """``configs/<model>.yaml`` loads as a TrainConfig and spells out the published defaults."""
    from pathlib import Path

    from crystalgnn.training.config import TrainConfig

    path = Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml"
    cfg = TrainConfig.from_yaml(path)
    assert cfg.model == name
    assert cfg.model_options and make_config(name, cfg.model_options) == make_config(name)
