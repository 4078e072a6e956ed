"""Prediction results: one value per structure (:class:`Predictions`) or per site
(:class:`SitePredictions`), as tables and as structures carrying the predictions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.data.dataset import CrystalDataset, Rejection
from crystalgnn.metrics import site_frame


class NonFiniteWarning(UserWarning):
    """Some predictions are NaN or infinite (broken weights, or inputs far outside the training data)."""


def _nonfinite_message(n_bad: int, n: int, what: str) -> str | None:
    if n_bad == 0:
        return None
    return f"{n_bad} of {n} {what} are not finite (NaN or infinite): the model's weights may be broken"


@dataclass
class Predictions:
    """Predictions for the structures of a dataset that could be turned into graphs."""

    ids: list[str]
    values: np.ndarray  # (N, T) regression values, or (N,) P(class 1)
    targets: list[str]
    units: dict[str, str]
    task: str
    rejected: list[Rejection] = field(default_factory=list)
    formulas: list[str] | None = None  # reduced formula of each predicted structure
    std: np.ndarray | None = None  # ensembles: the members' spread, shaped as ``values``

    def nonfinite_message(self) -> str | None:
        """One line counting the structures with a NaN or infinite prediction (None when there are none)."""
        v = np.asarray(self.values, dtype=float).reshape(len(self.ids), -1)
        return _nonfinite_message(int((~np.isfinite(v)).any(axis=1).sum()), len(self.ids), "predictions")

    def to_frame(self, dataset: CrystalDataset | None = None) -> Any:
        """A table: id, formula, then target/prediction columns (target where labels exist)."""
        import pandas as pd

        df = pd.DataFrame({"id": self.ids})
        idx = dataset.index_of(self.ids) if dataset is not None else None
        if dataset is not None and idx is not None:
            df["formula"] = [dataset.structures[i].composition.reduced_formula for i in idx]
        elif self.formulas is not None:
            df["formula"] = self.formulas
        if self.task == "classification":
            name = self.targets[0]
            if dataset is not None and name in dataset.targets and idx is not None:
                df["target"] = dataset.targets[name][idx]
            df["prediction"] = self.values
            if self.std is not None:
                df["std"] = self.std
        else:
            for k, name in enumerate(self.targets):
                suffix = "" if len(self.targets) == 1 else f"_{name}"
                if dataset is not None and name in dataset.targets and idx is not None:
                    df["target" + suffix] = dataset.targets[name][idx]
                df["prediction" + suffix] = self.values[:, k]
                if self.std is not None:
                    df["std" + suffix] = self.std[:, k]
        return df


@dataclass
class SitePredictions:
    """One prediction per site for each structure that could be turned into a graph."""

    ids: list[str]
    values: list[np.ndarray]  # one (n_sites,) array per structure
    site_target: str
    units: dict[str, str]
    rejected: list[Rejection] = field(default_factory=list)
    task: str = "site"

    @property
    def targets(self) -> list[str]:
        return [self.site_target]

    def nonfinite_message(self) -> str | None:
        """One line counting the NaN or infinite site predictions (None when there are none)."""
        bad = sum(int((~np.isfinite(np.asarray(v, dtype=float))).sum()) for v in self.values)
        n = sum(len(v) for v in self.values)
        return _nonfinite_message(bad, n, "site predictions")

    def to_frame(self, dataset: CrystalDataset | None = None, target: str | None = None) -> Any:
        """id, site_index, element, [target,] prediction: one row per site.

        ``target`` (default: the model's target) is added when ``dataset`` holds it or can
        derive it (``abs_X``); missing labels are NaN.
        """
        name = target or self.site_target
        if dataset is None:
            return site_frame(self.ids, self.values)
        from crystalgnn.data.targets import ensure_targets

        try:
            ensure_targets(dataset, [name])
        except KeyError:
            pass
        truth = dataset.site_targets.get(name)
        pos = dataset.index_of(self.ids)
        elements = [[site.specie.symbol for site in dataset.structures[i]] for i in pos]
        return site_frame(self.ids, self.values, elements, None if truth is None else [truth[i] for i in pos])

    def property_name(self) -> str:
        return f"predicted_{self.site_target}"

    def to_structures(self, dataset: CrystalDataset) -> list[Any]:
        """Copies of the structures with the predictions as the site property ``predicted_<target>``."""
        pos = {k: i for i, k in enumerate(dataset.ids)}
        out = []
        for sid, vals in zip(self.ids, self.values, strict=True):
            s = dataset.structures[pos[sid]].copy()
            s.add_site_property(self.property_name(), [float(v) for v in vals])
            out.append(s)
        return out

    def write_structures(self, dataset: CrystalDataset, out_dir: str | Path) -> list[Path]:
        """Write ``<name>.json`` (``Structure.to``) and ``<name>.cif`` (prediction as an
        ``_atom_site_predicted_<target>`` column of the atom-site loop) per structure, and
        ``index.csv`` (id, json, cif): ``<name>`` is the id when it is a safe, unique file name,
        else the id made safe plus a short hash of it (:func:`file_stems`), so no file overwrites another.
        """
        import csv

        from pymatgen.io.cif import CifWriter

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        prop = self.property_name()
        rows = []
        for sid, stem, s in zip(self.ids, file_stems(self.ids), self.to_structures(dataset), strict=True):
            jpath = out_dir / f"{stem}.json"
            s.to(filename=str(jpath))
            bare = s.copy()
            for k in list(bare.site_properties):
                if k != prop:
                    bare.remove_site_property(k)
            cpath = out_dir / f"{stem}.cif"
            CifWriter(bare, write_site_properties=True).write_file(str(cpath))
            written += [jpath, cpath]
            rows.append((sid, jpath.name, cpath.name))
        with (out_dir / "index.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "json", "cif"])
            w.writerows(rows)
        unit = self.units.get(self.site_target, "")
        meta = {"site_property": prop, "unit": unit, "n_structures": len(self.ids), "index": "index.csv"}
        (out_dir / "site_property.json").write_text(json.dumps(meta))
        return written


#: file names of write_structures' own files (an id with that name gets a hash suffix)
_RESERVED = ("index", "site_property")
_MAX_STEM = 100


def _safe_name(s: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in str(s))
    return keep or "structure"


def file_stems(ids: list[str]) -> list[str]:
    """One distinct file name (without suffix) per id, also on case-insensitive file systems.

    An id that is a safe file name is kept as it is; one that had to be changed (``a/b``,
    ``a:b`` -> ``a_b``), is too long, starts with a dot or collides with an earlier name gets
    ``-`` and 8 hex digits of its SHA-1.
    """
    import hashlib

    used = set(_RESERVED)
    out = []
    for sid in ids:
        text = str(sid)
        stem = _safe_name(text)
        if stem != text or stem.startswith(".") or len(stem) > _MAX_STEM or stem.lower() in used:
            stem = f"{stem.lstrip('.')[:_MAX_STEM]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
        base, k = stem, 1
        while stem.lower() in used:  # the same id twice, or a hash collision
            k += 1
            stem = f"{base}-{k}"
        used.add(stem.lower())
        out.append(stem)
    return out
