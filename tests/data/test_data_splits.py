"""Seeded random splits, id-list splits and Matbench-style k-fold splits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold

from crystalgnn.data.splits import MATBENCH_SEED, Split, kfold_splits, parse_ratios, random_split, split_from_ids


def parts(split: Split) -> list[np.ndarray]:
    return [split.train, split.val, split.test]


@pytest.mark.parametrize("n", [1, 7, 10, 101, 1000])
def test_random_split_is_disjoint_and_complete(n):
    split = random_split(n, (0.8, 0.1, 0.1), seed=3)
    allidx = np.concatenate(parts(split))
    assert len(allidx) == n
    np.testing.assert_array_equal(np.sort(allidx), np.arange(n))
    assert len(split.test) == int(np.floor(0.1 * n)) and len(split.val) == int(np.floor(0.1 * n))
    for p in parts(split):
        assert p.dtype.kind == "i"


def test_random_split_is_seeded():
    a, b, c = random_split(500, seed=1), random_split(500, seed=1), random_split(500, seed=2)
    for x, y in zip(parts(a), parts(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.test, c.test)


def test_random_split_ratios_and_errors():
    split = random_split(100, "0.6,0.2,0.2", seed=0)
    assert [len(p) for p in parts(split)] == [60, 20, 20]
    assert parse_ratios([0.5, 0.25, 0.25]) == (0.5, 0.25, 0.25)
    with pytest.raises(ValueError, match="summing to 1"):
        parse_ratios("0.8,0.1")
    with pytest.raises(ValueError, match="summing to 1"):
        parse_ratios("0.8,0.3,0.1")
    with pytest.raises(ValueError, match="empty"):
        random_split(0)
    with pytest.raises(ValueError, match="no training data"):
        random_split(4, (0.0, 0.5, 0.5))


def test_split_from_ids_round_trip(tmp_path):
    ids = [f"mp-{k}" for k in range(50)]
    split = random_split(len(ids), seed=7)
    path = tmp_path / "split.json"
    split.save(path, ids)
    back = Split.load(path, ids)
    for x, y in zip(parts(split), parts(back), strict=True):
        np.testing.assert_array_equal(x, y)
    # ids, not positions, are what is stored: a reordered dataset gets the same entries
    shuffled = list(reversed(ids))
    moved = Split.load(path, shuffled)
    assert sorted(shuffled[i] for i in moved.test) == sorted(ids[i] for i in split.test)
    assert split_from_ids(split.to_ids(ids), ids).to_ids(ids) == split.to_ids(ids)


def test_split_from_ids_errors():
    ids = ["a", "b", "c", "d"]
    with pytest.raises(KeyError, match="zzz"):
        split_from_ids({"train": ["a", "zzz"], "val": [], "test": ["b"]}, ids)
    with pytest.raises(ValueError, match="more than one part"):
        split_from_ids({"train": ["a", "b"], "val": [], "test": ["b"]}, ids)
    with pytest.raises(ValueError, match="more than one part"):
        split_from_ids({"train": ["a"], "val": ["c"], "test": ["c"]}, ids)
    with pytest.raises(ValueError, match="more than once"):
        split_from_ids({"train": ["a", "a"], "val": [], "test": ["b"]}, ids)


@pytest.mark.parametrize("n", [50, 1234])
def test_kfold_matches_sklearn(n):
    folds = kfold_splits(n, 5)
    ref = list(KFold(5, shuffle=True, random_state=18012019).split(np.arange(n)))
    assert MATBENCH_SEED == 18012019
    assert len(folds) == 5
    for fold, (train, test) in zip(folds, ref, strict=True):
        np.testing.assert_array_equal(fold.train, train)
        np.testing.assert_array_equal(fold.test, test)
        assert len(fold.val) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([f.test for f in folds])), np.arange(n))


def test_kfold_with_validation_part():
    n = 200
    ref = list(KFold(5, shuffle=True, random_state=MATBENCH_SEED).split(np.arange(n)))
    for fold, (train, test) in zip(kfold_splits(n, 5, val_fraction=0.1), ref, strict=True):
        np.testing.assert_array_equal(fold.test, test)
        assert len(fold.val) == round(0.1 * len(train))
        assert set(fold.val).isdisjoint(fold.train) and set(fold.val).isdisjoint(fold.test)
        np.testing.assert_array_equal(np.sort(np.concatenate([fold.train, fold.val])), train)
