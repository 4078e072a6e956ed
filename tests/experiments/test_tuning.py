"""``crystalgnn tune``: a resumable Optuna study of tiny CGCNN runs, its pruning callback and
its best configuration file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.experiments.tuning import PruningCallback, TuneConfig, load_search_space, suggest

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.usefixtures("one_thread")

SPACE = """
lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
model_options.atom_fea_len: {type: categorical, choices: [8, 16]}
model_options.n_conv: {type: int, low: 1, high: 2}
"""
BASE = """
optimizer: adam
batch_size: 16
split: "0.6,0.2,0.2"
n_jobs: 1
num_threads: 1
model_options: {h_fea_len: 8}
"""


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    (tmp_path / "space.yaml").write_text(SPACE)
    (tmp_path / "base.yaml").write_text(BASE)
    return tmp_path / "space.yaml", tmp_path / "base.yaml"


def tune_args(table: Path, out: Path, files: tuple[Path, Path], trials: int) -> list[str]:
    space, base = files
    return ["tune", str(table), "-t", "energy", "--trials", str(trials), "--epochs", "2", "-o", str(out),
            "--search-space", str(space), "--config", str(base), "--threads", "1", "--no-pruning"]  # fmt: skip


def test_a_study_runs_resumes_and_writes_a_trainable_best_config(table, files, tmp_path) -> None:
    out = tmp_path / "study"
    r = CliRunner().invoke(app, tune_args(table, out, files, 2))
    assert r.exit_code == 0, r.output
    assert "top 2 of 2 trials" in r.output
    # an interrupted command leaves a running trial behind: the next command marks it failed
    study = optuna.load_study(study_name="crystalgnn", storage=f"sqlite:///{out / 'study.db'}")
    study.ask()
    r = CliRunner().invoke(app, tune_args(table, out, files, 3))
    assert r.exit_code == 0, r.output
    trials = pd.read_csv(out / "trials.csv")
    states = trials.set_index("number")["state"].to_dict()
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "FAIL", 3: "COMPLETE"}  # one added, none reused
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["000", "001", "003"]
    done = trials[trials.state == "COMPLETE"]
    assert list(done.value) == sorted(done.value)  # best first
    for _, row in done.iterrows():  # each trial is a normal run folder whose best val MAE is its value
        run = Path(row.user_attrs_run_dir)
        log = pd.read_csv(run / "log" / "metrics.csv")
        assert (run / "metrics.json").is_file() and row.value == pytest.approx(log.val_mae.min(), rel=1e-6)
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert (
            cfg["lr"] == pytest.approx(row.params_lr)
            and cfg["model_options"]["n_conv"] == row["params_model_options.n_conv"]
        )
        assert cfg["model_options"]["h_fea_len"] == 8 and cfg["batch_size"] == 16  # the fixed options
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["lr"] == pytest.approx(done.iloc[0].params_lr) and "out" not in best
    r = CliRunner().invoke(app, tune_args(table, out, files, 3))  # complete: nothing more runs
    assert r.exit_code == 0 and len(pd.read_csv(out / "trials.csv")) == 4
    r = CliRunner().invoke(app, ["train", "--config", str(out / "best.yaml"), "--epochs", "1",
                                 "-o", str(tmp_path / "again"), "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (tmp_path / "again" / "metrics.json").is_file()


def test_the_pruning_callback_reports_every_epoch_and_stops_a_pruned_trial(table, files, tmp_path) -> None:
    from crystalgnn.training.run import train

    space = load_search_space(str(files[0]))
    cfg = TuneConfig(source=str(table), targets=["energy"], out=str(tmp_path), config_file=str(files[1]),
                     options={"epochs": 3})  # fmt: skip
    # a pruner that keeps everything: three reports, equal to the logged validation MAE
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    run = cfg.trial_config(suggest(trial, space), trial.number)
    cb = PruningCallback(trial)
    train(run, callbacks=[cb])
    log = pd.read_csv(Path(run.out) / "log" / "metrics.csv").dropna(subset=["val_mae"])
    assert [e for e, _ in cb.reported] == [0, 1, 2] and not cb.pruned
    assert [v for _, v in cb.reported] == pytest.approx(list(log.val_mae), rel=1e-6)
    study.tell(trial, min(v for _, v in cb.reported))
    assert study.trials[0].intermediate_values == dict(cb.reported)
    # a pruner that prunes at once: the fit stops after its first epoch, the run folder is complete
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=-1.0))
    trial = study.ask()
    run = cfg.trial_config(suggest(trial, space), 1)
    cb = PruningCallback(trial)
    result = train(run, callbacks=[cb])
    assert cb.pruned and len(cb.reported) == 1 and result.metrics["epochs_run"] == 1
    assert (Path(run.out) / "metrics.json").is_file()


@pytest.mark.parametrize(
    ("text", "msg"),
    [("source: {type: float, low: 0, high: 1}", "not a tunable"),
     ("lr: {type: float, low: 0, high: 1, log: true}", "low > 0"),
     ("lr: {type: uniform, low: 0, high: 1}", "type: float"),
     ("batch_size: {type: categorical, choices: []}", "choices")],
)  # fmt: skip
def test_bad_search_spaces_are_refused(tmp_path, text, msg) -> None:
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ValueError, match=msg):
        load_search_space(str(tmp_path / "s.yaml"))


def test_packaged_search_spaces_sample_valid_configs(table, tmp_path) -> None:
    for model in ("cgcnn", "megnet", "schnet", "alignn"):
        space = load_search_space(model)
        params = suggest(optuna.trial.FixedTrial({k: (s["choices"][-1] if s["type"] == "categorical" else s["high"])
                                                  for k, s in space.items()}), space)  # fmt: skip
        cfg = TuneConfig(source=str(table), targets=["energy"], model=model, out=str(tmp_path)).trial_config(params, 7)
        assert cfg.model == model and cfg.out.endswith("trials/007")
        from crystalgnn.models.registry import make_config

        make_config(model, cfg.model_options)  # every sampled hyper-parameter exists


@pytest.mark.parametrize(
    ("extra", "msg"),
    [(["--trials", "0"], "--trials and --jobs must be >= 1"),
     (["--time-budget-per-trial", "0"], "must be > 0 minutes"),
     (["--model", "soap-mlp"], "no search space for model 'soap-mlp'")],
)  # fmt: skip
def test_bad_tune_options_end_with_one_line(table, tmp_path, extra, msg) -> None:
    r = CliRunner().invoke(app, ["tune", str(table), "-t", "energy", "-o", str(tmp_path / "s"), *extra])
    assert r.exit_code in (1, 2) and msg in r.output and "Traceback" not in r.output
    assert not (tmp_path / "s" / "trials").exists()
