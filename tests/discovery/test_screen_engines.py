"""The screen on partitions and engines (issue 17, part 4): partitioned stages merge back to the
unpartitioned result, and a 2-worker Dask ``LocalCluster`` (started and closed here; worker
threads, ``processes=False``, because worker processes take tens of seconds to import torch on
the shared test machine) gives the local run's candidates, numbers and ranking, also through
``crystalgnn screen --engine dask --address``. A bad address fails in one line, not a hang.
"""

from __future__ import annotations

import gzip
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Structure
from typer.testing import CliRunner

from crystalgnn.cli import app
from crystalgnn.data.examples import cathode_examples, examples_dir
from crystalgnn.discovery.candidates import Candidate, remove_duplicates
from crystalgnn.discovery.engine import LocalEngine, in_input_order, split
from crystalgnn.discovery.engines import open_engine
from crystalgnn.discovery.screen import run_screen
from crystalgnn.discovery.screen_config import ScreenConfig
from crystalgnn.discovery.screen_report import ScreenResult
from crystalgnn.discovery.screen_tasks import deduplicate, formula_partitions, merge_duplicates

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
NEEDS_DASK = "Dask is an optional extra: pip install 'crystalgnn[distributed]'"
# substitutions of the bundled cathodes and two prototypes: duplicates (LiNiO2, LiMnPO4, ...),
# known structures and several formula groups; formation energy and band gap models
OPTIONS = dict(substitute="Co->Ni,Mn,Fe", prototypes=["layered", "olivine"], metals=["Co", "Ni"])
MODELS = dict(voltage_model=None, metal_model=None, known_references=["mp-36k"])


def screen_config() -> ScreenConfig:
    return ScreenConfig(hosts=[str(examples_dir())], **OPTIONS, **MODELS)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[ScreenResult, Path]:
    out = tmp_path_factory.mktemp("local")
    return run_screen(screen_config(), out, write_report=False), out


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """A 2-worker LocalCluster (threads, 1 each, tcp so that the CLI can be given its address)."""
    distributed = pytest.importorskip("distributed", reason=NEEDS_DASK)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None
    ) as c:
        yield c


def assert_same_screen(a: ScreenResult, a_dir: Path, b: ScreenResult, b_dir: Path) -> None:
    """Same candidates, rejections, ranking; numbers equal to float32 rounding (models compute
    in float32, whose sums depend on how structures are batched).
    """
    assert a.counts == b.counts and a.counts["unique"] < a.counts["generated"]
    for name in ("candidates.jsonl.gz",):
        assert gzip.decompress((a_dir / name).read_bytes()) == gzip.decompress((b_dir / name).read_bytes())
    assert (a_dir / "rejected.csv").read_text() == (b_dir / "rejected.csv").read_text()
    assert list(a.ranked["id"]) == list(b.ranked["id"])
    assert list(a.ranked["rank"]) == list(b.ranked["rank"]) and a.ranked["rank"].notna().sum() > 2
    pd.testing.assert_frame_equal(a.ranked, b.ranked, check_exact=False, rtol=1e-5, atol=1e-5)


