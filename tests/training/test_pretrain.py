"""Crystal Twins: augmentations, the two losses, and pretrain -> fine-tune through the CLI."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
import torch
from torch_geometric.data import Batch
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.training.augment import Augmentation, drop_edges, mask_atoms, masked_atom_inputs, perturb_positions
from crystalgnn.training.pretrain import CrystalTwins, barlow_twins_loss, simsiam_loss
from tinydata import perovskite_rows, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["-m", "atom_fea_len=16", "-m", "n_conv=1", "-m", "h_fea_len=16"]


@pytest.fixture(scope="module")
def batch() -> Batch:
    from pymatgen.core import Structure

    rows = perovskite_rows(4)
    return Batch.from_data_list([build_graph(Structure.from_str(r["cif"], fmt="cif")) for r in rows])


def composition(g) -> Counter:
    return Counter(g.z.tolist())


def test_position_noise_is_bounded_and_bonds_follow(batch) -> None:
    gen = torch.Generator().manual_seed(0)
    view = perturb_positions(batch, 0.05, gen)
    moved = (view.pos - batch.pos).norm(dim=1)
    assert float(moved.max()) <= 0.05 + 1e-6 and float(moved.min()) >= 0 and float(moved.mean()) > 0.005
    assert composition(view) == composition(batch) and torch.equal(view.z, batch.z)
    # every bond vector is r_j + shift @ L - r_i with the moved positions
    j, i = view.edge_index
    lattice = view.lattice[view.batch[i]]  # (E, 3, 3)
    expected = view.pos[j] + torch.einsum("ek,ekl->el", view.edge_shift.float(), lattice) - view.pos[i]
    torch.testing.assert_close(view.edge_vec, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(view.edge_dist, expected.norm(dim=1), atol=1e-4, rtol=0)
    assert torch.equal(batch.pos, batch.pos.clone())  # the original is not modified
    assert not torch.equal(view.edge_dist, batch.edge_dist)


def test_masking_and_edge_dropping_keep_the_atoms(batch) -> None:
    gen = torch.Generator().manual_seed(1)
    masked = mask_atoms(batch, 0.25, gen)
    assert int(masked.atom_mask.sum()) == round(0.25 * batch.num_nodes)
    assert composition(masked) == composition(batch)
    dropped = drop_edges(batch, 0.3, gen)
    e0, e1 = batch.edge_index.shape[1], dropped.edge_index.shape[1]
    assert 0.5 * e0 < e1 < 0.9 * e0  # ~70 % kept
    assert dropped.edge_vec.shape[0] == dropped.edge_dist.shape[0] == dropped.edge_shift.shape[0] == e1
    assert composition(dropped) == composition(batch) and dropped.pos is batch.pos
    # the kept bonds are a subset of the original ones, with their own lengths
    orig = {(int(a), int(b), round(float(d), 5)) for a, b, d in zip(*batch.edge_index, batch.edge_dist, strict=True)}
    assert all(
        (int(a), int(b), round(float(d), 5)) in orig
        for a, b, d in zip(*dropped.edge_index, dropped.edge_dist, strict=True)
    )
    view = Augmentation(noise=0.1, atom_mask=0.2, edge_drop=0.2)(batch, gen)
    assert composition(view) == composition(batch) and float((view.pos - batch.pos).norm(dim=1).max()) <= 0.1 + 1e-6
    with pytest.raises(ValueError, match="fraction"):
        Augmentation(atom_mask=1.0)


def test_masked_atoms_get_zero_input_features(batch, table) -> None:
    from crystalgnn.models.registry import build_model, make_config

    enc = build_model("cgcnn", make_config("cgcnn", {"atom_fea_len": 8, "n_conv": 1}), table, out_dim=1).encoder
    mask = torch.zeros(batch.num_nodes, dtype=torch.bool)
    mask[:3] = True
    seen = []
    h = enc.embedding.register_forward_pre_hook(lambda m, a: seen.append(a[0]))  # the embedding's input
    with masked_atom_inputs(enc, mask):
        enc(batch)
    enc(batch)  # the mask is gone after the block
    h.remove()
    assert seen[0][:3].abs().sum() == 0 and seen[0][3:].abs().sum() > 0
    assert seen[1][:3].abs().sum() > 0


def test_barlow_twins_loss_is_zero_only_for_equal_decorrelated_views() -> None:
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])  # standardised, uncorrelated
    assert float(barlow_twins_loss(z, z)) == pytest.approx(0.0, abs=1e-6)
    # correlated features: the off-diagonal term, lambda * 2 * c12^2
    zc = torch.tensor([[1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, 1.0]])
    a = (zc - zc.mean(0)) / zc.std(0, unbiased=False)
    c12 = float((a[:, 0] * a[:, 1]).mean())
    assert float(barlow_twins_loss(zc, zc, lambd=0.1)) == pytest.approx(0.1 * 2 * c12**2, rel=1e-5)
    # views that disagree: the diagonal term (1 - c_ii)^2 with c = -1 on the second feature
    flipped = z * torch.tensor([1.0, -1.0])
    assert float(barlow_twins_loss(z, flipped, lambd=0.0)) == pytest.approx(4.0, rel=1e-5)


def test_simsiam_loss_is_minus_one_for_aligned_views_and_stops_gradients() -> None:
    z1 = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
    z2 = 2 * z1  # the same directions
    assert float(simsiam_loss(3 * z1, 0.5 * z2, z1, z2)) == pytest.approx(-1.0, abs=1e-6)
    orth = torch.tensor([[-2.0, 1.0], [2.0, 1.0]])  # row by row orthogonal to z1 and z2
    assert float(simsiam_loss(orth, orth, z1, z2)) == pytest.approx(0.0, abs=1e-6)
    p1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    p2 = torch.tensor([[0.3, 1.0], [1.0, 0.2]], requires_grad=True)
    t1, t2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    loss = simsiam_loss(p1, p2, t1, t2)
    loss.backward()
    assert float(loss.detach()) > -1.0 and p1.grad is not None and p2.grad is not None
    assert t1.grad is None and t2.grad is None  # stop-gradient on the projections


@pytest.mark.parametrize("method", ["barlow", "simsiam"])
def test_a_pretraining_step_lowers_the_loss(batch, table, method) -> None:
    torch.manual_seed(0)
    m = CrystalTwins("cgcnn", {"atom_fea_len": 16, "n_conv": 1}, table, method=method, projector_dim=16)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    gen_seed = 5
    losses = []
    for _ in range(15):
        m.views.manual_seed(gen_seed)  # the same two views each step
        loss = m.pair_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_pretrain_then_fine_tune_through_the_cli(tmp_path) -> None:
    rows = perovskite_rows(24)
    unlabelled = write_jsonl(tmp_path / "a.jsonl", rows[:12], columns=("id", "cif"))
    more = write_jsonl(tmp_path / "b.jsonl", rows[12:20], columns=("id", "cif"))
    labelled = write_jsonl(tmp_path / "lab.jsonl", rows)
    out = tmp_path / "ct"
    r = CliRunner().invoke(app, ["pretrain", str(unlabelled), str(more), "--method", "simsiam", "--epochs", "2",
                                 "--batch-size", "6", "-o", str(out), "-j", "1", "--threads", "1", "--no-progress", *TINY])  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_structures"] == 20 and summary["epochs_run"] == 2 and summary["method"] == "simsiam"
    # the exported encoder is the pretrained one
    ckpt = torch.load(out / "model.ckpt", weights_only=False)
    lit = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    w = "encoder.convs.0.fc_full.weight"
    assert torch.equal(ckpt["state_dict"]["model." + w], lit[w])
    ft = tmp_path / "ft"
    r = CliRunner().invoke(app, ["train", str(labelled), "-t", "heat_all", "--init-from", str(out), "--epochs", "1",
                                 "--batch-size", "6", "-o", str(ft), "-j", "1", "--threads", "1", "--no-progress",
                                 "--optimizer", "sgd", "--lr", "1e-12", "--momentum", "0", *TINY])  # fmt: skip
    assert r.exit_code == 0, r.output
    tuned = torch.load(ft / "checkpoints" / "best.ckpt", weights_only=False)["state_dict"]
    assert torch.allclose(tuned["model." + w], lit[w], atol=1e-8)
    # the same command with more epochs continues the run; another method is refused
    more_args = ["pretrain", str(unlabelled), str(more), "--method", "simsiam", "--batch-size", "6", "-o", str(out),
                 "-j", "1", "--threads", "1", "--no-progress", *TINY]  # fmt: skip
    r = CliRunner().invoke(app, [*more_args, "--epochs", "3"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "summary.json").read_text())["epochs_run"] == 3
    assert len(pd.read_csv(out / "log" / "metrics.csv").dropna(subset=["train_loss"])) == 3
    r = CliRunner().invoke(app, [*[a if a != "simsiam" else "barlow" for a in more_args], "--epochs", "3"])
    assert r.exit_code == 1 and "another pretraining run" in r.output and "method" in r.output
    # a bad method is a one-line usage error
    r = CliRunner().invoke(app, ["pretrain", str(unlabelled), "--method", "nope", "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--method" in r.output


@pytest.mark.parametrize(
    ("model", "options"),
    [("megnet", {"nblocks": 1}), ("schnet", {"hidden_channels": 16, "num_filters": 16, "num_interactions": 1}),
     ("alignn", {"alignn_layers": 1, "gcn_layers": 1, "hidden_features": 16, "embedding_features": 16})],
)  # fmt: skip
def test_every_graph_model_pretrains_with_masked_atoms(batch, table, model, options) -> None:
    """The views run through any zoo encoder (masking hooks its per-atom input: an embedding of
    Z or the feature table) and the encoder learns from the loss (MEGNet's last state and bond
    updates do not reach the mean-pooled atom features, so not every weight gets a gradient)."""
    torch.manual_seed(0)
    m = CrystalTwins(model, options, table, method="barlow", projector_dim=8, augmentation={"atom_mask": 0.3})
    loss = m.pair_loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    with_grad = [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in m.encoder.parameters()]
    assert sum(with_grad) >= 0.7 * len(with_grad)
    m.eval()
    mask = torch.zeros(batch.num_nodes, dtype=torch.bool)
    mask[0] = True
    with torch.no_grad():
        plain = m.encoder(batch).x
        with masked_atom_inputs(m.encoder, mask):
            masked = m.encoder(batch).x
    assert not torch.allclose(plain[0], masked[0])  # the masked atom's features change
