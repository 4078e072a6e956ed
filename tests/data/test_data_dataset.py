"""CrystalDataset bookkeeping and derived targets."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalgnn.data.dataset import CrystalDataset, finite_or_nan
from crystalgnn.data.readers import load_source
from crystalgnn.data.targets import ensure_targets


def toy(n: int = 4) -> CrystalDataset:
    structs = [
        Structure(
            Lattice.cubic(3.0 + k),
            ["Cs", "Cl"] + ["Cl"] * k,
            [[0, 0, 0], [0.5, 0.5, 0.5]] + [[0.1 * j + 0.2, 0, 0] for j in range(k)],
        )
        for k in range(n)
    ]
    return CrystalDataset(
        ids=[f"e{k}" for k in range(n)],
        structures=structs,
        targets={"e": [-2.0 * (k + 1) for k in range(n)], "k": [10.0, 0.0, -5.0, 100.0][:n]},
        units={"e": "eV/cell", "k": "GPa", "m": "μB"},
        site_targets={"m": [np.linspace(-1, 1, len(s)) for s in structs]},
        metadata=[{"source": "toy", "k": k} for k in range(n)],
        name="toy",
    )


def test_construction_checks_lengths():
    s = toy(2)
    with pytest.raises(ValueError, match="structures"):
        CrystalDataset(ids=["a"], structures=[])
    with pytest.raises(ValueError, match="target 'y'"):
        CrystalDataset(ids=["a"], structures=s.structures[:1], targets={"y": [1.0, 2.0]})
    with pytest.raises(ValueError, match="site target 'm'"):
        CrystalDataset(ids=["a"], structures=s.structures[:1], site_targets={"m": []})
    assert CrystalDataset(ids=["a"], structures=s.structures[:1]).metadata == [{}]


def test_subset_and_index_of():
    ds = toy()
    sub = ds.subset([3, 1])
    assert sub.ids == ["e3", "e1"] and len(sub) == 2
    np.testing.assert_allclose(sub.targets["e"], [-8.0, -4.0])
    assert len(sub.site_targets["m"][0]) == len(sub.structures[0]) == 5
    assert [m["k"] for m in sub.metadata] == [3, 1]
    assert sub.units == ds.units and sub.name == "toy"
    assert ds.index_of(["e2", "e0"]) == [2, 0]
    with pytest.raises(KeyError, match="nope"):
        ds.index_of(["e1", "nope"])


def test_drop_with_one_reason_per_index_in_given_order():
    ds = toy()
    ds.drop([3, 0], ["why three", "why zero"])
    assert ds.ids == ["e1", "e2"]
    assert {r.id: r.reason for r in ds.rejections} == {"e3": "why three", "e0": "why zero"}
    assert all(r.source == "toy" for r in ds.rejections)
    ds.drop([], "nothing")
    assert len(ds.rejections) == 2


def test_per_atom_log10_and_abs_targets():
    ds = toy()
    ensure_targets(ds, ["e_per_atom", "log10_k", "abs_e", "abs_m"])
    np.testing.assert_allclose(ds.targets["e_per_atom"], [-2.0 / 2, -4.0 / 3, -6.0 / 4, -8.0 / 5])
    assert ds.units["e_per_atom"] == "eV/atom"
    np.testing.assert_allclose(ds.targets["log10_k"][[0, 3]], [1.0, 2.0])
    assert np.isnan(ds.targets["log10_k"][1]) and np.isnan(ds.targets["log10_k"][2])
    assert ds.units["log10_k"] == "log10(GPa)"
    np.testing.assert_allclose(ds.targets["abs_e"], -ds.targets["e"])
    for a, m in zip(ds.site_targets["abs_m"], ds.site_targets["m"], strict=True):
        np.testing.assert_allclose(a, np.abs(m))
    assert ds.units["abs_m"] == "μB"
    load_source(ds, targets=["log10_k"])
    assert ds.ids == ["e0", "e3"]
    assert {r.id for r in ds.rejections} == {"e1", "e2"}


def test_unknown_derived_target_names_the_available_ones():
    with pytest.raises(KeyError, match=r"available.*'e'.*'k'.*'m'"):
        ensure_targets(toy(), ["log10_q"])


def test_per_site_missing_values_when_requested():
    """A NaN site is an unlabelled site (kept); no labelled site, inf, or None is rejected."""
    ds = toy(4)
    m = ds.site_targets["m"]
    m[0] = np.full(len(ds.structures[0]), np.nan)
    m[1] = None
    m[2] = m[2].copy()
    m[2][1] = np.inf
    m[3] = m[3].copy()
    m[3][0] = np.nan
    ds.require_targets(["m"])
    assert ds.ids == ["e3"]
    assert np.isnan(ds.site_targets["m"][0][0]) and np.isfinite(ds.site_targets["m"][0][1:]).all()
    why = {r.id: r.reason for r in ds.rejections}
    assert why == {
        "e0": "per-site label 'm' is missing on every site",
        "e1": "per-site label 'm' is missing or not one value per site",
        "e2": "per-site label 'm' has infinite values",
    }


def test_summary_counts_and_units():
    ds = toy()
    ds.targets["e"][0] = np.nan
    s = ds.summary()
    assert s["entries"] == 4 and s["sites_min"] == 2 and s["sites_max"] == 5 and s["sites_total"] == 14
    assert s["elements"] == {"Cs": 4, "Cl": 4}
    assert s["labels"]["e"]["count"] == 3 and s["labels"]["e"]["missing"] == 1
    assert s["labels"]["e"]["unit"] == "eV/cell"
    assert s["labels"]["m (per site)"]["count"] == 14
    assert "toy" in repr(ds) and "entries=4" in repr(ds)


@pytest.mark.parametrize(
    ("cell", "value"),
    [("1.5", 1.5), (" -2e-3 ", -2e-3), ("True", 1.0), ("false", 0.0), (True, 1.0), (3, 3.0)],
)
def test_finite_or_nan_values(cell, value):
    assert finite_or_nan(cell) == value


@pytest.mark.parametrize("cell", [None, "", "abc", "nan", [1, 2], {}])
def test_finite_or_nan_missing(cell):
    assert np.isnan(finite_or_nan(cell))
