"""Short dataset names load the real files in ../shared/data with the README's targets and units."""

from __future__ import annotations

import gzip
import itertools
import json
import warnings

import numpy as np
import pytest
from pymatgen.core import Structure

from crystalgnn.data import catalog
from crystalgnn.data.catalog import ALIASES, CATALOG, catalog_names, catalog_path, is_catalog_name, load_catalog
from crystalgnn.data.dataset import DataError
from crystalgnn.data.readers import load_source

KW = {"show_progress": False, "n_jobs": 1}
N = 60


def raw_rows(path, n: int) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in itertools.islice(f, n)]


def pmg(text: str) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_str(text, fmt="cif")


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_catalog_name_loads_with_its_labels_and_units(shared_data, name):
    entry = CATALOG[name]
    assert catalog_path(name) == shared_data / entry.file
    ds = load_catalog(name, max_rows=N, **KW)
    rows = raw_rows(shared_data / entry.file, N)
    # every row is either kept or rejected with a reason
    assert len(ds) + len(ds.rejections) == N
    assert len(ds) > 0
    assert len(set(ds.ids)) == len(ds.ids)
    assert set(ds.ids) <= {str(r["id"]) for r in rows}
    # every label column named in the catalog exists in the file (no typos) and has its unit
    labels = set(entry.units) | set(entry.site_units)
    assert set(ds.targets) | set(ds.site_targets) == labels
    assert set(entry.site_units) == set(ds.site_targets)
    assert ds.units == {**entry.units, **entry.site_units}
    # the labels are the file's values, in the file's row order
    by_id = {str(r["id"]): r for r in rows}
    for k in entry.units:
        expected = [np.nan if by_id[i][k] is None else float(by_id[i][k]) for i in ds.ids]
        np.testing.assert_allclose(ds.targets[k], expected, err_msg=k)
    for s, i in zip(ds.structures, ds.ids, strict=True):
        assert s.is_ordered and len(s) > 0
        if "nsites" in by_id[i]:
            assert len(s) == by_id[i]["nsites"]


def test_catalog_names_aliases_and_missing_data(monkeypatch):
    assert catalog_names() == list(CATALOG)
    for alias, target in ALIASES.items():
        assert is_catalog_name(alias) and target in CATALOG
    assert not is_catalog_name("perovskites.jsonl")
    monkeypatch.setattr(catalog, "shared_data_dir", lambda: None)
    with pytest.raises(DataError, match="CRYSTALGNN_DATA_DIR"):
        catalog_path("perovskites")


@pytest.mark.parametrize(("name", "rows"), [("wbm", 972), ("computed-entries", 473)])
def test_small_files_load_completely(shared_data, name, rows):
    ds = load_source(name, **KW)
    assert len(ds) == rows and ds.rejections == []


def test_perovskites_units_and_per_atom_target(shared_data):
    ds = load_catalog("perovskites", max_rows=200, **KW)
    assert ds.name == "perovskites"
    assert ds.units["heat_all"] == "eV/cell" and ds.units["dir_gap"] == "eV"
    assert all(len(s) == 5 for s in ds.structures)
    load_source(ds, targets=["heat_all_per_atom"], **KW)
    assert ds.units["heat_all_per_atom"] == "eV/atom"
    np.testing.assert_allclose(ds.targets["heat_all_per_atom"], ds.targets["heat_all"] / 5)
    assert ds.targets["heat_all"].min() > -0.5 and ds.targets["heat_all"].max() < 5.0


def test_alias_loads_the_same_file(shared_data):
    ds = load_catalog("castelli", max_rows=10, **KW)
    assert ds.name == "perovskites" and len(ds) == 10
    assert ds.ids == load_catalog("perovskites", max_rows=10, **KW).ids


def test_mp_elastic_log10_moduli(shared_data):
    ds = load_catalog("mp-elastic", max_rows=150, **KW)
    assert ds.units["bulk_modulus_vrh"] == "GPa"
    load_source(ds, targets=["log10_bulk_modulus_vrh", "log10_shear_modulus_vrh"], **KW)
    assert ds.units["log10_bulk_modulus_vrh"] == "log10(GPa)"
    np.testing.assert_allclose(10 ** ds.targets["log10_bulk_modulus_vrh"], ds.targets["bulk_modulus_vrh"])
    assert np.all(ds.targets["bulk_modulus_vrh"] > 0)


def test_log10_of_non_positive_values_is_rejected(shared_data):
    ds = load_catalog("mp-elastic-api", max_rows=300, **KW)
    ds.targets["homogeneous_poisson"][:3] = [-0.1, 0.0, 0.3]
    n = len(ds)
    load_source(ds, targets=["log10_homogeneous_poisson"], **KW)
    assert len(ds) <= n - 2
    assert sum("log10_homogeneous_poisson" in r.reason for r in ds.rejections) >= 2


def test_mp_elastic_api_row_filter_is_recorded(shared_data):
    rows = raw_rows(shared_data / CATALOG["mp-elastic-api"].file, 400)
    ds = load_catalog("mp-elastic-api", max_rows=400, **KW)
    bad = {r["id"] for r in rows if r["moduli_ok"] is not True}
    assert bad, "the first 400 rows should include some without usable moduli"
    assert {r.id for r in ds.rejections} == bad
    assert all(r.reason == "row filter: moduli_ok is not true" for r in ds.rejections)
    k = ds.targets["bulk_modulus_vrh"]
    assert np.all((k > 0) & (k < 1000))


