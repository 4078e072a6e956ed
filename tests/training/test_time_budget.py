"""``--time-budget``: training stops at the epoch end before the budget runs out, a resumed run
gets only the remainder, and cosine/one-cycle schedules anneal over the budget."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from crystalgnn.training.clock import EpochTimer, TimeBudget, cosine_factor, onecycle_factor
from crystalgnn.training.run import train
from tinydata import perovskite_rows, small_config, write_jsonl

BUDGET_MIN = 0.04  # 2.4 s of training


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("budget") / "perov24.jsonl", perovskite_rows(24))


def _epoch_times(run: Path) -> list[float]:
    log = pd.read_csv(run / "log" / "metrics.csv")
    return log["epoch_time_s"].dropna().tolist()


def _within_one_epoch(m: dict, times: list[float], budget_s: float) -> None:
    longest = max(times)
    assert m["stopped_by"] == "time_budget"
    assert m["time_budget_s"] == pytest.approx(budget_s)
    assert budget_s - longest <= m["train_time_s"] <= budget_s + longest, (m["train_time_s"], longest)
    assert m["train_time_s"] == pytest.approx(sum(times), rel=1e-3, abs=1e-3)


def test_budget_stops_within_one_epoch_and_cosine_anneals_over_it(table, tmp_path) -> None:
    out = tmp_path / "run"
    res = train(small_config(table, out, epochs=10_000, max_time_minutes=BUDGET_MIN, scheduler="cosine"))
    m = res.metrics
    times = _epoch_times(out)
    assert 2 <= m["epochs_run"] < 10_000 and len(times) == m["epochs_run"]
    _within_one_epoch(m, times, 60 * BUDGET_MIN)
    # the cosine schedule followed the budget: the learning rate has annealed nearly to zero,
    # where an epoch-based cosine over 10,000 epochs would still be at its start
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    lr_end = ckpt["optimizer_states"][0]["param_groups"][0]["lr"]
    assert lr_end < 0.25 * 0.003


def test_resumed_run_gets_only_the_remaining_budget(table, tmp_path) -> None:
    out = tmp_path / "run"
    first = train(small_config(table, out, epochs=2, max_time_minutes=BUDGET_MIN)).metrics
    assert first["epochs_run"] == 2 and first["stopped_by"] == "epochs"
    # more epochs, same budget: continues from last.ckpt until the budget (both processes) is spent
    res = train(small_config(table, out, epochs=10_000, max_time_minutes=BUDGET_MIN)).metrics
    times = _epoch_times(out)
    assert res["epochs_run"] > 2 and len(times) == res["epochs_run"]
    _within_one_epoch(res, times, 60 * BUDGET_MIN)
    # the same command again: the budget is spent, nothing is trained
    before = (out / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    again = train(small_config(table, out, epochs=10_000, max_time_minutes=BUDGET_MIN)).metrics
    assert again == json.loads((out / "metrics.json").read_text())
    assert (out / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before
    # a larger budget reopens it
    more = train(small_config(table, out, epochs=10_000, max_time_minutes=2 * BUDGET_MIN)).metrics
    assert more["epochs_run"] > res["epochs_run"]
    _within_one_epoch(more, _epoch_times(out), 120 * BUDGET_MIN)


def test_stop_rule_and_budget_schedules() -> None:
    timer = EpochTimer()
    budget = TimeBudget(1.0, timer)  # 60 s
    assert not budget.spent(40.0, [19.0])  # the next epoch ends at 59 s
    assert budget.spent(40.0, [21.0])  # it would end at 61 s
    assert not budget.spent(0.0, [])
    with pytest.raises(ValueError, match="> 0 minutes"):
        TimeBudget(0.0, timer)
    assert cosine_factor(0.0) == pytest.approx(1.0) and cosine_factor(1.0) == pytest.approx(0.0)
    assert cosine_factor(0.5) == pytest.approx(0.5)
    assert onecycle_factor(0.0) == pytest.approx(1 / 25)
    assert onecycle_factor(0.3) == pytest.approx(1.0)
    assert onecycle_factor(1.0) == pytest.approx(1 / 25e4)
    assert all(onecycle_factor(a) <= onecycle_factor(b) for a, b in [(0.0, 0.1), (0.1, 0.2), (0.2, 0.3)])
    assert all(onecycle_factor(a) >= onecycle_factor(b) for a, b in [(0.3, 0.5), (0.5, 0.8), (0.8, 1.0)])


def test_time_budget_flag(table, tmp_path) -> None:
    from typer.testing import CliRunner

    from crystalgnn.cli import app

    r = CliRunner().invoke(app, ["train", "--help"])
    assert "--time-budget" in r.output
    out = tmp_path / "cli"
    r = CliRunner().invoke(
        app,
        ["train", str(table), "-t", "heat_all", "--time-budget", "0", "-o", str(out), "--no-progress"],
    )
    assert r.exit_code == 2 and "--time-budget must be > 0" in r.output
