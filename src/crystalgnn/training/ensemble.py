r"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell, NeurIPS 2017): N members of one run,
trained from different seeds on the same split; the prediction is the members' mean and its
uncertainty their spread.

.. math::
    \hat y = \frac{1}{N}\sum_{k=1}^{N} \hat y_k, \qquad
    \sigma = \sqrt{\frac{1}{N}\sum_{k=1}^{N} (\hat y_k - \hat y)^2}

(the population standard deviation: identical members give exactly :math:`\sigma = 0`; for
classification the members' probabilities are averaged).

``crystalgnn train ... --ensemble N --out DIR`` writes ``DIR/member-0 .. member-{N-1}``, each an
ordinary run folder (member ``k`` with seed ``seed + k``; members 1.. read member 0's
``split.json``, so every member has the same training, validation and test entries), then
``DIR/ensemble.json`` (the members), ``DIR/predictions.csv`` (the test entries: truth, mean,
std) and ``DIR/metrics.json`` (the mean prediction's test metrics, each member's test MAE and
the mean spread). Re-running the command resumes unfinished members.

``--ensemble-jobs J`` trains J members at once, each in its own (spawned) process with
``--threads`` torch threads (default: the CPUs divided by J): on a small CPU machine, where one
model gains little from a second thread, two members on one core each cost the wall-clock time of
one member. Member 0 starts first; the others start once its ``split.json`` exists, so every
member trains on the same split as in the sequential run, and each member's result is the same.
:class:`crystalgnn.prediction.ensemble.EnsemblePredictor` predicts with such a folder.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.metrics import graph_prediction_table, plain_columns, unit_columns
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.loop import finish_run
from crystalgnn.training.run import RunResult, train

#: the file that marks a folder as an ensemble
ENSEMBLE_FILE = "ensemble.json"


def member_config(cfg: TrainConfig, k: int) -> TrainConfig:
    """Member ``k`` of the ensemble ``cfg``: seed ``cfg.seed + k`` in ``out/member-k``; members
    after the first take the first one's split.
    """
    root = Path(cfg.out)
    member = replace(cfg, seed=cfg.seed + k, out=str(root / f"member-{k}"), ensemble=1)
    if k > 0:
        member.split_file = str(root / "member-0" / "split.json")
    return member


def train_ensemble(cfg: TrainConfig) -> RunResult:
    """Train (or resume) the ``cfg.ensemble`` members and write the ensemble's files."""
    if cfg.ensemble < 2:
        raise ValueError(f"an ensemble needs at least 2 members (got --ensemble {cfg.ensemble})")
    if cfg.site_target:
        raise ValueError("--ensemble is for graph-level targets")
    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    cfg.save(root / "config.yaml")
    configs = [member_config(cfg, k) for k in range(cfg.ensemble)]
    members = _train_parallel(configs, cfg.ensemble_jobs) if cfg.ensemble_jobs > 1 else [train(c) for c in configs]
    (root / ENSEMBLE_FILE).write_text(
        json.dumps({"members": [m.run_dir.name for m in members], "seeds": [cfg.seed + k for k in range(cfg.ensemble)]})
    )
    metrics = combine_test_predictions(root, members)
    finish_run(root, metrics)
    return RunResult(root, metrics)


def _train_parallel(configs: list[TrainConfig], jobs: int) -> list[RunResult]:
    """Train the members ``configs`` in ``jobs`` spawned processes (member 0 first, the others
    once its split is saved); any member's failure stops the others and is raised.
    """
    import multiprocessing

    jobs = min(jobs, len(configs))
    share = max(1, (os.cpu_count() or 1) // jobs)
    configs = [
        replace(c, num_threads=c.num_threads or share, n_jobs=c.n_jobs or share, progress=False) for c in configs
    ]
    split0 = Path(configs[0].out) / "split.json"
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures: list[Future[RunResult]] = [pool.submit(train, configs[0])]
        while not split0.is_file() and not futures[0].done():
            time.sleep(0.2)
        if futures[0].done() and futures[0].exception() is not None:
            raise futures[0].exception()  # type: ignore[misc]
        futures += [pool.submit(train, c) for c in configs[1:]]
        return [f.result() for f in futures]
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):  # running members: stop them now
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def combine_test_predictions(root: Path, members: list[RunResult]) -> dict[str, Any]:
    """The members' test predictions averaged: ``root/predictions.csv`` (with ``std``) and the metrics."""
    import pandas as pd

    first = members[0].metrics
    targets, units, kind = list(first["targets"]), dict(first["units"]), str(first["task"])
    frames = [
        plain_columns(pd.read_csv(m.run_dir / "predictions.csv", dtype={"id": str}), targets, units) for m in members
    ]
    ids = frames[0]["id"].tolist()
    for m, f in zip(members, frames, strict=True):
        if f["id"].tolist() != ids:
            raise ValueError(f"{m.run_dir} was tested on other entries than {members[0].run_dir}: not one ensemble")
    sfx = [""] if len(targets) == 1 or kind == "classification" else [f"_{t}" for t in targets]
    stacked = np.stack([np.stack([f["prediction" + s].to_numpy(float) for s in sfx], axis=1) for f in frames])
    mean, std = stacked.mean(axis=0), stacked.std(axis=0)
    truth = {t: frames[0]["target" + s].to_numpy(float) for t, s in zip(targets, sfx, strict=False)}
    values = mean[:, 0] if kind == "classification" else mean
    df, test = graph_prediction_table(ids, truth, values, kind=kind, targets=targets)
    for s, k in zip(sfx, range(std.shape[1]), strict=True):
        df["std" + s] = std[:, k]
    unit_columns(df, targets, units).to_csv(root / "predictions.csv", index=False)
    return {
        "test": test,
        "ensemble": len(members),
        "members": [m.run_dir.name for m in members],
        "member_test": [m.metrics["test"] for m in members],
        "mean_std": {t: float(std[:, k].mean()) for k, t in enumerate(targets[: std.shape[1]])},
        "model": first["model"],
        "targets": targets,
        "units": units,
        "task": kind,
        "level": "graph",
        "n_train": first["n_train"],
        "n_val": first["n_val"],
        "n_test": first["n_test"],
        "train_time_s": round(sum(float(m.metrics.get("train_time_s", 0.0)) for m in members), 3),
        "n_parameters": int(first["n_parameters"]) * len(members),
    }


def is_ensemble(path: str | Path) -> bool:
    """Whether ``path`` is an ensemble folder (holds ``ensemble.json``)."""
    return (Path(path) / ENSEMBLE_FILE).is_file()


def ensemble_members(path: str | Path) -> list[Path]:
    """The member run folders of the ensemble folder ``path``."""
    root = Path(path)
    data = json.loads((root / ENSEMBLE_FILE).read_text())
    return [root / name for name in data["members"]]


__all__ = [
    "ENSEMBLE_FILE",
    "combine_test_predictions",
    "ensemble_members",
    "is_ensemble",
    "member_config",
    "train_ensemble",
]
