"""Handlers that answer like the Materials Project API and OPTIMADE servers, from the JSON
fixtures in ``fixtures/`` (made by ``fixtures/make_fixtures.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: a made-up key of MP's length (32 characters); tests check it is never printed or logged
KEY = "TESTKEY0123456789abcdefSECRETxyz"
assert len(KEY) == 32


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


def mp_route(
    docs: list[dict[str, Any]],
    pk: str,
    id_param: str,
    by_id_only: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> Callable[[Request], Response]:
    """An mp-api route: ``<id_param>=a,b`` picks documents (also from ``by_id_only``), other
    searches return ``docs``; ``_fields`` projects them, ``_skip``/``_limit`` paginate with
    ``meta.total_doc``."""

    def handle(req: Request) -> Response:
        a = req.args
        assert req.headers.get("x-api-key") == KEY, "the client sends the key as a header"
        ds = docs
        if id_param in a:
            wanted = set(a[id_param].split(","))
            ds = [d for d in [*docs, *by_id_only] if str(d[pk]) in wanted]
        if "_fields" in a:
            keep = a["_fields"].split(",")
            ds = [{k: d[k] for k in keep if k in d} for d in ds]
        skip, limit = int(a.get("_skip", 0)), int(a.get("_limit", 1000))
        return _json({"data": ds[skip : skip + limit], "meta": {"total_doc": len(ds)}})

    return handle


def serve_mp(server: HTTPServer) -> None:
    """/heartbeat, /materials/summary/ (the summary fixture and the electrodes' structures) and
    /materials/insertion_electrodes/."""
    electrodes = fixture("mp_electrodes.json")
    end_members = [{"material_id": k, "structure": s} for k, s in electrodes["structures"].items()]
    server.expect_request("/heartbeat").respond_with_json(
        {"db_version": "2025_09_25", "version": "0.87.3", "access_controlled_batch_ids": []}
    )
    server.expect_request("/materials/summary/").respond_with_handler(
        mp_route(fixture("mp_summary.json"), "material_id", "material_ids", end_members)
    )
    server.expect_request("/materials/thermo/").respond_with_handler(
        mp_route(fixture("mp_thermo.json"), "material_id", "material_ids")
    )
    server.expect_request("/materials/insertion_electrodes/").respond_with_handler(
        mp_route(electrodes["electrodes"], "battery_id", "battery_ids")
    )


def optimade_route(entries: list[dict[str, Any]], page_size: int = 2) -> Callable[[Request], Response]:
    """An OPTIMADE ``structures`` endpoint paginated by ``page_offset`` with ``links.next``."""

    def handle(req: Request) -> Response:
        a = req.args
        size = int(a.get("page_limit", page_size))
        offset = int(a.get("page_offset", 0))
        fields = a.get("response_fields")
        data = []
        for e in entries[offset : offset + size]:
            attrs = (
                e["attributes"] if not fields else {k: v for k, v in e["attributes"].items() if k in fields.split(",")}
            )
            data.append({**e, "attributes": attrs})
        nxt = None
        if offset + size < len(entries):
            nxt = req.base_url + "?" + urlencode({**a.to_dict(), "page_offset": offset + size, "page_limit": size})
        meta = {"api_version": "1.1.0", "data_returned": len(entries), "data_available": len(entries) + 10,
                "more_data_available": nxt is not None, "time_stamp": "2026-01-01T00:00:00Z",
                "implementation": {"name": "recorded", "version": "9.9"}}  # fmt: skip
        return _json({"data": data, "meta": meta, "links": {"next": nxt}})

    return handle


def serve_optimade(server: HTTPServer, *providers: str, page_size: int = 2) -> None:
    """``/<provider>/v1/structures`` for each provider, from ``fixtures/optimade_<provider>.json``."""
    for p in providers:
        server.expect_request(f"/{p}/v1/structures").respond_with_handler(
            optimade_route(fixture(f"optimade_{p}.json"), page_size)
        )


def paths(server: HTTPServer) -> list[str]:
    """The paths of the requests the server received, in order."""
    return [req.path for req, _ in server.log]
