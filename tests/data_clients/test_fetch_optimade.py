"""OPTIMADE providers through optimade's OptimadeClient against local servers with recorded
entries: two providers into one data set with consistent units, pagination, unit conversions
(NOMAD joules, JARVIS -99999), a malformed entry, a 429, a provider that is down, the cache."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from fetch_servers import paths, serve_optimade
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Response

from crystalgnn.cli import app
from crystalgnn.data.clients import FetchResult, RetryPolicy, fetch_optimade, write_rows
from crystalgnn.data.clients.vocabulary import PROVIDERS, UNITS, markdown_table
from crystalgnn.data.readers import load_source

FAST = RetryPolicy(total=2, backoff=0.0)
FILTER = 'elements HAS "O"'


def fetch(server: HTTPServer, tmp_path: Path, *providers: str, **kw: object) -> FetchResult:
    kw = {"endpoints": [server.url_for("/{provider}").replace("%7B", "{").replace("%7D", "}")],
          "cache_root": tmp_path / "cache", "retry": FAST, "show_progress": False, **kw}  # fmt: skip
    return fetch_optimade(list(providers), FILTER, **kw)  # type: ignore[arg-type]


def test_the_cli_reads_endpoints_from_the_environment(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_optimade(httpserver, "oqmd", "jarvis")
    monkeypatch.setenv("CRYSTALGNN_OPTIMADE_ENDPOINT", f"http://127.0.0.1:{httpserver.port}/{{provider}}")
    out = tmp_path / "li.jsonl.gz"
    r = CliRunner().invoke(app, ["data", "fetch", "optimade", "-p", "oqmd", "-p", "jarvis", "--filter", FILTER,
                                 "-f", "band_gap", "-o", str(out), "--cache-dir", str(tmp_path), "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "wrote 9 rows" in r.output and "labels: band_gap (eV)" in r.output
    ds = load_source(out, show_progress=False)
    assert list(ds.targets) == ["band_gap"] and ds.units == {"band_gap": "eV"}


def test_two_providers_become_one_data_set_with_consistent_units(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_optimade(httpserver, "oqmd", "jarvis")
    res = fetch(httpserver, tmp_path, "oqmd", "jarvis")
    assert not res.failures
    # pagination: 6 OQMD entries in pages of 2, 4 JARVIS entries in pages of 2
    assert paths(httpserver).count("/oqmd/v1/structures") == 3 and paths(httpserver).count("/jarvis/v1/structures") == 2
    assert res.requests == {"oqmd": 3, "jarvis": 2}
    # the malformed OQMD entry is named and skipped, the rest kept
    assert [(s.database, s.id) for s in res.skipped] == [("oqmd", "1999")]
    assert "no structure" in res.skipped[0].reason
    out = tmp_path / "two.jsonl.gz"
    write_rows(out, res.rows)
    ds = load_source(out, show_progress=False)
    assert len(ds) == 9 and ds.ids[0] == "oqmd:1000" and ds.ids[-1] == "jarvis:JVASP-4"
    assert ds.units["formation_energy_per_atom"] == "eV/atom" and ds.units["band_gap"] == "eV"
    assert ds.units["e_above_hull"] == "eV/atom"
    fe = ds.targets["formation_energy_per_atom"]
    assert math.isclose(fe[0], -1.5) and math.isclose(fe[5], -1.1)  # OQMD _oqmd_delta_e, JARVIS per-atom
    gap = ds.targets["band_gap"]
    assert math.isnan(gap[6]) and math.isclose(gap[7], 0.8)  # JARVIS -99999 -> missing
    assert np.isnan(ds.targets["band_gap_mbj"][5:]).all()
    assert math.isnan(ds.targets["bulk_modulus_voigt"][5])  # "na" -> missing
    prov = ds.metadata[0]["provenance"]
    assert prov["database"] == "OQMD" and prov["id"] == "1000" and prov["database_version"] == "9.9"
    assert prov["query"] == {"filter": FILTER} and prov["fields"]["e_above_hull"] == "_oqmd_stability"


def test_nomad_joules_become_electronvolts(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_optimade(httpserver, "nomad", "alexandria")
    res = fetch(httpserver, tmp_path, "nomad", "alexandria")
    gaps = {r["id"]: r["band_gap"] for r in res.rows}
    assert math.isclose(gaps["nomad:nmd-0"], 1.2)  # [1.5 eV, 1.2 eV] in J per spin channel: the smaller
    assert math.isclose(gaps["nomad:nmd-1"], 2.0) and gaps["alexandria:agm0"] == 1.0
    assert math.isclose(res.rows[0]["volume"], 64.0) and res.rows[0]["units"]["volume"] == "Å^3"


def test_a_provider_that_is_down_loses_nothing_of_the_others(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_optimade(httpserver, "oqmd")
    httpserver.expect_request("/jarvis/v1/structures").respond_with_response(Response("down", status=503))
    t0 = time.monotonic()
    res = fetch(httpserver, tmp_path, "jarvis", "oqmd")
    assert time.monotonic() - t0 < 30
    assert list(res.failures) == ["jarvis"] and "/jarvis" in res.failures["jarvis"]
    assert len(res.rows) == 5 and all(r["id"].startswith("oqmd:") for r in res.rows)
    assert paths(httpserver).count("/jarvis/v1/structures") == 3  # the first try and 2 retries
    # the CLI writes what it has and names the failed provider
    out = tmp_path / "o.jsonl.gz"
    r = CliRunner().invoke(app, ["data", "fetch", "optimade", "-p", "jarvis,oqmd", "--filter", FILTER, "-o", str(out),
                                 "--endpoint", f"oqmd={httpserver.url_for('/oqmd')}", "--endpoint",
                                 f"jarvis={httpserver.url_for('/jarvis')}", "--cache-dir", str(tmp_path / "c"),
                                 "--retries", "1", "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "jarvis failed" in r.output and "wrote 5 rows" in r.output and "1999" in r.output


def test_a_429_is_retried_after_the_wait_it_asks_for(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_optimade(httpserver, "oqmd")
    httpserver.expect_oneshot_request("/oqmd/v1/structures").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "1"})
    )
    t0 = time.monotonic()
    res = fetch(httpserver, tmp_path, "oqmd")
    assert time.monotonic() - t0 >= 0.9 and len(res.rows) == 5 and not res.failures


def test_the_cache_answers_a_repeated_fetch_and_resumes_a_broken_one(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_optimade(httpserver, "oqmd")
    first = fetch(httpserver, tmp_path, "oqmd")
    n = len(httpserver.log)
    second = fetch(httpserver, tmp_path, "oqmd")
    assert len(httpserver.log) == n and second.from_cache["oqmd"] and second.requests["oqmd"] == 0
    assert [r["id"] for r in second.rows] == [r["id"] for r in first.rows]
    # a provider that breaks after its first page keeps it; the next fetch starts at page 2
    httpserver.clear()
    calls = {"n": 0}
    from fetch_servers import fixture, optimade_route

    route = optimade_route(fixture("optimade_oqmd.json"))

    def flaky(req):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return Response("down", status=500) if calls["n"] == 2 else route(req)

    httpserver.expect_request("/oqmd/v1/structures").respond_with_handler(flaky)
    broken = fetch(httpserver, tmp_path, "oqmd", refresh=True, retry=RetryPolicy(total=0, backoff=0.0))
    assert "oqmd" in broken.failures and len(broken.rows) == 2
    resumed = fetch(httpserver, tmp_path, "oqmd")
    assert len(resumed.rows) == 5 and not resumed.failures and resumed.requests["oqmd"] == 2
    assert "page_offset=2" in httpserver.log[-2][0].url


def test_arguments_are_checked_before_any_request(httpserver: HTTPServer, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["data", "fetch", "optimade", "-o", str(tmp_path / "x.jsonl.gz")]
    r = runner.invoke(app, [*base, "-p", "oqmd", "--filter", "elements HAS O AND"])
    assert r.exit_code == 2 and "not an OPTIMADE filter" in r.output
    r = runner.invoke(app, [*base, "-p", "aflow", "--filter", FILTER])
    assert r.exit_code == 2 and "unknown provider" in r.output
    r = runner.invoke(app, [*base, "-p", "oqmd", "--filter", FILTER, "-f", "bulk_modulus_voigt"])
    assert r.exit_code == 2 and "none of oqmd serves it" in r.output
    r = runner.invoke(
        app, ["data", "fetch", "optimade", "-o", str(tmp_path / "x.csv"), "-p", "oqmd", "--filter", FILTER]
    )
    assert r.exit_code == 2 and ".jsonl.gz" in r.output
    r = runner.invoke(app, ["data", "fetch", "mp", "-o", str(tmp_path / "x.jsonl.gz"), "--range", "band_gap=1"])
    assert r.exit_code == 2 and "NAME=MIN:MAX" in r.output
    r = runner.invoke(app, ["data", "fetch", "mp", "-o", str(tmp_path / "x.jsonl.gz")])
    assert r.exit_code == 2 and "at least one criterion" in r.output
    assert paths(httpserver) == []


def test_every_field_converts_into_the_unit_of_its_name_and_the_docs_show_the_table() -> None:
    for p in PROVIDERS.values():
        for f in p.fields:
            assert f.name in UNITS and f.source.startswith(f"_{'nmd' if p.name == 'nomad' else p.name}_")
    docs = (Path(__file__).resolve().parents[2] / "docs" / "data_clients.md").read_text()
    assert markdown_table() in docs, "docs/data_clients.md: paste markdown_table() again"
