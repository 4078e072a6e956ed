"""Hyper-parameter search with Optuna (``crystalgnn tune``).

Akiba et al., "Optuna: a next-generation hyperparameter optimization framework", KDD 2019. The
sampler is TPE (Bergstra et al., NeurIPS 2011); unpromising trials are stopped by the median
rule (Golovin et al., KDD 2017: a trial whose best validation score after epoch k is worse than
the median of the earlier trials' at k is pruned), fed after every epoch by
:class:`PruningCallback`. The objective is the best validation score of the run
(``val_score``: the validation MAE for regression, minus the ROC AUC for classification).

Study folder::

    study.db          the Optuna study (SQLite): re-running the command continues it
    trials/NNN/       one normal run folder per trial (crystalgnn.training.run)
    trials.csv        every trial: number, state, value, parameters, run folder, test metrics
    best.yaml         the best trial's configuration, for ``crystalgnn train --config best.yaml``

Search spaces are YAML files, one per model (``crystalgnn/training/search_spaces/<model>.yaml``):
keys are :class:`~crystalgnn.training.config.TrainConfig` fields or ``model_options.NAME``, each
``{type: float|int|categorical, low, high, log, step, choices}``. ``trials`` counts finished
(complete or pruned) trials of the study, so ``--trials 30`` on a study with 20 adds 10. A trial
left running by an interrupted command is marked failed and its folder is not reused.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.callbacks import Callback

from crystalgnn.training.config import TrainConfig

KINDS = ("float", "int", "categorical")
#: options that belong to the study, not to a trial's search space
FIXED = ("source", "targets", "model", "out", "init_from", "site_target", "progress")


class PruningCallback(Callback):
    """Reports the monitored validation metric to an Optuna trial after every validation epoch and
    stops the fit (gracefully, so the run folder is complete) when the trial should be pruned.

    Attributes:
        reported: the ``(epoch, value)`` pairs reported.
        pruned: whether the trial was pruned.
    """

    def __init__(self, trial: Any, monitor: str = "val_score") -> None:
        self.trial, self.monitor = trial, monitor
        self.reported: list[tuple[int, float]] = []
        self.pruned = False

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        epoch = int(trainer.current_epoch)
        if not math.isfinite(value):
            return
        self.trial.report(value, step=epoch)
        self.reported.append((epoch, value))
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True


# ----------------------------------------------------------------------------- search spaces
def search_space_path(model_or_path: str) -> Path:
    """A YAML file, or the packaged search space of a model name."""
    p = Path(model_or_path)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such search-space file")
        return p
    res = resources.files("crystalgnn.training") / "search_spaces" / f"{model_or_path}.yaml"
    if not res.is_file():
        have = sorted(x.name[:-5] for x in (resources.files("crystalgnn.training") / "search_spaces").iterdir())
        raise ValueError(
            f"no search space for model {model_or_path!r} (packaged: {', '.join(have)}); give --search-space FILE"
        )
    return Path(str(res))


def load_search_space(model_or_path: str) -> dict[str, dict[str, Any]]:
    """The search space as ``{key: spec}``, checked (one-line ``ValueError`` naming the key)."""
    path = search_space_path(model_or_path)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: a search space is a non-empty mapping of option: {{type: ..., ...}}")
    fields = set(TrainConfig.field_names())
    for key, spec in data.items():
        name = str(key)
        where = f"{path}: {name}"
        if name.startswith("model_options."):
            if not name.split(".", 1)[1]:
                raise ValueError(f"{where}: model_options.NAME needs a name")
        elif name not in fields or name in FIXED or name == "model_options":
            raise ValueError(f"{where}: not a tunable training option (TrainConfig fields or model_options.NAME)")
        if not isinstance(spec, dict) or spec.get("type") not in KINDS:
            raise ValueError(f"{where}: give {{type: float|int|categorical, ...}}")
        if spec["type"] == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise ValueError(f"{where}: a categorical needs a non-empty list of choices")
        else:
            low, high = spec.get("low"), spec.get("high")
            if not isinstance(low, int | float) or not isinstance(high, int | float) or not low <= high:
                raise ValueError(f"{where}: needs numbers low <= high (got {low!r}, {high!r})")
            if spec.get("log") and low <= 0:
                raise ValueError(f"{where}: a log range needs low > 0")
    return data


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One sample of ``space`` as TrainConfig options (``model_options`` collected in a dict)."""
    out: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, spec in space.items():
        kind = spec["type"]
        if kind == "categorical":
            value = trial.suggest_categorical(key, spec["choices"])
        elif kind == "int":
            value = trial.suggest_int(key, int(spec["low"]), int(spec["high"]), step=int(spec.get("step", 1)),
                                      log=bool(spec.get("log", False)))  # fmt: skip
        else:
            value = trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False)))
        if key.startswith("model_options."):
            options[key.split(".", 1)[1]] = value
        else:
            out[key] = value
    if options:
        out["model_options"] = options
    return out


