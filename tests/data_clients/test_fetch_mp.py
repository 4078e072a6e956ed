"""The Materials Project client (mp-api's MPRester) against a local server with recorded
documents: pagination, 429 + Retry-After, a malformed record, the API key, the cache, resuming,
and an insertion-electrode set that ``crystalgnn train`` accepts."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import pytest
from fetch_servers import KEY, paths, serve_mp
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Response

from crystalgnn.cli import app
from crystalgnn.data.clients import FetchError, MissingAPIKeyError, MPQuery, RetryPolicy, fetch_mp, write_rows
from crystalgnn.data.readers import load_source

FAST = RetryPolicy(total=3, backoff=0.0)


@pytest.fixture
def mp(httpserver: HTTPServer) -> HTTPServer:
    serve_mp(httpserver)
    return httpserver


def summary(mp: HTTPServer, tmp_path: Path, **kw: object) -> object:
    kw = {"api_key": KEY, "endpoint": mp.url_for("/"), "cache_root": tmp_path / "cache", "retry": FAST,
          "show_progress": False, **kw}  # fmt: skip
    return fetch_mp(MPQuery(elements=["O"]), page_size=3, ids_per_request=2, **kw)  # type: ignore[arg-type]


def test_summary_paginates_converts_and_names_the_malformed_record(mp: HTTPServer, tmp_path: Path) -> None:
    res = summary(mp, tmp_path)
    ids = [r["id"] for r in res.rows]
    assert ids == [f"mp-{100 + k}" for k in range(6)]
    assert [(s.id, s.reason.split(" (")[0]) for s in res.skipped] == [("mp-999", "unreadable structure")]
    # the id search was paginated by mp-api (_skip), the documents fetched in chunks of 2 ids
    searches = [req.args for req, _ in mp.log if req.path == "/materials/summary/"]
    assert [a.get("_skip") for a in searches if a.get("_fields") == "material_id"] == [None, "3", "6"]
    assert sum("material_ids" in a for a in searches) == 4
    row = res.rows[1]
    assert row["bulk_modulus_vrh"] == 146.0 and row["is_metal"] == 0.0 and row["e_above_hull"] == 0.01
    assert row["units"]["bulk_modulus_vrh"] == "GPa" and row["units"]["e_above_hull"] == "eV/atom"
    prov = row["provenance"]
    assert prov["database"] == "Materials Project" and prov["database_version"] == "2025_09_25"
    assert (
        prov["id"] == "mp-101"
        and prov["query"]["elements"] == ["O"]
        and prov["fields"]["e_above_hull"] == "energy_above_hull"
    )
    out = tmp_path / "mp.jsonl.gz"
    write_rows(out, res.rows)
    ds = load_source(out, show_progress=False)
    assert len(ds) == 6 and ds.units["band_gap"] == "eV" and ds.units["formation_energy_per_atom"] == "eV/atom"
    assert ds.metadata[0]["provenance"]["database"] == "Materials Project"


def test_a_429_with_retry_after_is_waited_for_then_the_fetch_goes_on(mp: HTTPServer, tmp_path: Path) -> None:
    mp.expect_oneshot_request("/materials/summary/").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "1"})
    )
    t0 = time.monotonic()
    res = summary(mp, tmp_path)
    assert time.monotonic() - t0 >= 0.9  # Retry-After honoured
    assert len(res.rows) == 6
    assert [resp.status_code for _, resp in mp.log].count(429) == 1


def test_a_missing_key_is_a_clear_error_and_a_key_is_never_printed(
    mp: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pymatgen.core import SETTINGS

    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.delitem(SETTINGS, "PMG_MAPI_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="MP_API_KEY"):
        summary(mp, tmp_path, api_key=None)
    assert paths(mp) == []  # nothing sent without a key
    runner = CliRunner()
    out = tmp_path / "x.jsonl.gz"
    r = runner.invoke(app, ["data", "fetch", "mp", "-e", "O", "--endpoint", mp.url_for("/"), "-o", str(out),
                            "--cache-dir", str(tmp_path / "c")])  # fmt: skip
    assert r.exit_code == 1 and "no Materials Project API key" in r.output and "MP_API_KEY" in r.output
    # with the key (from the environment): used as a header, never printed nor logged
    monkeypatch.setenv("MP_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    r = runner.invoke(app, ["data", "fetch", "mp", "-e", "O", "--endpoint", mp.url_for("/"), "-o", str(out),
                            "--cache-dir", str(tmp_path / "c"), "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "wrote 6 rows" in r.output and "mp-999" in r.output
    assert KEY not in r.output and KEY not in caplog.text
    assert all(KEY not in p.read_bytes().decode("latin-1") for p in (tmp_path / "c").rglob("*") if p.is_file())


def test_a_server_that_is_down_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match=f"127.0.0.1:{port}/: cannot connect"):
        fetch_mp(MPQuery(elements=["O"]), api_key=KEY, endpoint=f"http://127.0.0.1:{port}/", cache_root=tmp_path,
                 retry=FAST, show_progress=False)  # fmt: skip


def test_a_repeated_fetch_reads_the_cache_without_touching_the_server(mp: HTTPServer, tmp_path: Path) -> None:
    first = summary(mp, tmp_path)
    n = len(mp.log)
    assert n > 0 and not first.from_cache["mp"]
    second = summary(mp, tmp_path, api_key=None)  # no key needed either
    assert len(mp.log) == n and second.from_cache["mp"] and second.requests["mp"] == 0
    assert [r["id"] for r in second.rows] == [r["id"] for r in first.rows]


def test_an_interrupted_fetch_keeps_its_pages_and_resumes(mp: HTTPServer, tmp_path: Path) -> None:
    mp.clear()
    broken = {"on": True}
    from fetch_servers import fixture, mp_route

    route = mp_route(fixture("mp_summary.json"), "material_id", "material_ids")

    def flaky(req):  # type: ignore[no-untyped-def]
        if broken["on"] and "mp-102" in req.args.get("material_ids", ""):
            return Response("down", status=500)
        return route(req)

    mp.expect_request("/heartbeat").respond_with_json({"db_version": "v1", "version": "0.87.3",
                                                        "access_controlled_batch_ids": []})  # fmt: skip
    mp.expect_request("/materials/summary/").respond_with_handler(flaky)
    with pytest.raises(FetchError, match="run the same command again to resume"):
        summary(mp, tmp_path)
    broken["on"] = False
    before = len(mp.log)
    res = summary(mp, tmp_path)
    again = [req.args.get("material_ids") for req, _ in mp.log[before:] if req.path == "/materials/summary/"]
    assert again == ["mp-102,mp-103", "mp-104,mp-105", "mp-999"]  # the first chunk came from the cache
    assert len(res.rows) == 6


def test_thermo_documents_get_their_structures_from_the_summary_route(mp: HTTPServer, tmp_path: Path) -> None:
    res = fetch_mp(MPQuery(kind="thermo", chemsys=["Mn-O", "Fe-O", "Co-O"], fields=["formation_energy_per_atom"]),
                   api_key=KEY, endpoint=mp.url_for("/"), cache_root=tmp_path, retry=FAST, show_progress=False)  # fmt: skip
    assert [r["id"] for r in res.rows][:2] == ["mp-100_GGA_GGA+U", "mp-100_R2SCAN"] and len(res.rows) == 6
    assert res.rows[1]["formation_energy_per_atom"] == -1.05 and "e_above_hull" not in res.rows[1]
    assert res.rows[0]["structure"]["sites"][0]["species"][0]["element"] == "Mn"
    assert "mp-100" in (mp.log[-1][0].args.get("material_ids") or "")  # structures: one summary request


def test_electrodes_become_a_set_that_train_accepts(
    mp: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MP_API_KEY", KEY)
    monkeypatch.setenv("CRYSTALGNN_MP_ENDPOINT", mp.url_for("/"))
    out = tmp_path / "li.jsonl.gz"
    runner = CliRunner()
    r = runner.invoke(app, ["data", "fetch", "mp", "--kind", "electrodes", "--working-ion", "Li", "-o", str(out),
                            "--cache-dir", str(tmp_path / "c"), "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "wrote 10 rows" in r.output
    ds = load_source(out, show_progress=False, targets=["average_voltage"])
    assert len(ds) == 10 and ds.units["average_voltage"] == "V" and ds.units["capacity_grav"] == "mAh/g"
    assert all("Li" in s.composition for s in ds.structures)  # discharged end member by default
    charged = load_source(out, show_progress=False, end_member="charged")
    assert len(charged) == 9 and not any("Li" in s.composition for s in charged.structures)
    assert [x.id for x in charged.rejections] == ["mp-203_Li"]
    assert math.isclose(float(ds.targets["average_voltage"][3]), 2.6)
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", str(out), "--target", "average_voltage", "--epochs", "1", "--batch-size", "4",
                            "-o", str(run), "-m", "atom_fea_len=8", "-m", "n_conv=1", "-j", "1", "--threads", "1",
                            "--split", "0.6,0.2,0.2", "--no-progress"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (run / "metrics.json").is_file()
