"""``--split-by COLUMN``: entries sharing a value (an electrode framework) stay on one side."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crystalgnn.data.splits import group_split
from crystalgnn.training.run import train
from tinydata import perovskite_rows, small_config, write_jsonl


def test_groups_stay_on_one_side_and_sizes_follow_the_ratios() -> None:
    rng = np.random.default_rng(0)
    groups = [f"g{k}" for k in rng.integers(0, 120, size=1000)]
    split = group_split(groups, (0.8, 0.1, 0.1), seed=3)
    sides = [{groups[i] for i in part} for part in (split.train, split.val, split.test)]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(1000))
    largest = max(groups.count(g) for g in set(groups))
    assert 100 <= len(split.test) < 100 + largest and 100 <= len(split.val) < 100 + largest
    assert group_split(groups, (0.8, 0.1, 0.1), seed=3).test.tolist() == split.test.tolist()  # seeded
    assert group_split(groups, (0.8, 0.1, 0.1), seed=4).test.tolist() != split.test.tolist()


def test_missing_group_values_are_groups_of_their_own() -> None:
    split = group_split([None, None, float("nan"), "a", "a", None, None, None, None, None], (0.6, 0.2, 0.2))
    assert len(split.train) + len(split.val) + len(split.test) == 10
    a_sides = [k for k, part in enumerate((split.train, split.val, split.test)) if {3, 4} & set(part.tolist())]
    assert len(a_sides) == 1


def test_training_with_split_by(tmp_path) -> None:
    rows = perovskite_rows(16)
    table = write_jsonl(tmp_path / "t.jsonl", rows, extra=lambda r: {"framework": "fw-" + r["id"][-1]})
    out = tmp_path / "run"
    train(small_config(table, out, split="0.5,0.25,0.25", split_by="framework"))
    split = json.loads((out / "split.json").read_text())
    frame = {r["id"]: "fw-" + r["id"][-1] for r in rows}
    sides = [{frame[i] for i in split[p]} for p in ("train", "val", "test")]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    with pytest.raises(ValueError, match=r"--split-by nope: no such column .*framework"):
        train(small_config(table, tmp_path / "bad", split="0.5,0.25,0.25", split_by="nope"))