def test_split_keeps_order_and_balances() -> None:
    assert split(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split([1, 2], 5) == [[1], [2]] and split([], 4) == []


def test_formula_partitions_keep_groups_whole() -> None:
    cathodes = cathode_examples()
    names = ["LiCoO2", "LiFePO4", "LiCoO2", "LiNiO2", "LiCoO2", "LiFePO4"]
    cands = [Candidate(f"c{i}", cathodes[n], n) for i, n in enumerate(names)]
    bins = formula_partitions(cands, 2)
    assert sorted(i for b in bins for i in b) == list(range(6)) and all(b == sorted(b) for b in bins)
    for b in bins:
        formulas = {cands[i].formula for i in b}
        assert all(cands[j].formula not in formulas for other in bins if other is not b for j in other)
    assert sorted(len(b) for b in bins) == [3, 3]  # the 3 LiCoO2 alone, the rest together
    ids = [[cands[i].id for i in b] for b in bins]  # per-position results of each bin
    assert in_input_order(bins, ids) == [c.id for c in cands]


def test_partitioned_duplicates_equal_the_whole(structures_with_duplicates: list[Candidate]) -> None:
    cands = structures_with_duplicates
    whole_unique, whole_dup = remove_duplicates(cands)
    assert list(whole_dup) == ["LiFePO4-t", "LiCoO2-t", "LiCoO2-2x"]  # by formula's first appearance
    for n in (1, 2, 3):
        bins = formula_partitions(cands, n)
        results = [deduplicate([cands[i] for i in b]) for b in bins]
        unique, dup = merge_duplicates(cands, bins, results)
        assert [c.id for c in unique] == [c.id for c in whole_unique]
        assert list(dup.items()) == list(whole_dup.items())  # same rejected.csv order


@pytest.fixture
def structures_with_duplicates() -> list[Candidate]:
    c = cathode_examples()
    moved: dict[str, Structure] = {}
    for name in ("LiCoO2", "LiFePO4"):
        s = c[name].copy()
        s.translate_sites(list(range(len(s))), [0.1, 0.2, 0.3])
        moved[name] = s
    order = [("LiFePO4", c["LiFePO4"]), ("LiCoO2", c["LiCoO2"]), ("LiNiO2", c["LiNiO2"])]
    order += [("LiCoO2-t", moved["LiCoO2"]), ("LiFePO4-t", moved["LiFePO4"]), ("LiCoO2-2x", c["LiCoO2"] * (2, 1, 1))]
    return [Candidate(i, s, i) for i, s in order]


def test_local_partitions_give_the_unpartitioned_screen(local: tuple[ScreenResult, Path], tmp_path: Path) -> None:
    res = run_screen(screen_config(), tmp_path, write_report=False, engine=LocalEngine(partitions=4))
    assert_same_screen(*local, res, tmp_path)


def test_dask_cluster_gives_the_local_ranking(
    local: tuple[ScreenResult, Path], cluster: object, tmp_path: Path
) -> None:
    with open_engine("dask", cluster.scheduler_address, connect_timeout=10) as engine:  # type: ignore[attr-defined]
        assert engine.workers == 2 and engine.partitions > 2
        res = run_screen(screen_config(), tmp_path, write_report=False, engine=engine)
    assert_same_screen(*local, res, tmp_path)
    # a screen made on the cluster resumes on the local engine (the engine is no stage input)
    again = run_screen(screen_config(), tmp_path, write_report=False)
    assert again.reused == ["candidates", "scores"]
    pd.testing.assert_frame_equal(again.ranked, res.ranked)


def _worker_and_object(part: list[int], shared: object) -> list[tuple[str, int]]:
    from distributed import get_worker

    return [(get_worker().address, id(shared))] * len(part)


def test_shared_objects_reach_each_worker_once(cluster: object) -> None:
    model = {"weights": list(range(1000))}
    with open_engine("dask", cluster.scheduler_address) as engine:  # type: ignore[attr-defined]
        seen = [
            x
            for _ in range(2)
            for part in engine.map(_worker_and_object, split(list(range(40)), 20), model)
            for x in part
        ]
    per_worker: dict[str, set[int]] = {}
    for worker, obj in seen:
        per_worker.setdefault(worker, set()).add(obj)
    assert len(seen) == 80 and 1 <= len(per_worker) <= 2
    # one copy per worker for every task of both maps; a second copy can appear when a task
    # starts before the broadcast has reached its worker (Dask then fetches the data itself)
    assert all(len(objs) <= 2 for objs in per_worker.values()), per_worker


def invoke(*args: object) -> tuple[object, str]:
    r = runner.invoke(app, [str(a) for a in args])
    return r, " ".join(r.output.split())


CLI = ("--substitute", "Co->Ni,Mn,Fe", "--prototypes", "layered,olivine", "--metals", "Co,Ni", "--known", "mp-36k",
       "--voltage-model", "none", "--metal-model", "none")  # fmt: skip


def test_cli_dask_engine_matches_local(local: tuple[ScreenResult, Path], cluster: object, tmp_path: Path) -> None:
    address = cluster.scheduler_address.removeprefix("tcp://")  # type: ignore[attr-defined]
    r, text = invoke("screen", examples_dir(), *CLI, "--engine", "dask", "--address", address, "--out", tmp_path)
    assert r.exit_code == 0, text  # type: ignore[attr-defined]
    ranked = pd.read_csv(tmp_path / "ranked.csv")
    expected = pd.read_csv(local[1] / "scores.csv")
    assert set(ranked["id"]) == set(expected["id"]) and "passing candidates" in text
    assert list(ranked["id"]) == list(local[0].ranked["id"])


def test_dask_missing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    r, text = invoke("screen", examples_dir(), *CLI, "--engine", "dask", "--out", tmp_path)
    assert r.exit_code == 2 and "pip install 'crystalgnn[distributed]'" in text  # type: ignore[attr-defined]
    assert not (tmp_path / "candidates.jsonl.gz").exists()


def test_cli_bad_address_fails_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason=NEEDS_DASK)
    start = time.perf_counter()
    r, text = invoke("screen", examples_dir(), *CLI, "--engine", "dask", "--address", "127.0.0.1:9",
                     "--connect-timeout", "1", "--out", tmp_path / "a")  # fmt: skip
    assert r.exit_code == 2 and "error: cannot reach scheduler at tcp://127.0.0.1:9 within 1 s" in text  # type: ignore[attr-defined]
    assert time.perf_counter() - start < 10 and len(r.output.strip().splitlines()) == 1  # type: ignore[attr-defined]
    r, text = invoke("screen", examples_dir(), *CLI, "--engine", "dask", "--address", "nohost", "--out", tmp_path)
    assert r.exit_code == 2 and "'nohost' is not of the form HOST:PORT" in text  # type: ignore[attr-defined]
    r, text = invoke("screen", examples_dir(), *CLI, "--address", "127.0.0.1:9", "--out", tmp_path)
    assert r.exit_code == 2 and "--address needs --engine dask" in text  # type: ignore[attr-defined]
    r, text = invoke("screen", examples_dir(), *CLI, "--engine", "ray", "--out", tmp_path)
    assert r.exit_code == 2 and "unknown engine 'ray'" in text  # type: ignore[attr-defined]


