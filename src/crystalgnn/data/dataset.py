"""The one dataset object every reader returns.

A :class:`CrystalDataset` holds, entry by entry, an id, a pymatgen ``Structure``, zero or more
named graph-level targets (with units), optional per-site target arrays aligned with the site
order, and free-form metadata. Entries that could not be used are never dropped silently:
they are listed in :attr:`CrystalDataset.rejections` with the reason.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

#: the longest reason a :class:`Rejection` keeps (longer ones end with an ellipsis)
REASON_MAX_CHARS = 300


def one_line(text: object, limit: int = REASON_MAX_CHARS) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space), cut to
    ``limit`` characters with a trailing ``…`` when longer.
    """
    out = " ".join(str(text).split())
    if len(out) > limit:
        out = out[: max(1, limit - 1)].rstrip() + "…"
    return out


def reason_kind(reason: str) -> str:
    """The kind of a rejection reason, without its details: the text before the first ``:``
    or `` (`` that is outside brackets and quotes.

    ``"unparsable CIF (ValueError: could not convert ...)"`` -> ``"unparsable CIF"``,
    ``"isolated atom: site 3 (Z=8) ..."`` -> ``"isolated atom"``,
    ``"label 'gap' is missing, NaN or infinite"`` -> unchanged. Used to count rejections by
    reason; the full reason stays in :attr:`Rejection.reason`.
    """
    depth = 0
    quote = ""
    for i, ch in enumerate(reason):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"" and (i == 0 or not reason[i - 1].isalnum()):
            quote = ch
        elif ch in "([{":
            if ch == "(" and depth == 0 and i > 0 and reason[i - 1] == " " and reason[: i - 1].strip():
                return reason[: i - 1].strip()
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == ":" and depth == 0 and reason[:i].strip():
            return reason[:i].strip()
    return reason.strip()


@dataclass(frozen=True)
class Rejection:
    """One entry that was not kept, with the place it came from and why.

    ``reason`` is always one line of at most :data:`REASON_MAX_CHARS` characters (longer or
    multi-line reasons are collapsed by :func:`one_line`); :attr:`kind` is its detail-free part.
    """

    id: str
    source: str
    reason: str

    def __post_init__(self) -> None:
        reason = one_line(self.reason)
        if reason != self.reason:
            object.__setattr__(self, "reason", reason)

    @property
    def kind(self) -> str:
        """The reason without its details (:func:`reason_kind`), for counting."""
        return reason_kind(self.reason)


class DataError(ValueError):
    """Raised for input that cannot be used at all (empty source, unknown format, ...)."""


