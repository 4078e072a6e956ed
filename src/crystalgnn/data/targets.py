"""Derived targets the literature uses, computed by name on request.

* ``log10_X``: log10 of a positive target X (elastic moduli in the CGCNN/Matbench papers);
  non-positive values become NaN and are rejected like any missing label.
* ``X_per_atom``: X divided by the number of sites (eV/cell -> eV/atom).
* ``abs_X``: |X| for a graph-level or per-site target (|m| for magnetic moments).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from crystalgnn.data.dataset import CrystalDataset


def _derived_unit(prefix: str, unit: str) -> str:
    if prefix == "log10":
        return f"log10({unit})" if unit else "log10"
    if prefix == "per_atom":
        return unit.replace("/cell", "").replace(" per cell", "") + "/atom" if unit else "1/atom"
    return unit


def ensure_targets(ds: CrystalDataset, names: Sequence[str]) -> None:
    """Add each derived target in ``names`` that the dataset does not hold yet (in place).

    Raises:
        KeyError: naming the target and the available ones when it cannot be derived.
    """
    for name in names:
        if name in ds.targets or name in ds.site_targets:
            continue
        if name.startswith("log10_") and name[6:] in ds.targets:
            base = ds.targets[name[6:]]
            with np.errstate(divide="ignore", invalid="ignore"):
                ds.targets[name] = np.where(base > 0, np.log10(np.where(base > 0, base, 1.0)), np.nan)
            ds.units[name] = _derived_unit("log10", ds.units.get(name[6:], ""))
        elif name.endswith("_per_atom") and name[: -len("_per_atom")] in ds.targets:
            base_name = name[: -len("_per_atom")]
            nsites = np.array([len(s) for s in ds.structures], dtype=float)
            ds.targets[name] = ds.targets[base_name] / nsites
            ds.units[name] = _derived_unit("per_atom", ds.units.get(base_name, ""))
        elif name.startswith("abs_") and name[4:] in ds.targets:
            ds.targets[name] = np.abs(ds.targets[name[4:]])
            ds.units[name] = ds.units.get(name[4:], "")
        elif name.startswith("abs_") and name[4:] in ds.site_targets:
            ds.site_targets[name] = [None if a is None else np.abs(a) for a in ds.site_targets[name[4:]]]
            ds.units[name] = ds.units.get(name[4:], "")
        else:
            available = sorted(ds.targets) + sorted(ds.site_targets)
            raise KeyError(
                f"unknown target {name!r} for dataset {ds.name!r}; available: {available} "
                "(derived: log10_X, X_per_atom, abs_X)"
            )


def default_targets(ds: CrystalDataset) -> list[str]:
    """The label to train on when none is named: ``[name]`` of the dataset's only graph-level label.

    A CGCNN or ALIGNN folder whose ``id_prop.csv`` has one unnamed value column gives
    ``["target"]``; a table with one numeric column gives that column.

    Raises:
        ValueError: when the dataset has several graph-level labels
            (``"several labels: a, b, c; choose with --target"``) or none (the message names
            the per-site labels, if any).
    """
    names = list(ds.targets)
    if len(names) == 1:
        return names
    if names:
        raise ValueError(f"{ds.name}: several labels: {', '.join(names)}; choose with --target")
    site = list(ds.site_targets)
    also = f" (per-site labels: {', '.join(site)}; choose with --target)" if site else ""
    raise ValueError(f"{ds.name}: no graph-level label{also}")
