"""The graph cache under damage: altered records, truncated or junk database files, a limited
address space. Each time the next build serves only correct graphs (equal to freshly built ones),
says what it rebuilt, and never crashes.

A truncated LMDB file kills a process that maps it with SIGBUS, so the damaged databases are
opened in a subprocess (with a timeout). That process also runs under a 4 GiB address-space
limit, where the 64 GiB map of earlier versions cannot be reserved.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure

from crystalgnn.graphs import lmdb_store
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.cache import CachedGraphs, GraphCache, GraphCacheError
from crystalgnn.graphs.crystal_graph import GraphConfig, structure_arrays
from crystalgnn.graphs.lmdb_store import MIN_MAP_SIZE, lmdb_file_problem
from tinydata import MP_ELASTIC, read_rows, small_structures, structures_of

FIELDS = ("z", "pos", "lattice", "edge_index", "edge_shift", "edge_vec", "edge_dist")
PAGE = 4096


@pytest.fixture(scope="module")
def items() -> list[Structure]:
    return [*structures_of(read_rows(MP_ELASTIC, 12)), *small_structures().values()]


@pytest.fixture(scope="module")
def fresh(items: list[Structure]) -> list:
    graphs, _ = build_graph_list(items, GraphConfig(), cache=None, n_jobs=1)
    return graphs


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory, items: list[Structure]) -> Path:
    """A cache folder holding every graph of ``items`` (closed; copy it before damaging it)."""
    folder = tmp_path_factory.mktemp("filled") / "graphs.lmdb"
    cache = GraphCache(folder)
    build_graph_list(items, GraphConfig(), cache=cache, n_jobs=1)
    cache.close()
    return folder


def copy_of(filled: Path, tmp_path: Path) -> Path:
    target = tmp_path / "graphs.lmdb"
    shutil.copytree(filled, target)
    return target


def same_graphs(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        x.num_nodes == y.num_nodes and all(np.array_equal(x[f].numpy(), y[f].numpy()) for f in FIELDS)
        for x, y in zip(a, b, strict=True)
    )


def flip_inside_record(folder: Path, record: bytes) -> None:
    """Change one byte in the middle of ``record``'s value, in place in the data file."""
    path = folder / "data.mdb"
    data = bytearray(path.read_bytes())
    at = data.find(record[: len(record) // 2 + 16])
    assert at >= 0 and data.find(record[: len(record) // 2 + 16], at + 1) < 0
    data[at + len(record) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def test_flipped_byte_in_a_record_is_rebuilt_and_counted(
    filled: Path, tmp_path: Path, items: list[Structure], fresh: list, caplog: pytest.LogCaptureFixture
) -> None:
    folder = copy_of(filled, tmp_path)
    cache = GraphCache(folder)
    keys = build_graph_list(items, GraphConfig(), cache=cache, n_jobs=1)[1].keys
    victim = cache.get_many([keys[3]])[0]
    assert victim is not None
    cache.close()
    flip_inside_record(folder, victim)
    cache = GraphCache(folder)
    assert cache.missing(keys) == [3] and cache.n_damaged == 1
    with caplog.at_level("WARNING", logger="crystalgnn.graphs.cache"):
        graphs, report = build_graph_list(items, GraphConfig(), cache=cache, n_jobs=1)
    assert same_graphs(graphs, fresh)
    assert report.n_built == 1 and report.n_from_cache == len(items) - 1
    assert cache.n_damaged == 2  # missing() and the build each met it once
    assert "1 damaged record(s) failed their checksum; building them again" in caplog.text
    assert str(folder) in caplog.text
    _, again = build_graph_list(items, GraphConfig(), cache=cache, n_jobs=1)  # rewritten: intact now
    assert again.n_from_cache == len(items) and cache.n_damaged == 2
    cache.close()


def test_cached_graphs_name_the_cache_of_a_damaged_record(filled: Path, tmp_path: Path, items: list[Structure]) -> None:
    """Graphs on disk have no structures to rebuild from: a damaged record is a one-line error
    naming the cache and what to do, never a wrong graph."""
    folder = copy_of(filled, tmp_path)
    cache = GraphCache(folder)
    lazy = CachedGraphs.from_arrays([structure_arrays(s) for s in items], GraphConfig(), cache)
    record = cache.get_many([lazy.keys[2]])[0]
    assert record is not None
    cache.close()
    flip_inside_record(folder, record)
    cache = GraphCache(folder)
    lazy = CachedGraphs(cache, lazy.keys)
    assert lazy[1].num_nodes == len(items[1])
    for read in (lambda: lazy[2], lambda: lazy.batch([0, 2]), lambda: lazy.__getitems__([2])):
        with pytest.raises(
            GraphCacheError, match=r"graph cache .*graphs.lmdb: 1 damaged record\(s\).*run the command again"
        ):
            read()
    with pytest.raises(KeyError, match="not in the cache"):
        CachedGraphs.from_arrays([structure_arrays(s) for s in items], GraphConfig(), cache)
    cache.close()


def junk(path: Path, pages: range | list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    with path.open("r+b") as f:
        for p in pages:
            f.seek(p * PAGE)
            f.write(rng.integers(0, 256, PAGE, dtype=np.uint8).tobytes())


def test_file_check_reads_the_header_without_mapping(filled: Path, tmp_path: Path) -> None:
    """The meta-page check finds truncated and foreign files with plain file I/O."""
    assert lmdb_file_problem(filled) is None
    assert lmdb_file_problem(tmp_path / "absent") is None
    folder = copy_of(filled, tmp_path)
    data = folder / "data.mdb"
    size = data.stat().st_size
    assert size > 4 * PAGE
    os.truncate(data, size // 2)
    assert "truncated" in (lmdb_file_problem(folder) or "")
    os.truncate(data, 100)
    assert "no valid LMDB header" in (lmdb_file_problem(folder) or "")
    data.write_bytes(b"x" * (3 * PAGE))
    assert "no valid LMDB header" in (lmdb_file_problem(folder) or "")
    data.write_bytes(b"")
    assert lmdb_file_problem(folder) is None  # LMDB starts an empty file afresh


#: run in a fresh process under a 4 GiB address-space limit: checks each damaged cache folder
#: (a build must give the fresh graphs) and builds and reads a new cache
_PROBE = textwrap.dedent(
    """
    import json, pickle, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    import lmdb
    import numpy as np
    from crystalgnn.graphs.builder import build_graph_list
    from crystalgnn.graphs.cache import CachedGraphs, GraphCache
    from crystalgnn.graphs.crystal_graph import GraphConfig, structure_arrays

    items, fresh, folders, new = pickle.load(open(sys.argv[1], "rb"))
    fields = ("z", "pos", "lattice", "edge_index", "edge_shift", "edge_vec", "edge_dist")

    def same(graphs):
        return all(
            all(np.array_equal(g[f].numpy(), ref[f]) for f in fields) for g, ref in zip(graphs, fresh, strict=True)
        )

    out = {}
    try:
        lmdb.open(new + "-64g", map_size=1 << 36)
        out["64 GiB map"] = "reserved"
    except lmdb.Error as exc:
        out["64 GiB map"] = type(exc).__name__
    for name, folder in folders.items():
        cache = GraphCache(folder)
        graphs, rep = build_graph_list(items, GraphConfig(), cache=cache, n_jobs=1)
        _, again = build_graph_list(items, GraphConfig(), cache=cache, n_jobs=1)
        out[name] = {
            "same": same(graphs), "built": rep.n_built, "from_cache": again.n_from_cache,
            "moved": [str(p) for p in cache.moved_aside], "damaged": cache.n_damaged,
        }
        cache.close()
    cache = GraphCache(new)
    graphs, rep = build_graph_list(items, GraphConfig(), cache=cache, n_jobs=1)
    lazy = CachedGraphs.from_arrays([structure_arrays(s) for s in items], GraphConfig(), cache)
    out["new"] = {
        "same": same(graphs) and same(lazy.batch(list(range(len(lazy)))).to_data_list()),
        "map_size": cache._env.info()["map_size"],
    }
    print(json.dumps(out))
    """
)


def test_damaged_databases_are_moved_aside_and_rebuilt_under_limited_address_space(
    filled: Path, tmp_path: Path, items: list[Structure], fresh: list
) -> None:
    size = (filled / "data.mdb").stat().st_size
    n_pages = size // PAGE
    damage = {
        "truncated to half": lambda d: os.truncate(d, size // 2),
        "truncated to one page": lambda d: os.truncate(d, PAGE),
        "junk meta pages": lambda d: junk(d, [0, 1], 1),
        "junk data pages": lambda d: junk(d, range(2, n_pages), 2),
        "junk last page": lambda d: junk(d, [n_pages - 1], 3),
    }
    folders = {}
    for k, (name, hurt) in enumerate(damage.items()):
        folder = copy_of(filled, tmp_path / str(k))
        hurt(folder / "data.mdb")
        folders[name] = str(folder)
    (tmp_path / "new").mkdir()
    job = tmp_path / "job.pkl"
    refs = [{f: g[f].numpy() for f in FIELDS} for g in fresh]
    job.write_bytes(pickle.dumps((items, refs, folders, str(tmp_path / "new" / "graphs.lmdb"))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*sys.path])}
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, str(job)], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["64 GiB map"] == "MemoryError"  # what every cached command hit before
    assert out["new"] == {"same": True, "map_size": MIN_MAP_SIZE}
    warnings = [line for line in run.stderr.splitlines() if "is unreadable" in line]
    for name, folder in folders.items():
        got = out[name]
        assert got["same"], name
        assert got["from_cache"] == len(items), name  # the rebuilt cache serves every graph
        if got["moved"]:  # the database was moved aside and replaced: everything rebuilt
            assert got["built"] == len(items), name
            assert len(got["moved"]) == 1 and got["moved"][0].startswith(folder + ".corrupt-"), name
            assert Path(got["moved"][0], "data.mdb").is_file()
            assert any(folder + " is unreadable" in w for w in warnings), name
        else:  # junk inside values only: those records failed their checksum and were rebuilt
            assert got["built"] == got["damaged"] > 0, name
    for name in ("truncated to half", "truncated to one page", "junk meta pages", "junk data pages"):
        assert out[name]["moved"], name
    assert sum(1 for line in run.stderr.splitlines() if "warning:" in line) == len(warnings) + sum(
        1 for name in folders if not out[name]["moved"]
    )  # one line each


def test_map_starts_small_and_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new cache maps 64 MiB; writes that do not fit grow the map first (or, should the
    estimate fall short, retry after doubling on MapFullError)."""
    cache = GraphCache(tmp_path / "a")
    assert cache._env.info()["map_size"] == MIN_MAP_SIZE
    cache.close()
    small = GraphCache(tmp_path / "b", map_size=1 << 18)
    rng = np.random.default_rng(0)
    items = [(k.to_bytes(32, "big"), rng.bytes(3000)) for k in range(1000)]  # a page each
    small.put_many(items[:100])
    assert small._env.info()["map_size"] > 1 << 18
    monkeypatch.setattr(lmdb_store.SharedEnv, "_reserve", lambda self, n: None)
    before = small._env.info()["map_size"]
    small.put_many(items[100:])
    assert small._env.info()["map_size"] >= 2 * before
    with small._env.begin() as txn:
        assert all(txn.get(k) == v for k, v in items)
    small.close()
    reopened = GraphCache(tmp_path / "b")  # the file's size + 64 MiB
    assert reopened._env.info()["map_size"] >= MIN_MAP_SIZE + (tmp_path / "b" / "data.mdb").stat().st_size
    reopened.close()


def test_unreadable_database_found_while_reading_is_replaced(
    filled: Path, tmp_path: Path, items: list[Structure], fresh: list, caplog: pytest.LogCaptureFixture
) -> None:
    """LMDB errors met after opening (a leaf page overwritten) move the database aside too,
    for every cache of the folder in this process."""
    folder = copy_of(filled, tmp_path)
    data = folder / "data.mdb"
    buf = data.read_bytes()
    leaves = [
        p for p in range(2, len(buf) // PAGE) if int.from_bytes(buf[p * PAGE + 10 : p * PAGE + 12], "little") == 2
    ]
    assert leaves
    junk(data, leaves, 4)
    assert lmdb_file_problem(folder) is None  # the header is intact
    cache, other = GraphCache(folder), GraphCache(folder)
    with caplog.at_level("WARNING", logger="crystalgnn.graphs.cache"):
        graphs, report = build_graph_list(items, GraphConfig(), cache=cache, n_jobs=1)
    assert same_graphs(graphs, fresh)
    assert report.n_built == len(items) and len(cache.moved_aside) == 1 == len(other.moved_aside)
    assert "is unreadable" in caplog.text and "moved to" in caplog.text
    assert len(other) == len(items)  # the shared environment was replaced for both
    cache.close()
