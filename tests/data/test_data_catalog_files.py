"""A path to a catalog file keeps the labels and units of its short name, wherever it lies."""

from __future__ import annotations

import os
import shutil

from crystalgnn.data.catalog import CATALOG, catalog_key_for_file
from crystalgnn.data.chunked import iter_source_chunks
from crystalgnn.data.readers import load_source

KW = {"show_progress": False, "n_jobs": 1}


def test_catalog_key_for_file():
    assert catalog_key_for_file("/somewhere/castelli_perovskites_cdvae.jsonl.gz") == "perovskites"
    assert catalog_key_for_file("../shared/data/mp_crysxpp_36k.jsonl.gz") == "mp-36k"
    assert catalog_key_for_file("my_table.jsonl.gz") is None


def test_absolute_and_relative_paths_keep_the_units(shared_data, monkeypatch, tmp_path):
    by_name = load_source("perovskites", subset=15, **KW)
    path = shared_data / CATALOG["perovskites"].file
    by_path = load_source(str(path), subset=15, **KW)
    assert by_path.units == by_name.units == CATALOG["perovskites"].units
    assert by_path.ids == by_name.ids and set(by_path.targets) == set(by_name.targets)
    # relative to the working directory (``../shared/data/...`` from the repository)
    monkeypatch.chdir(tmp_path)
    rel = os.path.relpath(path)
    assert rel.startswith("..")
    assert load_source(rel, subset=15, **KW).units == by_name.units


def test_a_copy_elsewhere_and_the_chunked_reader_keep_the_units(shared_data, tmp_path):
    src = shared_data / CATALOG["mp-elastic-api"].file
    copy = tmp_path / src.name
    shutil.copy(src, copy)
    ds = load_source(copy, subset=30, **KW)
    assert ds.units["bulk_modulus_vrh"] == "GPa" and ds.units["energy_per_atom"] == "eV/atom"
    assert "moduli_ok" not in ds.targets  # the row filter applies, as for the short name
    assert all(r.reason.startswith("row filter") for r in ds.rejections)
    first = next(iter_source_chunks(copy, chunk_size=10, **KW))
    assert first.units == ds.units and first.name == "mp-elastic-api"
