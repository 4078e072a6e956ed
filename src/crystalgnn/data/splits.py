"""Train/validation/test splits by structure: seeded ratios, explicit id lists, Matbench folds.

Splits are always over structures (never over sites), saved as JSON id lists in the run folder
so a run can be repeated or continued exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MATBENCH_SEED = 18012019


@dataclass
class Split:
    """Index arrays into one dataset (plus the ids, for saving)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    #: ids of an id-list split that were left out (``allow_missing``), per part, with the reason
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_ids(self, ids: Sequence[str]) -> dict[str, list[str]]:
        return {k: [ids[i] for i in getattr(self, k)] for k in ("train", "val", "test")}

    def save(self, path: str | Path, ids: Sequence[str]) -> None:
        Path(path).write_text(json.dumps(self.to_ids(ids)))

    @classmethod
    def load(
        cls,
        path: str | Path,
        ids: Sequence[str],
        *,
        rejected: Mapping[str, str] | None = None,
        allow_missing: bool = False,
    ) -> Split:
        """The id lists of a JSON file (see :func:`split_from_ids`); errors name the file."""
        try:
            lists = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable split file ({exc})") from exc
        if not isinstance(lists, dict):
            raise ValueError(f"{path}: a split file is a JSON object of train/val/test id lists")
        try:
            return split_from_ids(lists, ids, rejected=rejected, allow_missing=allow_missing)
        except MissingSplitIds as exc:
            raise MissingSplitIds(f"{path}: {exc}", exc.missing) from exc
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


def parse_ratios(text: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` -> (0.8, 0.1, 0.1); two numbers mean no validation set... never: 3 needed."""
    parts = [float(x) for x in (text.split(",") if isinstance(text, str) else text)]
    if len(parts) != 3 or any(p < 0 for p in parts) or not np.isclose(sum(parts), 1.0, atol=1e-6):
        raise ValueError(f"split ratios must be three non-negative numbers summing to 1, got {text!r}")
    return parts[0], parts[1], parts[2]


def random_split(n: int, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """Seeded random split of ``n`` entries by ratios (train, val, test).

    Sizes follow the reference CGCNN code: test and val are rounded down, train takes the rest.
    """
    if n == 0:
        raise ValueError("cannot split an empty dataset")
    _r_train, r_val, r_test = parse_ratios(ratios)
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(np.floor(r_test * n))
    n_val = int(np.floor(r_val * n))
    n_train = n - n_test - n_val
    if n_train <= 0:
        raise ValueError(f"split {ratios} leaves no training data for {n} entries")
    return Split(np.sort(perm[:n_train]), np.sort(perm[n_train : n_train + n_val]), np.sort(perm[n_train + n_val :]))


def group_split(groups: Sequence[object], ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """Seeded random split that keeps every group on one side (e.g. one electrode framework).

    The distinct groups are shuffled with ``seed``; test groups are taken from the front of the
    shuffled list until the test part holds at least ``floor(r_test n)`` entries, then validation
    groups likewise, and the remaining groups train. Part sizes therefore overshoot their ratio by
    less than one group. Entries whose group is ``None`` or NaN are groups of their own.
    """
    n = len(groups)
    if n == 0:
        raise ValueError("cannot split an empty dataset")
    _r_train, r_val, r_test = parse_ratios(ratios)
    keys = [("__own__", i) if g is None or (isinstance(g, float) and np.isnan(g)) else g for i, g in enumerate(groups)]
    uniq = list(dict.fromkeys(keys))
    members: dict[object, list[int]] = {k: [] for k in uniq}
    for i, k in enumerate(keys):
        members[k].append(i)
    order = np.random.default_rng(seed).permutation(len(uniq))
    parts: list[list[int]] = [[], [], []]  # test, val, train
    goals = [int(np.floor(r_test * n)), int(np.floor(r_val * n))]
    part = 0
    for j in order:
        while part < 2 and len(parts[part]) >= goals[part]:
            part += 1
        parts[part].extend(members[uniq[j]])
    test, val, train = (np.sort(np.asarray(p, dtype=int)) for p in parts)
    if len(train) == 0:
        raise ValueError(f"split {ratios} by group leaves no training data for {n} entries in {len(uniq)} groups")
    return Split(train, val, test)


class MissingSplitIds(KeyError, ValueError):
    """Ids of a split that are not in the dataset; ``missing``: part -> {id: reason}."""

    def __init__(self, msg: str, missing: dict[str, dict[str, str]]) -> None:
        super().__init__(msg)
        self.missing = missing

    def __str__(self) -> str:
        return str(self.args[0])


def _missing_message(missing: dict[str, dict[str, str]], limit: int = 5) -> str:
    parts = []
    for part, why in missing.items():
        shown = "; ".join(f"{i} ({r})" for i, r in list(why.items())[:limit])
        more = f"; ... {len(why) - limit} more" if len(why) > limit else ""
        parts.append(f"{len(why)} {part} ids are not in the dataset: {shown}{more}")
    return "; ".join(parts)


def split_from_ids(
    lists: Mapping[str, Sequence[str]],
    ids: Sequence[str],
    *,
    rejected: Mapping[str, str] | None = None,
    allow_missing: bool = False,
) -> Split:
    """A split given as id lists.

    Ids that are not in the dataset raise :class:`MissingSplitIds` naming each with its reason
    (``rejected``: id -> why the entry was rejected when it was read; otherwise "not in the
    source"); with ``allow_missing`` they are left out and listed in :attr:`Split.skipped`.
    """
    pos = {k: i for i, k in enumerate(ids)}
    rejected = rejected or {}
    out = {}
    missing: dict[str, dict[str, str]] = {}
    for part in ("train", "val", "test"):
        wanted = [str(i) for i in lists.get(part, [])]
        absent = [i for i in wanted if i not in pos]
        if absent:
            missing[part] = {i: f"rejected: {rejected[i]}" if i in rejected else "not in the source" for i in absent}
            wanted = [i for i in wanted if i in pos]
        repeated = sorted({i for i in wanted if wanted.count(i) > 1}) if len(set(wanted)) < len(wanted) else []
        if repeated:
            raise ValueError(f"{len(repeated)} {part} ids are listed more than once (first: {repeated[:3]})")
        out[part] = np.array(sorted(pos[i] for i in wanted), dtype=np.int64)
    if missing and not allow_missing:
        raise MissingSplitIds(_missing_message(missing), missing)
    train, val, test = (set(out[p].tolist()) for p in ("train", "val", "test"))
    overlap = (train & test) | (train & val) | (val & test)
    if overlap:
        first = [ids[i] for i in sorted(overlap)[:3]]
        raise ValueError(f"{len(overlap)} entries are in more than one part of the split (first: {first})")
    return Split(out["train"], out["val"], out["test"], skipped=missing)


def kfold_splits(n: int, n_folds: int = 5, seed: int = MATBENCH_SEED, val_fraction: float = 0.0) -> list[Split]:
    """K-fold CV as Matbench assigns folds: ``KFold(n_folds, shuffle=True, random_state=seed)``.

    Each fold's test part is the KFold test part; ``val_fraction`` of the remaining training
    indices (chosen with the same seed) becomes the validation set for early stopping.
    """
    from sklearn.model_selection import KFold

    out = []
    for train, test in KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.arange(n)):
        val = np.zeros(0, dtype=np.int64)
        if val_fraction > 0:
            rng = np.random.default_rng(seed)
            perm = rng.permutation(train)
            n_val = round(val_fraction * len(train))
            val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        out.append(Split(np.asarray(train), val, np.asarray(test)))
    return out
