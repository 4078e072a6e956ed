"""Fine-tuning controls: frozen encoder epochs, discriminative learning rates, new heads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.training.checkpoints import load_task, save_task
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.finetune import init_weights
from crystalgnn.training.optim import make_optimizer, param_groups
from crystalgnn.training.run import train
from crystalgnn.training.task import CrystalTask
from tinydata import perovskite_rows, small_config, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = {"atom_fea_len": 16, "h_fea_len": 16, "n_conv": 1}


@pytest.fixture(scope="module")
def small_table(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("ft") / "perov12.jsonl", perovskite_rows(12))


@pytest.fixture(scope="module")
def source_run(small_table, tmp_path_factory) -> Path:
    """A tiny trained run to fine-tune from."""
    return train(small_config(small_table, tmp_path_factory.mktemp("src") / "run")).run_dir


def tiny_task(target: str = "heat_all", optim: dict | None = None, seed: int = 0) -> CrystalTask:
    from crystalgnn.graphs.atom_features import AtomFeaturizer
    from crystalgnn.models.registry import make_config

    torch.manual_seed(seed)
    mc = make_config("cgcnn", TINY)
    return CrystalTask(
        "cgcnn", mc.to_dict(), mc.graph_config().to_dict(), {"names": [target]}, optim=optim or {},
        atom_table=torch.tensor(AtomFeaturizer.cgcnn().matrix()),
    )  # fmt: skip


def equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Exactly equal (NaN rows of the atom-feature table count as equal)."""
    return a.shape == b.shape and bool(
        (a == b).logical_or(a.isnan() & b.isnan() if a.is_floating_point() else a == b).all()
    )


def part(state: dict, prefix: str) -> dict:
    return {k: v.clone() for k, v in state.items() if k.startswith(prefix)}


def test_frozen_encoder_stays_equal_then_trains(small_table, source_run, tmp_path) -> None:
    """During the first N epochs every encoder tensor (weights and batch-norm statistics) is the
    checkpoint's exactly while the head learns; extending the run past N changes the encoder."""
    init = load_task(source_run / "checkpoints" / "best.ckpt").state_dict()
    kw = dict(init_from=str(source_run), freeze_encoder_epochs=2, lr=0.01, seed=3)
    train(small_config(small_table, tmp_path / "ft", epochs=2, **kw))
    frozen = load_task(tmp_path / "ft" / "checkpoints" / "last.ckpt").state_dict()
    enc = part(init, "model.encoder.")
    assert enc and all(equal(enc[k], frozen[k]) for k in enc)
    head = part(init, "model.readout.")
    assert any(not equal(head[k], frozen[k]) for k in head)  # the head learnt
    train(small_config(small_table, tmp_path / "ft", epochs=4, **kw))  # resumes at epoch 3: unfrozen
    after = load_task(tmp_path / "ft" / "checkpoints" / "last.ckpt").state_dict()
    weights = [k for k in enc if k.endswith("weight")]
    assert all(not equal(enc[k], after[k]) for k in weights)


def test_param_groups_give_the_encoder_a_fraction_of_the_lr() -> None:
    optim = {"optimizer": "adam", "lr": 0.01, "encoder_lr_factor": 0.1, "scheduler": "onecycle", "epochs": 3}
    task = tiny_task(optim=optim)
    groups = param_groups(task.model, optim)
    enc_ids = {id(p) for p in task.model.encoder.parameters()}
    assert [len(g["params"]) for g in groups] == [
        sum(1 for p in task.model.parameters() if id(p) not in enc_ids),
        len(enc_ids),
    ]
    out = make_optimizer(groups, optim)
    opt, sched = out["optimizer"], out["lr_scheduler"]["scheduler"]
    for _ in range(5):  # the one-cycle schedule keeps the 1:10 ratio at every step
        opt.step()
        sched.step()
        head_lr, enc_lr = (g["lr"] for g in opt.param_groups)
        assert enc_lr == pytest.approx(0.1 * head_lr, rel=1e-9)
    # factor 1: one group, everything at --lr
    assert len(param_groups(task.model, {"lr": 0.01})) == 1


def test_head_is_copied_only_for_the_same_target(source_run, tmp_path) -> None:
    src = load_task(source_run / "checkpoints" / "best.ckpt")
    head = part(src.state_dict(), "model.readout.")
    same = tiny_task("heat_all", seed=7)
    fresh_head = part(same.state_dict(), "model.readout.")
    assert init_weights(same, source_run)["readout"] == len(head)
    assert all(equal(head[k], same.state_dict()[k]) for k in head)
    for task, kw in ((tiny_task("heat_all", seed=7), {"new_head": True}), (tiny_task("other", seed=7), {})):
        counts = init_weights(task, source_run, **kw)
        state = task.state_dict()
        assert counts["readout"] == 0 and counts["encoder"] > 0
        assert all(equal(fresh_head[k], state[k]) for k in fresh_head)  # its own initialisation
        enc = part(src.state_dict(), "model.encoder.")
        assert all(equal(enc[k], state[k]) for k in enc)
    # a checkpoint file works as well as a folder
    path = save_task(src, tmp_path / "m.ckpt")
    assert init_weights(tiny_task("other"), path)["encoder"] == len(part(src.state_dict(), "model.encoder."))


@pytest.mark.parametrize(
    ("kw", "msg"),
    [({"freeze_encoder_epochs": -1}, "--freeze-encoder-epochs must be >= 0"),
     ({"encoder_lr_factor": 0.0}, "--encoder-lr-factor must be > 0")],
)  # fmt: skip
def test_bad_fine_tuning_options_are_refused(kw, msg) -> None:
    with pytest.raises(ValueError, match=msg):
        TrainConfig(source="x", targets=["y"], **kw).validate()


def test_fine_tuning_flags_reach_the_config(small_table, source_run, tmp_path) -> None:
    r = CliRunner().invoke(
        app,
        ["train", str(small_table), "-t", "heat_all", "--init-from", str(source_run), "--new-head",
         "--freeze-encoder-epochs", "3", "--encoder-lr-factor", "0.2", "-o", str(tmp_path / "r"), "--show-config"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    import yaml

    cfg = yaml.safe_load(r.output)
    assert cfg["new_head"] is True and cfg["freeze_encoder_epochs"] == 3 and cfg["encoder_lr_factor"] == 0.2
