"""Tests for crystalgnn.graphs.atom_features (CGCNN atom feature vectors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from crystalgnn.graphs.atom_features import (
    CGCNN_MAX_Z,
    CGCNN_REFERENCE_EXCEPTIONS,
    CGCNN_SEGMENTS,
    AtomFeaturizer,
    cgcnn_feature_table,
    cgcnn_raw_properties,
)

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "aux" / "cgcnn_atom_init.json"


def _has_mendeleev() -> bool:
    try:
        import mendeleev  # noqa: F401
    except ImportError:
        return False
    return True


needs_mendeleev = pytest.mark.skipif(
    not _has_mendeleev(), reason="mendeleev is not installed (needed to compute CGCNN features)"
)


@pytest.fixture(scope="module")
def reference() -> dict[int, np.ndarray]:
    if not REFERENCE.is_file():
        pytest.skip(f"reference CGCNN atom_init.json not found at {REFERENCE.resolve()}")
    data = json.loads(REFERENCE.read_text())
    return {int(k): np.asarray(v, dtype=np.float32) for k, v in data.items()}


@pytest.fixture(scope="module")
def table() -> dict[int, np.ndarray]:
    if not _has_mendeleev():
        pytest.skip("mendeleev is not installed (needed to compute CGCNN features)")
    return cgcnn_feature_table()


def _small_table() -> dict[int, np.ndarray]:
    return {
        1: np.array([1.0, 0.0, 0.5], dtype=np.float32),
        8: np.array([0.0, 1.0, -2.0], dtype=np.float32),
        26: np.array([0.25, 0.0, 3.0], dtype=np.float32),
    }


# --- layout -------------------------------------------------------------------------------


def test_segments_are_contiguous_and_sum_to_92() -> None:
    assert [s.name for s in CGCNN_SEGMENTS] == [
        "group",
        "period",
        "electronegativity",
        "covalent_radius",
        "valence_electrons",
        "first_ionization_energy",
        "electron_affinity",
        "block",
        "atomic_volume",
    ]
    assert [s.size for s in CGCNN_SEGMENTS] == [19, 7, 10, 10, 12, 10, 10, 4, 10]
    assert CGCNN_SEGMENTS[0].start == 0
    for a, b in zip(CGCNN_SEGMENTS, CGCNN_SEGMENTS[1:], strict=False):
        assert a.stop == b.start
    assert CGCNN_SEGMENTS[-1].stop == 92


def test_bin_edges_use_reference_float_order() -> None:
    en = next(s for s in CGCNN_SEGMENTS if s.name == "electronegativity")
    # Values on a bin edge: (1.9 - 0.5) / 3.5 * 10 = 3.9999... -> bin 3, 2.6 -> bin 6.
    assert en.index(1.9) == 3
    assert en.index(1.2) == 1
    assert en.index(2.6) == 6
    assert en.index(4.0) == 9
    assert en.index(0.4) is None and en.index(None) is None and en.index(float("nan")) is None
    vol = next(s for s in CGCNN_SEGMENTS if s.name == "atomic_volume")
    assert vol.index(np.exp(1.5 + 0.28 * 4.5)) == 4
    assert vol.index(200.0) is None


# --- computed table -----------------------------------------------------------------------


@needs_mendeleev
def test_shape_and_dtype(table: dict[int, np.ndarray]) -> None:
    assert sorted(table) == list(range(1, CGCNN_MAX_Z + 1))
    for z, v in table.items():
        assert v.shape == (92,), z
        assert v.dtype == np.float32
        assert set(np.unique(v)) <= {0.0, 1.0}


@needs_mendeleev
def test_one_hot_structure(table: dict[int, np.ndarray]) -> None:
    props = cgcnn_raw_properties()
    always = {"group", "period", "valence_electrons", "block"}
    for z, v in table.items():
        for seg in CGCNN_SEGMENTS:
            n_set = int(v[seg.start : seg.stop].sum())
            if seg.name in always:
                assert n_set == 1, (z, seg.name)
            else:
                expected = int(seg.index(props[z][seg.name]) is not None)
                assert n_set == expected, (z, seg.name, props[z][seg.name])
    # Most continuous properties exist for most elements: the one-hot check is not vacuous.
    filled = sum(int(v[26:36].sum()) for v in table.values())
    assert filled >= 85


@needs_mendeleev
def test_known_elements(table: dict[int, np.ndarray]) -> None:
    def ones(z: int) -> list[int]:
        return np.nonzero(table[z])[0].tolist()

    # O: group 16, period 2, EN 3.44, r 63 pm, 6 valence e, IE 13.6 eV, EA 1.46 eV, p, 17.4 cm3/mol
    assert ones(8) == [16, 20, 34, 37, 51, 64, 74, 79, 86]
    # Ce: f-series (group slot 0), period 6, 2 valence electrons, f block
    ce = table[58]
    assert ce[0] == 1 and ce[24] == 1 and ce[47] == 1 and ce[81] == 1
    # Lu: group 3, d block
    assert table[71][3] == 1 and table[71][80] == 1


@needs_mendeleev
def test_matches_reference_except_documented(table: dict[int, np.ndarray], reference: dict[int, np.ndarray]) -> None:
    assert sorted(reference) == list(range(1, 101))
    exceptions = set(CGCNN_REFERENCE_EXCEPTIONS)
    assert len(exceptions) <= 20, "exception list must stay small"
    matched = 0
    for z, ref in reference.items():
        ours = table[z]
        if z in exceptions:
            diff = np.nonzero(ours != ref)[0]
            assert diff.size > 0, f"Z={z} is listed as an exception but matches the reference"
            seg = next(s for s in CGCNN_SEGMENTS if s.name == CGCNN_REFERENCE_EXCEPTIONS[z])
            assert all(seg.start <= i < seg.stop for i in diff), (
                f"Z={z} differs outside its documented segment {seg.name}: {diff.tolist()}"
            )
        else:
            np.testing.assert_array_equal(ours, ref, err_msg=f"Z={z}")
            matched += 1
    assert matched == 100 - len(exceptions) >= 80


@needs_mendeleev
def test_cgcnn_featurizer(table: dict[int, np.ndarray]) -> None:
    f = AtomFeaturizer.cgcnn()
    assert f.name == "cgcnn"
    assert f.n_features == 92
    assert f.elements == frozenset(range(1, 101))
    x = f(np.array([8, 26, 8]))
    assert x.shape == (3, 92) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], table[8])
    np.testing.assert_array_equal(x[1], table[26])
    np.testing.assert_array_equal(x[2], table[8])
    # cached build, but the returned table is a copy
    assert AtomFeaturizer.cgcnn().matrix().shape == (101, 92)
    t2 = cgcnn_feature_table()
    t2[8][:] = 5.0
    np.testing.assert_array_equal(cgcnn_feature_table()[8], table[8])


# --- generic featurizer -------------------------------------------------------------------


def test_matrix_and_call() -> None:
    f = AtomFeaturizer(_small_table(), name="small")
    assert f.n_features == 3
    assert f.elements == frozenset({1, 8, 26})
    assert f.supports(8) and not f.supports(2) and not f.supports(0)
    m = f.matrix()
    assert m.shape == (27, 3) and m.dtype == np.float32
    assert np.isnan(m[0]).all() and np.isnan(m[2]).all()
    np.testing.assert_array_equal(m[26], _small_table()[26])
    out = f([26, 1, 1])
    np.testing.assert_array_equal(out, np.stack([m[26], m[1], m[1]]))
    assert f(np.array([], dtype=np.int64)).shape == (0, 3)


def test_unsupported_element_raises_keyerror_naming_it() -> None:
    f = AtomFeaturizer(_small_table())
    with pytest.raises(KeyError, match=r"\bHe\b"):
        f(np.array([1, 2]))
    with pytest.raises(KeyError) as excinfo:
        f(np.array([92, 54, 8, 92]))
    message = str(excinfo.value)
    assert "Xe" in message and "U (Z=92)" in message and "O (" not in message
    with pytest.raises(KeyError, match="Z=0"):
        f(np.array([0]))
    with pytest.raises(KeyError, match="Z=500"):
        f(np.array([500]))


@needs_mendeleev
def test_cgcnn_unsupported_element() -> None:
    with pytest.raises(KeyError, match="Md"):
        AtomFeaturizer.cgcnn()(np.array([8, 101]))


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="same length|expected"):
        AtomFeaturizer({1: np.zeros(3), 2: np.zeros(4)})
    with pytest.raises(ValueError):
        AtomFeaturizer({})
    with pytest.raises(ValueError):
        AtomFeaturizer({"1": np.zeros(3)})  # type: ignore[dict-item]


def test_from_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "atom_init.json"
    path.write_text(json.dumps({str(z): v.tolist() for z, v in _small_table().items()}))
    f = AtomFeaturizer.from_json(path)
    assert f.name == "json:atom_init.json"
    assert f.elements == frozenset({1, 8, 26})
    for z, v in _small_table().items():
        np.testing.assert_array_equal(f([z])[0], v)


def test_from_json_reference(reference: dict[int, np.ndarray]) -> None:
    f = AtomFeaturizer.from_json(REFERENCE)
    assert f.n_features == 92 and f.elements == frozenset(range(1, 101))
    np.testing.assert_array_equal(f([26])[0], reference[26])


@pytest.mark.parametrize(
    "content",
    [
        '{"1": [0, 1], "2": [1, 0, 0]}',  # ragged lengths
        '{"H": [0, 1]}',  # non-integer key
        '{"1.5": [0, 1]}',  # non-integer key
        '{"1": "abc"}',  # not a list
        "[[0, 1]]",  # not an object
        "{not json",
    ],
)
def test_from_json_malformed_raises(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad_atom_init.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="bad_atom_init.json"):
        AtomFeaturizer.from_json(path)


def test_to_dict_from_dict_round_trip() -> None:
    f = AtomFeaturizer(_small_table(), name="small")
    d = f.to_dict()
    d2 = json.loads(json.dumps(d))  # JSON-serialisable
    g = AtomFeaturizer.from_dict(d2)
    assert g.name == "small" and g.n_features == 3 and g.elements == f.elements
    np.testing.assert_array_equal(g.matrix(), f.matrix())  # NaN rows compare equal
    bad = dict(d2, n_features=4)
    with pytest.raises(ValueError):
        AtomFeaturizer.from_dict(bad)


@needs_mendeleev
def test_cgcnn_to_dict_round_trip(table: dict[int, np.ndarray]) -> None:
    f = AtomFeaturizer.cgcnn()
    g = AtomFeaturizer.from_dict(json.loads(json.dumps(f.to_dict())))
    assert g.name == "cgcnn"
    zs = np.arange(1, 101)
    np.testing.assert_array_equal(g(zs), f(zs))


@pytest.fixture
def element_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The element table's cache folder set to ``tmp_path`` (and restored); the in-memory copy dropped."""
    from crystalgnn.graphs import element_properties as ep

    monkeypatch.setattr(ep, "_cache_dir", None)
    monkeypatch.setattr(ep, "_unsaved", None)
    ep.set_cache_dir(tmp_path)
    ep.raw_properties.cache_clear()
    yield tmp_path
    ep.raw_properties.cache_clear()


