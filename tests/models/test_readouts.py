"""The architecture-independent readouts on every encoder: one prediction per site (``site``) and
per-atom contributions pooled into the prediction (``site-linear``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Structure
from torch_geometric.data import Batch

from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.models.base import CrystalModel
from crystalgnn.models.readouts import SiteLinearReadout, SiteReadout, SoftplusMLP
from crystalgnn.models.registry import build_model, get_spec, make_config
from crystalgnn.training.losses import masked_regression_loss
from crystalgnn.training.targets import TargetSpec
from crystalgnn.training.task import CrystalTask
from tinydata import low_symmetry_cells

MODELS = ["cgcnn", "megnet", "schnet", "alignn"]
SMALL = {
    "cgcnn": {"atom_fea_len": 16, "h_fea_len": 16, "n_conv": 2},
    "megnet": {"nblocks": 2, "radius": 4.0},
    "schnet": {"num_interactions": 2},
    "alignn": {"alignn_layers": 1, "gcn_layers": 1, "hidden_features": 32, "embedding_features": 16},
}

pytestmark = pytest.mark.usefixtures("one_thread")


def cells() -> list[Structure]:
    """Low-symmetry cells (tests/tinydata.py)."""
    return low_symmetry_cells(2)


STATE = torch.tensor([[0.3, -1.0], [1.2, 0.4], [-0.7, 0.9]])


def batch_of(name: str, structs: list[Structure] | None = None, state: torch.Tensor = STATE) -> Batch:
    gcfg = make_config(name, SMALL[name]).graph_config()
    structs = structs or cells()
    b = Batch.from_data_list([build_graph(s, gcfg) for s in structs])
    if name == "megnet":  # a non-zero global state, so every state weight can get a gradient
        b.state = state[: len(structs)]
    return b


def site_model(name: str, table, readout: str = "site", **options) -> CrystalModel:
    torch.manual_seed(0)
    return build_model(
        name, make_config(name, SMALL[name]), table, out_dim=1, task="regression", readout=readout,
        readout_options=options or None,
    )  # fmt: skip


def _with_batch_norm_statistics(model: CrystalModel, name: str) -> CrystalModel:
    model.train()
    with torch.no_grad():
        model(batch_of(name))
    return model.eval()


# ----------------------------------------------------------------------------- per site
@pytest.mark.parametrize("name", MODELS)
def test_site_readout_predicts_one_value_per_atom(name, table) -> None:
    model = site_model(name, table, site_head_hidden=8, site_head_layers=2)
    spec = get_spec(name)
    assert model.level == "site" and type(model.encoder) is spec.encoder_cls
    assert isinstance(model.readout, SiteReadout) and isinstance(model.readout.mlp, SoftplusMLP)
    # the per-site head replaces the architecture's graph readout: nothing of it is in the model
    assert not any(isinstance(m, spec.readout_cls) for m in model.modules())
    mlp = model.readout.mlp
    assert (mlp.conv_to_fc.in_features, mlp.conv_to_fc.out_features) == (model.encoder.out_channels, 8)
    assert len(mlp.fcs) == 1 and mlp.fc_out.out_features == 1
    _with_batch_norm_statistics(model, name)
    b = batch_of(name)
    with torch.no_grad():
        out = model(b)
        emb = model.node_embeddings(b)
    assert out.shape == (b.num_nodes, 1) and torch.isfinite(out).all()
    torch.testing.assert_close(out, mlp(emb))  # the head applied to each atom's features
    assert float(out.std()) > 0  # per atom, not one value broadcast
    # defaults: the config's head size (CGCNN h_fea_len / n_h), else 128 and one layer
    default = site_model(name, table)
    hidden = SMALL[name].get("h_fea_len", 128)
    assert default.readout.mlp.conv_to_fc.out_features == hidden and len(default.readout.mlp.fcs) == 0


#: encoder parameters that per-atom features never reach, so a per-site loss gives them no gradient
_NOT_REACHING_ATOMS: dict[str, str] = {}  # every architecture prunes what a site readout does not read


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n, marks=pytest.mark.xfail(strict=True, reason=f"unused in a site model: {_NOT_REACHING_ATOMS[n]}")
        )
        if n in _NOT_REACHING_ATOMS
        else n
        for n in MODELS
    ],
)
def test_site_readout_has_no_unused_parameters(name, table) -> None:
    """Every trainable parameter of a per-site model gets a gradient from a per-site loss (what
    the former SiteModel ensured by freezing the backbone's unused graph head), so none is
    counted as trained without being trained."""
    model = site_model(name, table, site_head_layers=2)
    model.train()
    b = batch_of(name)
    y = torch.linspace(-1.0, 1.0, b.num_nodes)
    y[1] = float("nan")  # a masked site
    loss, n = masked_regression_loss(model(b)[:, 0], y)
    assert int(n) == b.num_nodes - 1
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    unused = [k for (k, _), g in zip(named, grads, strict=True) if g is None or not bool((g != 0).any())]
    assert not unused, unused
    assert model.n_parameters() == sum(p.numel() for _, p in named)


# ----------------------------------------------------------------------------- site-linear
@pytest.mark.parametrize("reduce", ["mean", "sum"])
@pytest.mark.parametrize("name", MODELS)
def test_site_linear_prediction_is_the_pooled_contributions(name, reduce, table) -> None:
    """The prediction of each structure is exactly the mean (or sum) of its atoms' contributions."""
    opts = {"site_reduce": "sum"} if reduce == "sum" else {}
    model = _with_batch_norm_statistics(site_model(name, table, "site-linear", **opts), name)
    assert model.level == "graph" and isinstance(model.readout, SiteLinearReadout)
    assert model.readout.reduce == reduce and f"reduce={reduce!r}" in repr(model.readout)
    b = batch_of(name)
    with torch.no_grad():
        pred = model(b)
        c = model.readout.contributions(model.encoder(b))
    assert pred.shape == (3, 1) and c.shape == (b.num_nodes, 1)
    for k in range(b.num_graphs):
        mine = c[b.batch == k]
        assert len(mine) == len(cells()[k])
        pooled = mine.sum(dim=0) if reduce == "sum" else mine.mean(dim=0)
        torch.testing.assert_close(pred[k], pooled, rtol=1e-6, atol=1e-6)
    # structures on their own give the same contributions and predictions as in the batch
    with torch.no_grad():
        alone = torch.cat([model(batch_of(name, [s], STATE[k : k + 1])) for k, s in enumerate(cells())])
    torch.testing.assert_close(alone, pred, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["cgcnn", "schnet"])
def test_site_linear_sum_is_extensive_and_mean_intensive(name, table) -> None:
    """A 2x1x1 supercell: the mean-pooled prediction is unchanged, the sum doubles."""
    s = cells()[0]
    structs = [s, s * (2, 1, 1)]
    with torch.no_grad():
        mean = _with_batch_norm_statistics(site_model(name, table, "site-linear"), name)(batch_of(name, structs))
        total = _with_batch_norm_statistics(site_model(name, table, "site-linear", site_reduce="sum"), name)(
            batch_of(name, structs)
        )
    torch.testing.assert_close(mean[1], mean[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(total[1], 2 * total[0], rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- errors
def test_readout_choices_are_checked(table) -> None:
    cfg = make_config("cgcnn", SMALL["cgcnn"])
    with pytest.raises(ValueError, match="unknown readout 'atoms'"):
        build_model("cgcnn", cfg, table, out_dim=1, readout="atoms")
    with pytest.raises(ValueError, match="reduce must be mean or sum"):
        build_model("cgcnn", cfg, table, out_dim=1, readout="site-linear", readout_options={"site_reduce": "max"})
    with pytest.raises(ValueError, match="only --readout graph"):
        build_model("soap-mlp", make_config("soap-mlp", {"n_features": 10}), table, out_dim=1, readout="site")
    gcfg = cfg.graph_config().to_dict()
    site = TargetSpec(["q"], level="site").to_dict()
    graph = TargetSpec(["e"]).to_dict()
    with pytest.raises(ValueError, match="--readout site"):
        CrystalTask("cgcnn", cfg.to_dict(), gcfg, site, readout="graph", atom_table=table)
    with pytest.raises(ValueError, match="per-site target"):
        CrystalTask("cgcnn", cfg.to_dict(), gcfg, graph, readout="site", atom_table=table)
    # site-linear is a graph-level readout: it trains on graph-level targets
    task = CrystalTask("cgcnn", cfg.to_dict(), gcfg, graph, readout="site-linear", atom_table=table)
    assert task.model.level == "graph" and isinstance(task.model.readout, SiteLinearReadout)
    assert np.isclose(float(task.y_std[0]), 1.0)
