"""Tests for crystalgnn.graphs.cache: the LMDB graph cache."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystalgnn.graphs.batching import collate_graphs
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.cache import CachedGraphs, GraphCache, default_cache_dir, pack_graph, structure_key, unpack_graph
from crystalgnn.graphs.columns import GraphColumns, pack_records, unpack_records
from crystalgnn.graphs.crystal_graph import GraphConfig, arrays_to_data, build_graph_arrays, structure_arrays
from tinydata import MP_ELASTIC, read_rows, small_structures, structures_of

FIELDS = ("z", "pos", "lattice", "edge_index", "edge_shift", "edge_vec", "edge_dist")


@pytest.fixture(scope="module")
def items(structures_module: dict[str, Structure]) -> list[Structure]:
    isolated = Structure(Lattice.cubic(30.0), ["Na"], [[0, 0, 0]])
    return [*structures_of(read_rows(MP_ELASTIC, 5)), *structures_module.values(), isolated]


@pytest.fixture(scope="module")
def structures_module() -> dict[str, Structure]:
    return small_structures()


def assert_graphs_equal(a, b) -> None:
    for f in FIELDS:
        ta, tb = a[f], b[f]
        assert ta.dtype == tb.dtype, f
        assert ta.shape == tb.shape, f
        assert np.array_equal(ta.numpy(), tb.numpy()), f
    assert a.num_nodes == b.num_nodes


def test_cache_returns_fresh_graphs_and_second_build_is_cached(tmp_path, items) -> None:
    cfg = GraphConfig()
    fresh, rep0 = build_graph_list(items, cfg, cache=None, n_jobs=1)
    assert rep0.n_from_cache == 0 and len(rep0.rejected) == 1

    cache = GraphCache(tmp_path / "graphs.lmdb")
    first, rep1 = build_graph_list(items, cfg, cache=cache, n_jobs=1)
    n_ok = len(items) - 1
    assert rep1.n_from_cache == 0 and rep1.n_built == n_ok
    assert len(cache) == n_ok  # rejected structures are not stored
    second, rep2 = build_graph_list(items, cfg, cache=cache, n_jobs=1)
    assert rep2.n_from_cache == n_ok and rep2.n_built == 0
    assert rep2.rejected == rep1.rejected == rep0.rejected
    for a, b, c in zip(fresh, first, second, strict=True):
        if a is None:
            assert b is None and c is None
            continue
        assert_graphs_equal(a, b)
        assert_graphs_equal(a, c)
    # a reopened cache (another process) sees the same entries
    cache.close()
    again = GraphCache(tmp_path / "graphs.lmdb")
    third, rep3 = build_graph_list(items, cfg, cache=again, n_jobs=1)
    assert rep3.n_from_cache == n_ok
    assert_graphs_equal(third[0], fresh[0])
    assert again.nbytes() > 0
    assert "entries=" in repr(again)
    again.close()


def test_other_config_is_built_not_read(tmp_path, items) -> None:
    cache = GraphCache(tmp_path / "graphs.lmdb")
    build_graph_list(items, GraphConfig(), cache=cache, n_jobs=1)
    cfg = GraphConfig(radius=6.0, max_neighbors=None)
    graphs, rep = build_graph_list(items, cfg, cache=cache, n_jobs=1)
    assert rep.n_from_cache == 0
    fresh, _ = build_graph_list(items, cfg, n_jobs=1)
    for a, b in zip(graphs, fresh, strict=True):
        if a is not None:
            assert_graphs_equal(a, b)
    cache.close()


def test_keys_depend_on_config_and_content(items) -> None:
    lat, cart, z = structure_arrays(items[0])
    configs = [
        GraphConfig(),
        GraphConfig(radius=6.0),
        GraphConfig(max_neighbors=8),
        GraphConfig(max_neighbors=None),
        GraphConfig(pad_to_max_neighbors=True),
        GraphConfig(min_distance=0.4),
    ]
    keys = [structure_key(lat, cart, z, c) for c in configs]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == 32 for k in keys)
    # the back end does not change the graph, so not the key either
    assert structure_key(lat, cart, z, GraphConfig(backend="ase")) == keys[0]
    # nor does the dtype of the inputs; but any change of content does
    assert structure_key(lat.astype(np.float64), cart.tolist(), z.astype(np.int32), GraphConfig()) == keys[0]
    moved = cart.copy()
    moved[0, 0] += 1e-6
    assert structure_key(lat, moved, z, GraphConfig()) != keys[0]
    other_z = z.copy()
    other_z[0] += 1
    assert structure_key(lat, cart, other_z, GraphConfig()) != keys[0]
    assert structure_key(lat * 1.001, cart, z, GraphConfig()) != keys[0]


def test_pack_unpack_round_trip(items) -> None:
    for s in items[:-1]:
        for cfg in (GraphConfig(), GraphConfig(radius=4.0, pad_to_max_neighbors=True)):
            arrays = build_graph_arrays(*structure_arrays(s), cfg)
            buf = pack_graph(arrays)
            back = unpack_graph(buf)
            assert set(back) == set(arrays)
            for f in FIELDS:
                assert back[f].shape == arrays[f].shape, f
                assert back[f].dtype == arrays[f].dtype, f
                assert np.array_equal(back[f], arrays[f]), f
            # also from a memoryview (how LMDB hands out buffers)
            assert np.array_equal(unpack_graph(memoryview(buf))["edge_index"], arrays["edge_index"])
            n, e = len(arrays["z"]), arrays["edge_index"].shape[1]
            assert len(buf) == 4 * (2 + 3 * n + 9 + 3 * e + e + 2 * e + 3 * e + n + 1)  # 4-byte words, CRC last
            assert int.from_bytes(buf[-4:], "little") == zlib.crc32(buf[:-4])


def test_many_records_unpack_together_and_become_data(items) -> None:
    """Records of graphs of different sizes (one with padding) unpack in one call to the same
    arrays as one by one, and to Data objects equal to the freshly built ones."""
    built = [
        build_graph_arrays(*structure_arrays(s), cfg)
        for s in items[:-1]
        for cfg in (GraphConfig(), GraphConfig(radius=4.0, pad_to_max_neighbors=True))
    ]
    columns = GraphColumns.from_arrays(built)
    records = pack_records(columns)
    assert records == [pack_graph(a) for a in built]
    back = unpack_records(records)
    assert np.array_equal(back.n_nodes, [len(a["z"]) for a in built])
    for k, arrays in enumerate(built):
        one = back.graph(k)
        for f in FIELDS:
            assert one[f].shape == arrays[f].shape, f
            assert np.array_equal(one[f], arrays[f]), f
    for data, arrays in zip(back.to_data(), built, strict=True):
        fresh = arrays_to_data(arrays)
        assert data.num_nodes == fresh.num_nodes
        for f in FIELDS:
            assert data[f].dtype == fresh[f].dtype, f
            assert torch.equal(data[f], fresh[f]), f
    with pytest.raises(ValueError, match="damaged"):
        unpack_records([records[0][:-4]])


def test_cached_graphs_read_on_demand(tmp_path, items) -> None:
    """CachedGraphs holds keys only; indexing and batch fetches read the same graphs the builder
    returned, with targets and positions attached; a missing graph is named."""
    cfg = GraphConfig()
    ok = items[:-1]  # the isolated atom is rejected
    cache = GraphCache(tmp_path / "c")
    fresh, _ = build_graph_list(ok, cfg, cache=cache, n_jobs=1)
    raw = [structure_arrays(s) for s in ok]
    y = np.arange(len(ok), dtype=np.float32)[:, None] * 0.5
    lazy = CachedGraphs.from_arrays(raw, cfg, cache, y=y)
    assert len(lazy) == len(ok) and not hasattr(lazy, "graphs")
    assert_graphs_equal(lazy[2], fresh[2])
    assert float(lazy[2].y) == 1.0 and int(lazy[2].idx) == 2
    batch = lazy.__getitems__([3, 0, -1])
    for g, k in zip(batch, [3, 0, len(ok) - 1], strict=True):
        assert_graphs_equal(g, fresh[k])
        assert int(g.idx) == k
    sub = lazy.subset([4, 1])
    assert len(sub) == 2 and int(sub[0].idx) == 4 and float(sub[1].y) == 0.5
    assert_graphs_equal(sub[0], fresh[4])
    with pytest.raises(KeyError, match="not in the cache"):
        CachedGraphs.from_arrays([structure_arrays(items[-1])], cfg, cache)
    # a batch built from the records' columns equals collating the graphs one by one
    order = [4, 0, 2, 1]
    direct, collated = lazy.batch(order), collate_graphs(lazy.__getitems__(order))
    assert list(direct.keys()) == list(collated.keys())
    for k in collated.keys():
        a, b = direct[k], collated[k]
        assert torch.equal(a, b) if isinstance(b, torch.Tensor) else a == b, k
    for k in ("_slice_dict", "_inc_dict"):
        a, b = getattr(direct, k), getattr(collated, k)
        assert a.keys() == b.keys() and all(torch.equal(a[f], b[f]) for f in a), k
    assert direct.num_graphs == 4 and direct.num_nodes == collated.num_nodes
    for g, k in zip(direct.to_data_list(), order, strict=True):
        assert_graphs_equal(g, fresh[k])


def test_default_cache_dir_from_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CRYSTALGNN_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    cache = GraphCache()
    assert cache.path == tmp_path / "c" / "graphs.lmdb"
    assert cache.path.is_dir()
    cache.close()