@needs_mendeleev
def test_raw_properties_kept_on_disk_equal_the_computed_ones(element_cache: Path) -> None:
    """The element table is computed once per installation and read back from the cache folder
    (importing mendeleev costs seconds); what is read back is exactly what was computed."""
    from crystalgnn.graphs import element_properties as ep

    first = ep.raw_properties()  # computes and writes
    files = list((element_cache / "atom_features").glob("cgcnn-raw-v*-mendeleev*-pymatgen*.json"))
    assert len(files) == 1
    ep.raw_properties.cache_clear()
    assert ep.raw_properties() == first == ep._compute_raw_properties()  # read back, then fresh


@needs_mendeleev
@pytest.mark.parametrize("damage", ["empty", "truncated", "not json", "altered value", "element removed", "old format"])
def test_damaged_element_table_is_recomputed_not_used(
    element_cache: Path, damage: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An empty, truncated or altered table on disk fails its checksum (or shape) check: the
    table is computed again (never read from the file), with a warning, and the file replaced."""
    from crystalgnn.graphs import element_properties as ep

    good = ep.raw_properties()
    path = ep._raw_properties_cache_path()
    text = path.read_text()
    doc = json.loads(text)
    if damage == "empty":
        path.write_text("")
    elif damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "not json":
        path.write_text("{not json")
    elif damage == "altered value":  # one number changed, the checksum kept
        doc["elements"]["26"]["electronegativity"] = 2.5
        path.write_text(json.dumps(doc))
    elif damage == "element removed":  # consistent checksum, but not the whole table
        del doc["elements"]["26"]
        doc["sha256"] = ep._digest(doc["elements"])
        path.write_text(json.dumps(doc))
    else:  # the table alone, as version 1 wrote it
        path.write_text(json.dumps(doc["elements"]))
    calls = []
    monkeypatch.setattr(ep, "_compute_raw_properties", lambda: calls.append(1) or good)
    ep.raw_properties.cache_clear()
    with caplog.at_level("WARNING", logger="crystalgnn.graphs.cache"):
        again = ep.raw_properties()
    assert calls == [1] and again == good
    assert again[26]["electronegativity"] != 2.5
    assert "element data cache" in caplog.text and "damaged" in caplog.text
    assert json.loads(path.read_text()) == json.loads(text)  # replaced by the good table
    ep.raw_properties.cache_clear()
    assert ep.raw_properties() == good and calls == [1]  # the replaced file is used


@needs_mendeleev
def test_element_table_follows_the_graph_cache_folder(
    element_cache: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a graph cache makes its folder the element table's (--cache-dir holds every cached
    file); a table computed before any folder was named is written there, and nowhere else."""
    from crystalgnn.graphs import element_properties as ep
    from crystalgnn.graphs.cache import GraphCache

    good = ep.raw_properties()
    monkeypatch.setattr(ep, "_compute_raw_properties", lambda: good)
    default_home = tmp_path_factory.mktemp("home")
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: default_home))
    monkeypatch.delenv("CRYSTALGNN_CACHE_DIR")
    ep.set_cache_dir(None)
    ep.raw_properties.cache_clear()
    assert ep.raw_properties() == good  # no folder named yet: kept in memory
    chosen = tmp_path_factory.mktemp("chosen")
    cache = GraphCache(chosen / "graphs.lmdb")
    cache.close()
    assert ep._raw_properties_cache_path().parent == chosen / "atom_features"
    assert len(list((chosen / "atom_features").glob("*.json"))) == 1
    assert not any(default_home.rglob("*.json"))
    ep._write_unsaved()  # what runs at exit: nothing left to write
    assert not any(default_home.rglob("*.json"))
