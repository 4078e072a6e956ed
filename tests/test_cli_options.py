"""The CLI's options and errors, without training: fast (no data is read, torch rarely imported)."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.training import config as C
from crystalgnn.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def invoke(*args: object):
    r = runner.invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


def run(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "crystalgnn", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)


def shown_config(*args: object) -> dict:
    r = runner.invoke(app, ["train", *map(str, args), "--show-config"])
    assert r.exit_code == 0, r.output
    return yaml.safe_load(r.stdout)


def one_line_error(r, code: int, *needles: str) -> None:
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == code, r.output
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output
    for n in needles:
        assert n in lines[0], lines[0]


def test_version() -> None:
    from crystalgnn import __version__

    r, text = invoke("--version")
    assert r.exit_code == 0 and text == f"crystalgnn {__version__}"
    p = run("--version")  # python -m crystalgnn
    assert p.returncode == 0 and p.stdout.strip() == f"crystalgnn {__version__}"


# the source does not exist: each error must come from the option check, before any data is read
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--subset", "0"], "--subset must be >= 1"),
        (["--split", "abc"], "--split takes three ratios"),
        (["--split", "0.5,0.5"], "--split takes three ratios"),
        (["--split", "0.8,0.1,0.2"], "summing to 1"),
        (["--split", "1,0,0"], "every part needs at least one entry"),
        (["--split", "0.9,0.1,0"], "every part needs at least one entry"),
        (["--task", "foo"], "--task must be one of auto, regression, classification"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--epochs", "-1"], "--epochs must be >= 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--lr", "0"], "--lr must be > 0"),
        (["--model", "gcn"], "--model must be one of cgcnn, megnet, schnet, alignn, soap-mlp"),
        (["--readout", "mean"], "--readout must be one of graph, site, site-linear"),
        (["--readout", "site"], "--readout site needs --site-target"),
        (["--loss", "mae"], "--loss must be one of mse, l1, huber"),
        (["--optimizer", "rmsprop"], "--optimizer must be one of sgd, adam, adamw"),
        (["--scheduler", "step"], "--scheduler must be one of multistep, cosine, onecycle, none"),
        (["--accelerator", "fpga"], "--accelerator must be one of"),
        (["--devices", "many"], "--devices must be a number >= 1 or auto"),
        (["--devices", "0"], "--devices must be a number >= 1 or auto"),
        (["--jobs", "0"], "--jobs must be >= 1"),
        (["--early-stopping", "0"], "--early-stopping must be >= 1"),
        (["--lr-milestones", "a,b"], "--lr-milestones takes comma-separated integers"),
        (["-m", "novalue"], "--model-option takes KEY=VALUE"),
        (["--site-target", "magmom"], "not both"),
    ],
)
def test_bad_option_is_one_line_usage_error(args: list[str], needle: str, tmp_path: Path) -> None:
    r, _ = invoke("train", tmp_path / "no-such-data.jsonl", "-t", "y", "-o", tmp_path / "run", *args)
    one_line_error(r, 2, needle)
    assert not (tmp_path / "run").exists()


def test_missing_source_or_target(tmp_path: Path) -> None:
    # a catalog dataset's labels are known without reading it: several labels -> choose one
    r, _ = invoke("train", "perovskites", "-o", tmp_path / "r")
    one_line_error(r, 1, "perovskites: several labels: heat_all, heat_ref, dir_gap, ind_gap; choose with --target")
    assert not (tmp_path / "r").exists()
    r, _ = invoke("train", "site-magmoms", "--site-target", "magmom", "-t", "net_magmom")
    one_line_error(r, 2, "not both")
    r, _ = invoke("train", "-t", "y")
    one_line_error(r, 2, "no SOURCE given")
    # other sources: the library takes their only label (it reads a few entries to find it)
    assert shown_config("perov.jsonl")["targets"] == []


def _imported(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    cmd = [sys.executable, "-X", "importtime", "-m", "crystalgnn", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV)
    return p, {ln.split("|")[-1].strip().split(".")[0] for ln in p.stderr.splitlines() if ln.startswith("import time:")}


HEAVY = {"torch", "lightning", "pytorch_lightning", "pandas", "pymatgen", "torch_geometric", "numpy"}


def test_bad_options_and_missing_target_import_no_heavy_library() -> None:
    """The CLI modules import neither torch, Lightning, pandas nor pymatgen at import time; a bad
    option is refused with none of them, a missing target without torch or Lightning."""
    p, imported = _imported("train", "perovskites", "-t", "heat_all", "--epochs", "0")
    assert p.returncode == 2 and "--epochs must be >= 1" in p.stderr
    assert not imported & HEAVY
    p, imported = _imported("train", "perovskites")
    assert p.returncode == 1 and "several labels" in p.stderr
    assert not imported & {"torch", "lightning", "pytorch_lightning", "pandas", "torch_geometric"}


def test_unknown_yaml_key_names_it_and_lists_valid_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 2\nlearning_rate: 0.1\n")
    r, _ = invoke("train", tmp_path / "no-such-data.jsonl", "-t", "y", "--config", cfg)
    one_line_error(r, 2, "unknown key learning_rate", "valid keys:", "lr,", "batch_size")
    cfg.write_text("epochs: abc\n")
    r, _ = invoke("train", tmp_path / "no-such-data.jsonl", "-t", "y", "--config", cfg)
    one_line_error(r, 2, "--epochs must be an integer")
    cfg.write_text("- a list\n")
    r, _ = invoke("train", tmp_path / "no-such-data.jsonl", "-t", "y", "--config", cfg)
    one_line_error(r, 2, "must be a mapping")
    r, _ = invoke("train", tmp_path / "no-such-data.jsonl", "-t", "y", "--config", tmp_path / "none.yaml")
    one_line_error(r, 1, "no such config file")


def test_accelerator_without_backend(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has a GPU backend")
    r, _ = invoke("train", tmp_path / "no-such-data.jsonl", "-t", "y", "--accelerator", "gpu", "-o", tmp_path / "r")
    one_line_error(r, 1, "--accelerator gpu: no GPU backend available on this machine")
    assert not (tmp_path / "r").exists()


def test_predict_with_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    model = tmp_path / "some_file.txt"
    model.write_text("not a model\n")
    r, _ = invoke("predict", model, tmp_path / "x.cif")
    one_line_error(r, 1, "some_file.txt", "not a crystalgnn checkpoint")
    # recognised without importing torch: fast
    p = run("predict", model, tmp_path / "x.cif")
    assert p.returncode == 1 and p.stderr.startswith("error: ") and "not a crystalgnn checkpoint" in p.stderr
    # looks like a zip archive / pickle (what torch.save writes) but is not a checkpoint: the library's message
    for name, head in (("broken.ckpt", b"PK\x03\x04"), ("broken.pth.tar", b"\x80\x02")):
        (tmp_path / name).write_bytes(head + os.urandom(2000))
        r, _ = invoke("predict", tmp_path / name, tmp_path / "x.cif")
        one_line_error(r, 1, name, "checkpoint")
    r, _ = invoke("evaluate", model, tmp_path / "x.cif")
    one_line_error(r, 1, "some_file.txt", "not a crystalgnn checkpoint")


def test_train_help_shows_every_option_with_its_dataclass_default() -> None:
    r = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250", "TERMINAL_WIDTH": "250"})
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("cli", True) is False:
            continue
        flag = (f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),))[0]
        assert flag in text, flag
        if f.type == "bool":  # a switch named by the value it sets: --no-x for a True default
            assert flag.startswith("--no-") == f.default, flag
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if default not in (None, [], {}, "") and f.metadata.get("show_default", True):
            shown = ",".join(map(str, default)) if isinstance(default, list) else str(default)
            assert f"[default: {shown}]" in text, (flag, shown)
    # switches from the booleans, named by the value they set
    for switch in ("--graphs-on-disk", "--no-progress", "--no-cache"):
        assert switch in text
    assert "(recipes: alignn/schnet 300, megnet 1000) [default: 30]" in text  # --epochs
    assert "site-linear (a per-atom scalar whose mean/sum is the prediction)" in text


def test_switches_take_no_value() -> None:
    cfg = shown_config("x.jsonl", "-t", "y", "--no-progress", "--graphs-on-disk", "--no-cache", "--epochs", "3")
    assert cfg["progress"] is False and cfg["graphs_on_disk"] is True and cfg["use_cache"] is False
    assert cfg["epochs"] == 3
    cfg = shown_config("x.jsonl", "-t", "y")
    assert cfg["progress"] is True and cfg["graphs_on_disk"] is False and cfg["use_cache"] is True


def test_precedence_defaults_recipe_file_flags(tmp_path: Path) -> None:
    cfg = shown_config("x.jsonl", "-t", "y")
    assert cfg == {**TrainConfig(source="x.jsonl", targets=["y"]).to_dict(), "out": "runs/x-y-cgcnn-s0"}
    megnet = shown_config("x.jsonl", "-t", "y", "--model", "megnet")
    recipe = C.load_recipe("megnet")
    assert recipe and {k: megnet[k] for k in recipe} == recipe
    assert megnet["optimizer"] == "adam" and megnet["epochs"] == 1000 and megnet["early_stopping_patience"] == 500
    f = tmp_path / "c.yaml"
    f.write_text("model: megnet\nepochs: 7\nlr: 0.02\nmodel_options: {n1: 8, n2: 4}\n")
    cfg = shown_config("x.jsonl", "-t", "y", "--config", f, "--lr", "0.05", "-m", "n2=5")
    assert cfg["model"] == "megnet" and cfg["batch_size"] == recipe["batch_size"]  # recipe
    assert cfg["epochs"] == 7  # file over recipe
    assert cfg["lr"] == 0.05  # flag over file
    assert cfg["model_options"] == {"n1": 8, "n2": 5}  # merged key by key
    # a flag naming another model takes that model's recipe under the file
    cfg = shown_config("x.jsonl", "-t", "y", "--config", f, "--model", "alignn")
    assert cfg["optimizer"] == "adamw" and cfg["epochs"] == 7 and cfg["scheduler"] == "onecycle"
    # a flag given with the default value still overrides the recipe
    cfg = shown_config("x.jsonl", "-t", "y", "--model", "schnet", "--batch-size", "256")
    assert cfg["batch_size"] == 256 and cfg["lr"] == 0.001


def test_existing_flag_names(tmp_path: Path) -> None:
    cfg = shown_config(
        "perovskites", "--target", "a", "-t", "b", "-o", tmp_path / "r",
        "--model-option", "atom_fea_len=16", "-m", "n_conv=2", "--early-stopping", "5", "--jobs", "2",
        "--threads", "1", "--subset", "40", "--subset-seed", "3", "--split", "0.6,0.2,0.2",
        "--lr-milestones", "10,20", "--devices", "auto", "--num-nodes", "1", "--strategy", "ddp",
        "--cache-dir", tmp_path, "--atom-init", "a.json", "--momentum", "0.5", "--weight-decay", "0.1",
        "--loss", "huber", "--scheduler", "cosine", "--optimizer", "adamw", "--seed", "4", "--task", "regression",
        "--split-file", "s.json", "--readout", "site-linear", "--init-from", "best.ckpt",
    )  # fmt: skip
    assert cfg["targets"] == ["a", "b"] and cfg["out"] == str(tmp_path / "r") and cfg["init_from"] == "best.ckpt"
    assert cfg["model_options"] == {"atom_fea_len": 16, "n_conv": 2}
    assert cfg["early_stopping_patience"] == 5 and cfg["n_jobs"] == 2 and cfg["num_threads"] == 1
    assert cfg["lr_milestones"] == [10, 20] and cfg["devices"] == "auto" and cfg["strategy"] == "ddp"
    assert cfg["readout"] == "site-linear" and cfg["split_file"] == "s.json"
    cfg = shown_config("perovskites", "--site-target", "magmom", "--readout", "site")
    assert cfg["site_target"] == "magmom" and cfg["targets"] == [] and cfg["readout"] == "site"


def _readme_train_lines() -> list[list[str]]:
    lines = []
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")  # join continued lines
    for ln in text.splitlines():
        ln = ln.split("#")[0].strip()
        if ln.startswith("crystalgnn train "):
            lines.append(shlex.split(ln)[2:])
    return lines


@pytest.mark.parametrize("args", _readme_train_lines(), ids=lambda a: " ".join(a)[:60])
def test_readme_train_usage_parses(args: list[str]) -> None:
    args = [a.replace("configs/", str(ROOT / "configs") + "/") for a in args]
    # a config another README command writes (tune's best.yaml): a packaged one stands in
    args = [str(ROOT / "configs" / "cgcnn.yaml") if a.startswith("runs/") and a.endswith(".yaml") else a for a in args]
    cfg = shown_config(*args)
    assert cfg["source"] == args[0]


@pytest.mark.parametrize("model", ["cgcnn", "megnet", "schnet", "alignn"])
def test_recipes_and_example_configs_agree(model: str) -> None:
    """Packaged recipes load and validate; configs/MODEL.yaml has the same training settings."""
    assert model in C.recipe_names()
    recipe = C.load_recipe(model)
    TrainConfig.resolve({"source": "s", "targets": ["y"], "model": model}).validate()
    example = C.read_yaml_options(ROOT / "configs" / f"{model}.yaml")
    assert example["model"] == model
    assert {k: example.get(k) for k in recipe} == recipe
    cfg = TrainConfig.resolve({"source": "s", "targets": ["y"]}, ROOT / "configs" / f"{model}.yaml").validate()
    assert cfg.model == model


def test_validate_is_pure_python() -> None:
    p = subprocess.run(
        [sys.executable, "-c", "import sys; from crystalgnn.training.config import TrainConfig; "
         "TrainConfig(source='s', targets=['y']).validate(); "
         "print(sorted(m for m in ('torch', 'lightning', 'pandas', 'pymatgen') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60, env=ENV,
    )  # fmt: skip
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stderr


def test_validate_messages_are_one_line() -> None:
    bad = [{"epochs": 0}, {"split": "abc"}, {"task": "foo"}, {"devices": "x"}, {"lr": -1.0}, {"subset": 0}]
    for kw in bad:
        with pytest.raises(ValueError) as e:
            TrainConfig(source="s", targets=["y"], **kw).validate()
        assert "\n" not in str(e.value) and str(e.value).startswith("--")
    with pytest.raises(KeyError) as e:
        TrainConfig.from_dict({"bogus": 1})
    assert isinstance(e.value, ValueError) and re.match(
        r"config: unknown key bogus; valid keys: source, ", str(e.value)
    )


def test_commands_are_listed() -> None:
    r, text = invoke("--help")
    assert r.exit_code == 0
    for cmd in (
        "data",
        "graphs",
        "train",
        "evaluate",
        "predict",
        "models",
        "import-cgcnn",
        "demo",
        "benchmark",
        "learning-curve",
    ):
        assert cmd in text
    p = run("--help")
    assert p.returncode == 0 and "learning-curve" in p.stdout


def test_benchmark_split_checked_before_data(tmp_path: Path) -> None:
    r, _ = invoke("benchmark", tmp_path / "none.jsonl", "--targets", "y", "--split", "abc", "-o", tmp_path / "b")
    one_line_error(r, 2, "--split takes three ratios")
    r, _ = invoke("learning-curve", tmp_path / "none.jsonl", "-t", "y", "--sizes", "1,x", "-o", tmp_path / "b")
    one_line_error(r, 2, "--sizes takes comma-separated integers")


def test_yaml_accepts_flag_names_of_renamed_fields(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("target: [a]\njobs: 2\nthreads: 1\nearly-stopping: 4\nmodel-option: {n_conv: 2}\ndevices: '2'\n")
    cfg = shown_config("x.jsonl", "--config", f)
    assert cfg["targets"] == ["a"] and cfg["n_jobs"] == 2 and cfg["num_threads"] == 1
    assert cfg["early_stopping_patience"] == 4 and cfg["model_options"] == {"n_conv": 2} and cfg["devices"] == 2
    f.write_text("jobs: 2\nn_jobs: 3\n")
    r, _ = invoke("train", "x.jsonl", "-t", "y", "--config", f)
    one_line_error(r, 2, "n_jobs is given twice (as jobs and as n_jobs)")


def test_saved_run_config_is_a_valid_config_file(tmp_path: Path) -> None:
    """A run's config.yaml (what the library saves) can be given back with --config."""
    saved = tmp_path / "config.yaml"
    TrainConfig.resolve({"source": "x.jsonl", "targets": ["y"], "model": "schnet"}).save(saved)
    cfg = shown_config("--config", saved)
    assert cfg["model"] == "schnet" and cfg["batch_size"] == 32 and cfg["targets"] == ["y"]


def test_static_model_names_match_the_registry() -> None:
    """config.MODELS is a static copy (checking --model must not import torch): keep it in step."""
    from crystalgnn.models.registry import make_config, model_names, split_options

    assert sorted(C.MODELS) == sorted(model_names())
    for model in C.recipe_names():  # the example configs' model options are valid
        options, _ = split_options(C.read_yaml_options(ROOT / "configs" / f"{model}.yaml").get("model_options"))
        make_config(model, options)