def test_interrupted_scoring_resumes_from_its_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalgnn.discovery import screen_scoring

    monkeypatch.setattr(screen_scoring, "SCORE_BATCH", 3)
    whole = run_screen(screen_config(), tmp_path / "whole", write_report=False)
    real, calls = screen_scoring.score_candidates, []

    def interrupted(*args, **kwargs):  # the second batch is never finished
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(screen_scoring, "score_candidates", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_screen(screen_config(), tmp_path / "cut", write_report=False)
    assert len(list((tmp_path / "cut" / "scores.partial").glob("*/pairs-*.jsonl.gz"))) == 1
    monkeypatch.setattr(screen_scoring, "score_candidates", real)
    resumed = run_screen(screen_config(), tmp_path / "cut", write_report=False)
    assert resumed.reused == ["candidates", "1 scored batches"] and whole.counts["pairs"] > 6
    assert (tmp_path / "cut" / "scores.csv").read_bytes() == (tmp_path / "whole" / "scores.csv").read_bytes()
    assert not (tmp_path / "cut" / "scores.partial").exists()
    pd.testing.assert_frame_equal(resumed.ranked, whole.ranked)


def test_engine_starts_and_closes_its_own_cluster() -> None:
    pytest.importorskip("distributed", reason=NEEDS_DASK)
    with open_engine("dask", workers=2, processes=False) as engine:
        cluster = engine._cluster  # type: ignore[attr-defined]
        assert engine.workers == 2 and len(engine.client.nthreads()) == 2  # type: ignore[attr-defined]
        assert set(engine.client.nthreads().values()) == {1}  # type: ignore[attr-defined]
        assert engine.map(sum, [[1, 2], [3], [4, 5, 6]]) == [3, 3, 15]
    assert cluster.status.name == "closed" and engine.client.status == "closed"  # type: ignore[attr-defined]


def test_scheduler_without_workers_fails_in_one_line(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed", reason=NEEDS_DASK)
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=None) as empty:
        address = empty.scheduler_address.removeprefix("tcp://")
        r, text = invoke("screen", examples_dir(), *CLI, "--engine", "dask", "--address", address,
                         "--connect-timeout", "1", "--out", tmp_path)  # fmt: skip
    assert r.exit_code == 2 and "has no worker after 1 s" in text  # type: ignore[attr-defined]
