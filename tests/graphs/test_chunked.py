"""Tests for reading a table in chunks and building its graphs into the cache chunk by chunk
(the path of ``crystalgnn train --graphs-on-disk`` for table sources)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crystalgnn.data.chunked import iter_source_chunks
from crystalgnn.data.readers import load_source
from crystalgnn.graphs.builder import build_chunked_graphs, build_dataset_graphs
from crystalgnn.graphs.cache import GraphCache
from crystalgnn.graphs.crystal_graph import GraphConfig
from tinydata import OVERLAP_CIF, perovskite_rows, write_jsonl

FIELDS = ("z", "pos", "lattice", "edge_index", "edge_shift", "edge_vec", "edge_dist")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """40 perovskites with, spread over several chunks of 16 rows: a NaN label, an unparsable CIF,
    overlapping atoms (rejected by the graph builder) and a duplicate of an earlier chunk's id."""
    rows = perovskite_rows(40)
    rows[5] = {**rows[5], "heat_all": float("nan")}
    rows[20] = {**rows[20], "cif": "data_x\nnot a cif\n"}
    rows.insert(27, {"id": "overlap", "cif": OVERLAP_CIF, "heat_all": 1.0})
    rows.append({**rows[3], "heat_all": 9.9})  # same id as row 3, in the last chunk
    path = tmp_path_factory.mktemp("chunked") / "table.jsonl"
    write_jsonl(path, rows)
    return path


def test_chunked_graphs_equal_one_pass(table, tmp_path) -> None:
    opts = {"n_jobs": 1, "show_progress": False}
    whole = load_source(str(table), targets=["heat_all"], **opts)
    graphs, _ = build_dataset_graphs(whole, GraphConfig(), **opts)
    chunks = iter_source_chunks(str(table), targets=["heat_all"], chunk_size=16, **opts)
    ds, on_disk, report = build_chunked_graphs(chunks, GraphConfig(), cache=GraphCache(tmp_path / "c"), **opts)
    # the same entries, labels and rejections (reason per id) as reading everything at once
    assert ds.ids == whole.ids and len(ds) == 38
    np.testing.assert_array_equal(ds.targets["heat_all"], whole.targets["heat_all"])
    reasons = {r.id: r.reason for r in ds.rejections}
    assert reasons == {r.id: r.reason for r in whole.rejections}
    rows = perovskite_rows(40)
    assert set(reasons) == {rows[5]["id"], rows[20]["id"], "overlap", rows[3]["id"]}
    assert "NaN" in reasons[rows[5]["id"]] and "duplicate" in reasons[rows[3]["id"]]
    assert "overlapping" in reasons["overlap"]
    # structures are gone; graphs come back from the cache equal to the in-memory ones
    assert all(s is None for s in ds.structures)
    assert report.n_built == 38 and report.n_total == 39 and len(report.rejected) == 1
    for k in (0, 17, 37):
        for f in FIELDS:
            assert torch.equal(on_disk[k][f], graphs[k][f]), (k, f)


def test_only_table_sources_are_chunked(tmp_path) -> None:
    assert iter_source_chunks(str(tmp_path)) is None  # a folder
    (tmp_path / "x.cif").write_text("data_x\n")
    assert iter_source_chunks(str(tmp_path / "x.cif")) is None
    assert iter_source_chunks("perovskites") is not None