@dataclass
class CrystalDataset:
    """Structures with labels: ids, structures, graph-level and per-site targets, metadata.

    Attributes:
        ids: unique entry ids.
        structures: one pymatgen ``Structure`` per id.
        targets: name -> float array (len = number of entries); NaN marks a missing label.
        units: name -> unit string for graph-level and per-site targets ("" when unitless).
        site_targets: name -> list of float arrays, one per entry, aligned with site order.
        metadata: one dict per entry (source file, formula, extra columns, ...).
        rejections: entries that were not kept and why.
        atom_init: optional path of a CGCNN ``atom_init.json`` that came with the source.
        name: a short label for reports.
        notes: how the reader interpreted the source where it had to guess (e.g. the first
            line of an ``id_prop.csv`` taken as a header); not problems with entries.
    """

    ids: list[str] = field(default_factory=list)
    structures: list[Structure] = field(default_factory=list)
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    site_targets: dict[str, list[np.ndarray]] = field(default_factory=dict)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    atom_init: str | None = None
    name: str = "dataset"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.structures) != n:
            raise ValueError(f"{n} ids but {len(self.structures)} structures")
        if not self.metadata:
            self.metadata = [{} for _ in range(n)]
        self.targets = {k: np.asarray(v, dtype=float) for k, v in self.targets.items()}
        for k, v in self.targets.items():
            if len(v) != n:
                raise ValueError(f"target {k!r} has {len(v)} values for {n} entries")
        for k, arrays in self.site_targets.items():
            if len(arrays) != n:
                raise ValueError(f"site target {k!r} has {len(arrays)} entries for {n} structures")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (
            f"CrystalDataset(name={self.name!r}, entries={len(self)}, "
            f"targets={list(self.targets)}, site_targets={list(self.site_targets)}, "
            f"rejected={len(self.rejections)})"
        )

    # ------------------------------------------------------------------ selection
    def subset(self, indices: Sequence[int] | np.ndarray) -> CrystalDataset:
        """A new dataset with the entries at ``indices`` (rejections are kept as they are)."""
        idx = [int(i) for i in indices]
        return CrystalDataset(
            ids=[self.ids[i] for i in idx],
            structures=[self.structures[i] for i in idx],
            targets={k: v[idx] for k, v in self.targets.items()},
            units=dict(self.units),
            site_targets={k: [v[i] for i in idx] for k, v in self.site_targets.items()},
            metadata=[self.metadata[i] for i in idx],
            rejections=list(self.rejections),
            atom_init=self.atom_init,
            name=self.name,
            notes=list(self.notes),
        )

    def index_of(self, ids: Iterable[str]) -> list[int]:
        """Positions of ``ids``; raises ``KeyError`` naming the ids that are absent."""
        pos = {i: k for k, i in enumerate(self.ids)}
        ids = list(ids)
        missing = [i for i in ids if i not in pos]
        if missing:
            raise KeyError(f"{len(missing)} ids not in dataset {self.name!r}: {missing[:5]}")
        return [pos[i] for i in ids]

    def drop(self, indices: Iterable[int], reason: str | Sequence[str], source: str = "") -> None:
        """Remove entries in place, recording each as a rejection with ``reason``."""
        given = [int(i) for i in indices]
        if isinstance(reason, str):
            by_idx = {i: reason for i in given}
        else:  # one reason per index, in the order the indices were given
            by_idx = dict(zip(given, list(reason), strict=True))
        drop = sorted(by_idx)
        if not drop:
            return
        for i in drop:
            src = source or str(self.metadata[i].get("source", self.name))
            self.rejections.append(Rejection(self.ids[i], src, by_idx[i]))
        dropped = set(drop)
        keep = [i for i in range(len(self)) if i not in dropped]
        kept = self.subset(keep)
        self.ids, self.structures, self.targets = kept.ids, kept.structures, kept.targets
        self.site_targets, self.metadata = kept.site_targets, kept.metadata

    def require_targets(self, names: Sequence[str]) -> None:
        """Reject entries whose label for any of ``names`` is missing, NaN or infinite.

        For a per-site target: entries without one value per site, with no finite value, or with
        an infinite value (a NaN site is an unlabelled site and is kept).
        """
        bad: Iterable[int]  # positions of the entries to drop
        for name in names:
            if name in self.targets:
                bad = np.flatnonzero(~np.isfinite(self.targets[name]))
                self.drop(bad, f"label {name!r} is missing, NaN or infinite")
            elif name in self.site_targets:
                arrs = self.site_targets[name]
                bad = [i for i, a in enumerate(arrs) if a is None or len(a) != len(self.structures[i])]
                self.drop(bad, f"per-site label {name!r} is missing or not one value per site")
                # NaN marks an unlabelled site (masked in training); a structure with no labelled
                # site at all, or with an infinite value, is rejected.
                bad = [i for i, a in enumerate(self.site_targets[name]) if not np.any(np.isfinite(a))]
                self.drop(bad, f"per-site label {name!r} is missing on every site")
                bad = [i for i, a in enumerate(self.site_targets[name]) if np.any(np.isinf(a))]
                self.drop(bad, f"per-site label {name!r} has infinite values")
            else:
                raise KeyError(
                    f"unknown target {name!r}; dataset {self.name!r} has "
                    f"{sorted(self.targets) + sorted(self.site_targets)}"
                )

    # ------------------------------------------------------------------ reporting
    def rejection_counts(self) -> Counter[str]:
        """Number of rejections per kind of reason (:func:`reason_kind`: the reason without its
        details, e.g. ``unparsable CIF``; the full reasons are in :attr:`rejections`).
        """
        return Counter(r.kind for r in self.rejections)

    def write_rejections(self, path: str | Path) -> Path:
        """Write ``rejected.csv`` (id, source, reason)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "source", "reason"])
            for r in self.rejections:
                w.writerow([r.id, r.source, r.reason])
        return path

    def summary(self) -> dict[str, Any]:
        """Counts, elements, sites per structure, label statistics (with units) and the reader's
        notes.
        """
        nsites = np.array([len(s) for s in self.structures], dtype=float)
        elements: Counter[str] = Counter()
        for s in self.structures:
            elements.update({el.symbol for el in s.composition.elements})
        labels = {}
        for k, v in self.targets.items():
            finite = v[np.isfinite(v)]
            labels[k] = _stats(finite, len(v) - len(finite), self.units.get(k, ""))
        for k, arrs in self.site_targets.items():
            flat = np.concatenate([a for a in arrs if a is not None]) if arrs else np.zeros(0)
            finite = flat[np.isfinite(flat)]
            labels[k + " (per site)"] = _stats(finite, len(flat) - len(finite), self.units.get(k, ""))
        return {
            "name": self.name,
            "entries": len(self),
            "rejected": len(self.rejections),
            "rejections_by_reason": dict(self.rejection_counts()),
            "n_elements": len(elements),
            "elements": dict(sorted(elements.items(), key=lambda kv: -kv[1])),
            "sites_min": int(nsites.min()) if len(nsites) else 0,
            "sites_median": float(np.median(nsites)) if len(nsites) else 0.0,
            "sites_max": int(nsites.max()) if len(nsites) else 0,
            "sites_total": int(nsites.sum()),
            "labels": labels,
            "notes": list(self.notes),
        }


def _stats(values: np.ndarray, n_missing: int, unit: str) -> dict[str, Any]:
    if len(values) == 0:
        return {"count": 0, "missing": n_missing, "unit": unit}
    return {
        "count": len(values),
        "missing": int(n_missing),
        "unit": unit,
        "min": float(values.min()),
        "median": float(np.median(values)),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "max": float(values.max()),
    }


def finite_or_nan(value: Any) -> float:
    """Convert a label cell to float; empty, None, bools-as-text and junk become NaN."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        v = value.strip()
        if v.lower() in {"true", "false"}:
            return 1.0 if v.lower() == "true" else 0.0
        try:
            return float(v)
        except ValueError:
            return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