# ----------------------------------------------------------------------------- the study
@dataclass
class TuneConfig:
    """A tuning study.

    Args:
        source, targets, model: what every trial trains.
        trials: finished (complete or pruned) trials the study should hold.
        out: the study folder.
        jobs: trials run in parallel (worker processes sharing the study).
        time_budget_per_trial: each trial's ``--time-budget`` (minutes).
        options: TrainConfig options fixed for every trial (e.g. epochs, split, threads).
        config_file: a training YAML file under ``options`` (as ``train --config``).
        search_space: a YAML file (default: the model's packaged one).
        seed: the TPE sampler's seed.
        pruning: prune with the median rule (``startup_trials`` trials and ``warmup_epochs``
            epochs of each trial are never pruned).
    """

    source: str
    targets: list[str] = field(default_factory=list)
    model: str = "cgcnn"
    trials: int = 20
    out: str = "runs/tune"
    jobs: int = 1
    time_budget_per_trial: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    config_file: str | None = None
    search_space: str | None = None
    seed: int = 0
    pruning: bool = True
    startup_trials: int = 3
    warmup_epochs: int = 2

    def trial_config(self, params: dict[str, Any], number: int) -> TrainConfig:
        """The TrainConfig of trial ``number`` with the sampled ``params`` (checked)."""
        flags = {**self.options, **{k: v for k, v in params.items() if k != "model_options"}}
        flags["model_options"] = {**self.options.get("model_options", {}), **params.get("model_options", {})}
        flags.update(source=self.source, targets=list(self.targets), model=self.model, progress=False,
                     out=str(Path(self.out) / "trials" / f"{number:03d}"))  # fmt: skip
        if self.time_budget_per_trial:
            flags["max_time_minutes"] = self.time_budget_per_trial
        return TrainConfig.resolve(flags, self.config_file).validate()


@dataclass
class TuneResult:
    """The study folder, every trial (a ``pandas.DataFrame``, best first) and the best trial's
    number, value and configuration file (``None`` before any trial completed).
    """

    out: Path
    table: Any
    best_number: int | None = None
    best_value: float | None = None
    best_config: Path | None = None


def best_validation(run_dir: Path, monitor: str = "val_score") -> float:
    """The run's best per-epoch validation score (``log/metrics.csv``)."""
    import pandas as pd

    log = pd.read_csv(run_dir / "log" / "metrics.csv")
    values = log[monitor].dropna() if monitor in log else []
    return float(min(values)) if len(values) else float("nan")


def _objective(cfg: TuneConfig, space: dict[str, dict[str, Any]]) -> Any:
    import optuna

    from crystalgnn.training.loop import json_safe
    from crystalgnn.training.run import train

    def objective(trial: Any) -> float:
        run = cfg.trial_config(suggest(trial, space), trial.number)
        trial.set_user_attr("run_dir", run.out)
        callback = PruningCallback(trial)
        result = train(run, callbacks=[callback] if cfg.pruning else None)
        for name, value in (result.metrics.get("test") or {}).items():  # test_mae, test_rmse, ...
            if isinstance(value, int | float):
                trial.set_user_attr(f"test_{name}", json_safe(float(value)))
        trial.set_user_attr("epochs_run", int(result.metrics.get("epochs_run", 0)))
        if callback.pruned:
            raise optuna.TrialPruned(f"pruned after epoch {callback.reported[-1][0] + 1}")
        return best_validation(Path(run.out))

    return objective


def _fail_interrupted(study: Any, storage: Any) -> list[int]:
    """Mark trials left running by an interrupted command as failed (their folders stay unused)."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in stale:
        storage.set_trial_state_values(
            storage.get_trial_id_from_study_id_trial_number(study_id, t.number), TrialState.FAIL
        )
    return [t.number for t in stale]


class StudyBusy(RuntimeError):
    """Another ``crystalgnn tune`` process works on the study folder."""


def _lock(out: Path) -> Path:
    lock = out / ".tune.lock"
    if lock.is_file():
        try:
            pid = int(lock.read_text().strip() or 0)
            if pid and pid != os.getpid():
                os.kill(pid, 0)
                raise StudyBusy(f"{out}: another tune command (pid {pid}) is running on this study")
        except (ValueError, ProcessLookupError, PermissionError):
            pass
    lock.write_text(str(os.getpid()))
    return lock


def open_study(cfg: TuneConfig, worker: int = 0) -> tuple[Any, Any]:
    """The study in ``OUT/study.db`` (created on first use) and its storage; each parallel worker
    seeds its TPE sampler differently (``seed + worker``).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are reported by the command itself
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials, n_warmup_steps=cfg.warmup_epochs)
              if cfg.pruning else optuna.pruners.NopPruner())  # fmt: skip
    storage = optuna.storages.RDBStorage(f"sqlite:///{Path(cfg.out) / 'study.db'}")
    study = optuna.create_study(
        study_name="crystalgnn", storage=storage, load_if_exists=True, direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed + worker), pruner=pruner,
    )  # fmt: skip
    return study, storage