def test_electrodes_end_members(shared_data):
    rows = raw_rows(shared_data / CATALOG["electrodes"].file, 12)
    dis = load_catalog("electrodes", max_rows=12, **KW)
    ch = load_catalog("electrodes", end_member="charged", max_rows=12, **KW)
    assert dis.name == "electrodes[discharged]" and ch.name == "electrodes[charged]"
    assert dis.ids == ch.ids == [r["id"] for r in rows]
    assert dis.units["average_voltage"] == "V" and dis.units["capacity_grav"] == "mAh/g"
    np.testing.assert_allclose(dis.targets["average_voltage"], [r["average_voltage"] for r in rows])
    n_differ = 0
    for k, r in enumerate(rows):
        d, c = pmg(r["cif_discharged"]), pmg(r["cif_charged"])
        assert dis.structures[k].composition == d.composition
        assert ch.structures[k].composition == c.composition
        assert len(dis.structures[k]) == r["nsites_discharged"] and len(ch.structures[k]) == r["nsites_charged"]
        ion = r["working_ion"]
        # the discharged end member is the ion-rich one
        assert dis.structures[k].composition.get_atomic_fraction(ion) >= ch.structures[
            k
        ].composition.get_atomic_fraction(ion)
        n_differ += d.composition != c.composition
    assert n_differ == len(rows)
    with pytest.raises(ValueError, match="end_member"):
        load_catalog("electrodes", end_member="both", max_rows=2, **KW)


def test_electrodes_via_load_source_default_is_discharged(shared_data, monkeypatch):
    calls = {}
    real = catalog.load_catalog

    def spy(name, **kw):
        calls.update(kw, name=name)
        return real(name, max_rows=5, **kw)

    monkeypatch.setattr(catalog, "load_catalog", spy)
    ds = load_source("electrode", **KW)
    assert calls["name"] == "electrode" and calls["end_member"] == "discharged"
    assert ds.name == "electrodes[discharged]" and len(ds) == 5
    ds = load_source("electrodes", end_member="charged", **KW)
    assert ds.name == "electrodes[charged]"


def test_battery_legacy_rows_without_structures_are_rejected(shared_data):
    rows = raw_rows(shared_data / CATALOG["battery-legacy"].file, 200)
    ds = load_catalog("battery-legacy", max_rows=200, **KW)
    missing = {r["id"] for r in rows if not r.get("cif_discharged")}
    assert missing and {r.id for r in ds.rejections} == missing
    assert all("missing structure" in r.reason for r in ds.rejections)


def test_site_magmoms_aligned_with_sites(shared_data):
    ds = load_catalog("magmoms", max_rows=80, **KW)
    assert ds.units["magmom"] == "μB"
    rows = {r["id"]: r for r in raw_rows(shared_data / CATALOG["site-magmoms"].file, 80)}
    load_source(ds, targets=["abs_magmom"], **KW)
    for i, s, m, am in zip(
        ds.ids, ds.structures, ds.site_targets["magmom"], ds.site_targets["abs_magmom"], strict=True
    ):
        assert m.shape == (len(s),)
        # each site of the stored structure dict carries its own moment: same order
        np.testing.assert_allclose(m, [site.properties["magmom"] for site in s])
        ref = Structure.from_dict(rows[i]["structure"])
        assert [x.species_string for x in s] == [x.species_string for x in ref]
        np.testing.assert_allclose(am, np.abs(m))
        np.testing.assert_allclose(am.sum(), rows[i]["abs_magmom_sum"], atol=1e-3)
    assert ds.units["abs_magmom"] == "μB"


def test_qmof_per_site_charges(shared_data):
    ds = load_catalog("qmof", max_rows=30, **KW)
    assert ds.units["band_gap_pbe"] == "eV" and ds.units["pbe_ddec_charge"] == "e"
    for s, q, m in zip(ds.structures, ds.site_targets["pbe_ddec_charge"], ds.site_targets["pbe_magmom"], strict=True):
        assert q.shape == m.shape == (len(s),)
        assert abs(q.sum()) < 0.1 * len(s)  # partial charges of a neutral cell nearly cancel
    s = ds.summary()
    assert s["labels"]["pbe_ddec_charge (per site)"]["count"] == sum(len(x) for x in ds.structures)
    assert s["labels"]["band_gap_pbe"]["unit"] == "eV"


def test_mp36k_slice_via_catalog_path_and_read_table(shared_data):
    from crystalgnn.data.readers import iter_table_rows, read_table

    path = catalog_path("mp-36k")
    rows = list(itertools.islice(iter_table_rows(path), 120))
    entry = CATALOG["mp-36k"]
    ds = read_table(path, rows=rows, label_columns=list(entry.units), units=entry.units, **KW)
    assert len(ds) == 120
    assert ds.units["formation_energy_per_atom"] == "eV/atom"
    np.testing.assert_array_equal(ds.targets["is_metal"], [float(r["band_gap"] <= 0) for r in rows])
    np.testing.assert_allclose([s.volume for s in ds.structures], ds.targets["volume"], rtol=1e-6)