def run_trials(cfg: TuneConfig, space: dict[str, dict[str, Any]], worker: int, n_trials: int) -> None:
    """One worker: trials until the study holds ``cfg.trials`` finished or running ones (or
    ``n_trials`` were started here).
    """
    import optuna
    from optuna.trial import TrialState

    study, _ = open_study(cfg, worker)
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)  # others' running trials too
    study.optimize(_objective(cfg, space), n_trials=n_trials, gc_after_trial=True,
                   callbacks=[optuna.study.MaxTrialsCallback(cfg.trials, states=counted)])  # fmt: skip


def tune(cfg: TuneConfig) -> TuneResult:
    """Run (or continue) the study until it holds ``cfg.trials`` finished trials; write
    ``trials.csv`` and ``best.yaml``. Bad options raise ``ValueError`` before any trial runs.

    With ``cfg.jobs > 1``, ``jobs - 1`` more worker processes (Lightning is not thread-safe)
    share the study's SQLite storage; when several trials end at once the study may hold up to
    ``jobs - 1`` more trials than asked.
    """
    import multiprocessing

    import optuna
    from optuna.trial import TrialState

    space = load_search_space(cfg.search_space or cfg.model)
    if cfg.trials < 1 or cfg.jobs < 1:
        raise ValueError("--trials and --jobs must be >= 1")
    cfg.trial_config(suggest(optuna.trial.FixedTrial(_first_values(space)), space), 0)  # options checked
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    try:
        study, storage = open_study(cfg)
        _check_study(study, cfg)
        _fail_interrupted(study, storage)
        finished = (TrialState.COMPLETE, TrialState.PRUNED)
        remaining = cfg.trials - len(study.get_trials(deepcopy=False, states=finished))
        if remaining > 0:
            spawn = multiprocessing.get_context("spawn")
            workers = [spawn.Process(target=run_trials, args=(cfg, space, k, remaining), daemon=False)
                       for k in range(1, min(cfg.jobs, remaining))]  # fmt: skip
            for w in workers:
                w.start()
            try:
                run_trials(cfg, space, 0, remaining)
            finally:
                for w in workers:
                    w.join()
            failed = [w.exitcode for w in workers if w.exitcode]
            if failed:
                raise RuntimeError(f"{len(failed)} of {len(workers) + 1} tune workers failed (exit codes {failed})")
        return summarize(open_study(cfg)[0], out)
    finally:
        lock.unlink(missing_ok=True)


def _first_values(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {k: (s["choices"][0] if s["type"] == "categorical" else s["low"]) for k, s in space.items()}


def _check_study(study: Any, cfg: TuneConfig) -> None:
    """A study folder belongs to one source, target and model: refuse to mix."""
    key = {"source": str(cfg.source), "targets": list(cfg.targets), "model": cfg.model}
    saved = study.user_attrs.get("identity")
    if saved is None:
        study.set_user_attr("identity", key)
    elif saved != key:
        raise ValueError(f"{cfg.out} holds a study of {saved}; choose another --out for {key}")


def summarize(study: Any, out: Path) -> TuneResult:
    """``trials.csv`` (best first) and ``best.yaml`` from the study's trials."""
    from optuna.trial import TrialState

    df = study.trials_dataframe(attrs=("number", "value", "state", "duration", "params", "user_attrs"))
    if len(df):
        df = df.sort_values(["value", "number"], na_position="last").reset_index(drop=True)
        if "duration" in df:
            df["duration"] = df["duration"].dt.total_seconds().round(2)
        df.to_csv(out / "trials.csv", index=False)
    result = TuneResult(out, df)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if done:
        best = study.best_trial
        run_dir = Path(best.user_attrs["run_dir"])
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        config.pop("out", None)
        header = (f"# best trial of {out} (crystalgnn tune): trial {best.number}, best validation score "
                  f"{best.value:.6g}; run folder {run_dir}\n# use: crystalgnn train --config {out / 'best.yaml'}\n")  # fmt: skip
        (out / "best.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        result.best_number, result.best_value, result.best_config = best.number, float(best.value), out / "best.yaml"
    return result


__all__ = [
    "PruningCallback",
    "StudyBusy",
    "TuneConfig",
    "TuneResult",
    "load_search_space",
    "suggest",
    "summarize",
    "tune",
]
