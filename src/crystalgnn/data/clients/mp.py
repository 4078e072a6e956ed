"""The Materials Project through its official client, ``mp-api`` (``MPRester``).

:func:`fetch_mp` queries one route (``summary``, ``thermo`` or ``insertion_electrodes``) by
elements, chemical systems, formulas, ids and property ranges, and returns rows with the
fields of :mod:`~crystalgnn.data.clients.vocabulary` converted and the structures attached:

1. the ids that match the query (one paginated search for the primary key only; given ids are
   used as they are);
2. the documents, in chunks of ``ids_per_request`` ids (MP refuses very long id lists), each
   chunk a cached page: an interrupted fetch resumes at the first chunk it does not have;
3. for ``thermo`` and ``electrodes``, the structures from the summary route (both end members
   of an electrode: ``id_discharge`` -> ``structure``, ``id_charge`` -> ``structure_charged``).

The API key comes from ``api_key``, ``MP_API_KEY`` or pymatgen's settings (``PMG_MAPI_KEY`` in
``~/.config/.pmgrc.yaml``), in that order; it is sent as a header and never printed, logged or
cached (the cache is keyed by the query without it). A query already complete in the cache is
read without a key and without touching the network.

``mp-api`` is the optional extra ``clients`` (it brings pyarrow, deltalake and boto3): it is
imported only here, inside :func:`fetch_mp`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crystalgnn.data.clients.cache import QueryCache
from crystalgnn.data.clients.session import FetchError, FetchResult, MissingAPIKeyError, RetryPolicy, retrying_session
from crystalgnn.data.clients.vocabulary import MP_KINDS, FieldMap, select_fields
from crystalgnn.data.clients.writer import make_row, now, skip
from crystalgnn.progress import progress

#: environment variable naming an MP-compatible endpoint (a mirror, a local test server)
ENDPOINT_ENV = "CRYSTALGNN_MP_ENDPOINT"
DEFAULT_ENDPOINT = "https://api.materialsproject.org/"
MISSING_KEY = (
    "no Materials Project API key: pass --api-key, set the MP_API_KEY environment variable, or set "
    "PMG_MAPI_KEY in pymatgen's settings (~/.config/.pmgrc.yaml); get a key at "
    "https://materialsproject.org/api"
)
MISSING_CLIENT = "the Materials Project client needs mp-api: pip install 'crystalgnn[clients]'"

#: the search argument taking a list of primary keys, per kind
ID_PARAM = {"summary": "material_ids", "thermo": "material_ids", "electrodes": "battery_ids"}
#: criteria each route's search takes (ranges are checked against its signature)
CRITERIA = {
    "summary": ("elements", "exclude_elements", "chemsys", "formula"),
    "thermo": ("chemsys", "formula"),
    "electrodes": ("elements", "exclude_elements", "formula", "working_ion"),
}
#: the fields that give a document's id (an electrode's battery_id is computed from its
#: material_ids and working ion, as emmet does: ``<lowest material id>_<ion>``)
ID_FIELDS = {"summary": ["material_id"], "thermo": ["material_id"], "electrodes": ["material_ids", "working_ion"]}
#: fields read besides the mapped ones
EXTRA_FIELDS = {
    "summary": ["structure", "formula_pretty"],
    "thermo": ["material_id", "thermo_type", "formula_pretty"],
    "electrodes": ["id_charge", "id_discharge", "working_ion", "battery_formula"],
}
ROUTE = {"summary": "summary", "thermo": "thermo", "electrodes": "insertion_electrodes"}


@dataclass
class MPQuery:
    """What to fetch from the Materials Project (see ``crystalgnn data fetch mp --help``)."""

    kind: str = "summary"
    elements: list[str] | None = None
    exclude_elements: list[str] | None = None
    chemsys: list[str] | None = None
    formula: list[str] | None = None
    ids: list[str] | None = None
    working_ion: str | None = None
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    fields: list[str] | None = None
    limit: int | None = None

    def validate(self) -> tuple[FieldMap, ...]:
        """The field maps to read; ValueError for a query that cannot be sent."""
        if self.kind not in MP_KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; one of {', '.join(MP_KINDS)}")
        for name in ("elements", "exclude_elements", "chemsys", "formula", "working_ion"):
            if getattr(self, name) and name not in CRITERIA[self.kind]:
                raise ValueError(f"--{name.replace('_', '-')} is not a criterion of the {self.kind} route")
        if not (self.ids or self.ranges or any(getattr(self, c) for c in CRITERIA[self.kind])):
            raise ValueError(
                "give at least one criterion (elements, chemical system, formula, ids, a range, or a working "
                "ion); MP's whole collections are downloaded with mp-api directly"
            )
        for name, (lo, hi) in self.ranges.items():
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"range {name}: minimum {lo} above maximum {hi}")
        if self.limit is not None and self.limit < 1:
            raise ValueError("--limit must be positive")
        return select_fields(MP_KINDS[self.kind][0], self.fields)

    def criteria(self) -> dict[str, Any]:
        out: dict[str, Any] = {c: getattr(self, c) for c in CRITERIA[self.kind] if getattr(self, c)}
        out.update({k: tuple(v) for k, v in self.ranges.items()})
        return out


def resolve_api_key(explicit: str | None = None) -> str:
    """The API key from the argument, ``MP_API_KEY`` or pymatgen's ``PMG_MAPI_KEY``.

    Raises:
        MissingAPIKeyError: when none is set (the message says where to put one).
    """
    key = explicit or os.environ.get("MP_API_KEY")
    if not key:
        from pymatgen.core import SETTINGS

        key = SETTINGS.get("PMG_MAPI_KEY")
    if not key:
        raise MissingAPIKeyError(MISSING_KEY)
    return str(key)


def _hide(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


def _chunks(items: list[str], n: int) -> list[list[str]]:
    return [items[k : k + n] for k in range(0, len(items), n)]


class _Online:
    """MPRester and the fetch steps that need the network."""

    def __init__(self, key: str, endpoint: str | None, retry: RetryPolicy) -> None:
        try:
            from mp_api.client import MPRester
        except ImportError:
            raise FetchError(MISSING_CLIENT) from None
        self.key = key
        self.where = endpoint or DEFAULT_ENDPOINT
        session = retrying_session(retry, {"x-api-key": key})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.mpr = MPRester(
                    api_key=key, endpoint=endpoint, session=session, use_document_model=False, mute_progress_bars=True
                )
        except Exception as exc:
            raise FetchError(self.error("cannot connect", exc)) from None

    def error(self, what: str, exc: BaseException) -> str:
        text = " ".join(str(exc).split())[:400]  # mp-api's messages span lines
        return _hide(f"Materials Project at {self.where}: {what} ({type(exc).__name__}: {text})", self.key)

    def rester(self, kind: str) -> Any:
        rester = getattr(self.mpr.materials, ROUTE[kind])
        rester = getattr(rester, "_obj", None) or rester  # mp-api hands out lazy wrappers
        if not getattr(rester, "_fields_cached", False):
            # mp-api rebuilds the document model's JSON schema for every requested field of
            # every request (``available_fields``, ~0.1 s each): computed once here, for this
            # instance only (its class is swapped for a subclass with a constant property)
            names = list(rester.available_fields)
            cls = type(rester)
            rester.__class__ = type(cls.__name__, (cls,), {"available_fields": property(lambda _: names),
                                                          "_fields_cached": True})  # fmt: skip
        return rester

    def search(self, kind: str, **kw: Any) -> list[dict[str, Any]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [dict(d) for d in self.rester(kind).search(**kw)]


def fetch_mp(
    query: MPQuery,
    *,
    api_key: str | None = None,
    endpoint: str | None = None,
    cache_root: Path | None = None,
    use_cache: bool = True,
    refresh: bool = False,
    retry: RetryPolicy | None = None,
    page_size: int = 1000,
    ids_per_request: int = 200,
    show_progress: bool = True,
) -> FetchResult:
    """Fetch ``query`` from the Materials Project (or the MP-compatible ``endpoint``).

    Args:
        query: what to fetch.
        api_key: the key (else ``MP_API_KEY``, else pymatgen's ``PMG_MAPI_KEY``).
        endpoint: an MP-compatible server (else ``$CRYSTALGNN_MP_ENDPOINT``, else MP's own).
        cache_root: the cache folder (default ``$CRYSTALGNN_CACHE_DIR/fetch``).
        use_cache: read and keep pages in the cache.
        refresh: forget the cached pages of this query first.
        retry: how to retry 429/5xx answers (Retry-After is honoured).
        page_size: documents per page of the id search (mp-api paginates it).
        ids_per_request: ids per document request (chunks of long id lists).
        show_progress: draw a progress bar.

    Raises:
        ValueError: for a query that cannot be sent (checked before any import or request).
        MissingAPIKeyError: when the query is not cached and no key is set.
        FetchError: when the server cannot be reached or refuses; the pages fetched so far
            stay cached, so the same call resumes.
    """
    fields = query.validate()
    endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or None
    kind = query.kind
    pk = MP_KINDS[kind][1]
    cache = QueryCache(
        cache_root,
        f"mp-{kind}",
        {"endpoint": endpoint or DEFAULT_ENDPOINT, "page": [page_size, ids_per_request], **asdict(query)},
        enabled=use_cache,
    )
    if refresh:
        cache.clear()
    result = FetchResult(from_cache={"mp": cache.done("all")}, requests={"mp": 0})
    online: _Online | None = None

    def connect() -> _Online:
        nonlocal online
        if online is None:
            online = _Online(resolve_api_key(api_key), endpoint, retry or RetryPolicy())
        return online

    # 1. the ids
    ids = query.ids
    if ids is None:
        cached = cache.load("ids", 0)
        if cached is None:
            net = connect()
            try:
                docs = net.search(kind, **query.criteria(), fields=ID_FIELDS[kind], chunk_size=page_size)
            except Exception as exc:
                raise FetchError(net.error("the id search failed", exc)) from None
            result.requests["mp"] += 1
            cached = {"ids": list(dict.fromkeys(i for i in (doc_id(kind, d) for d in docs) if i is not None))}
            cache.save("ids", 0, cached)
        ids = list(cached["ids"])
    ids = ids[: query.limit] if query.limit else ids
    # 2. the documents, a cached page per chunk of ids
    wanted = sorted({*ID_FIELDS[kind], *EXTRA_FIELDS[kind], *(f.top_field for f in fields)})
    docs = []
    with progress(total=len(ids), desc=f"Materials Project {kind}", disable=not show_progress) as bar:
        for k, chunk in enumerate(_chunks(ids, ids_per_request)):
            page = cache.load("docs", k)
            if page is None:
                net = connect()
                try:
                    page = net.search(kind, **query.criteria(), **{ID_PARAM[kind]: chunk}, fields=wanted,
                                      chunk_size=len(chunk) if kind != "thermo" else 1000)  # fmt: skip
                except Exception as exc:
                    raise FetchError(
                        net.error(f"documents {k * ids_per_request + 1}-{k * ids_per_request + len(chunk)} failed", exc)
                        + f"; the {k} pages before are cached: run the same command again to resume"
                    ) from None
                result.requests["mp"] += 1
                cache.save("docs", k, page)
            docs.extend(page)
            bar.update(len(chunk))
    # 3. the structures of thermo documents and of both electrode end members
    structures: dict[str, Any] = {}
    if kind != "summary":
        keys = ("material_id",) if kind == "thermo" else ("id_discharge", "id_charge")
        need = sorted({str(d[c]) for d in docs for c in keys if d.get(c)})
        for k, chunk in enumerate(_chunks(need, ids_per_request)):
            page = cache.load("structures", k)
            if page is None:
                net = connect()
                try:
                    found = net.search("summary", material_ids=chunk, fields=["material_id", "structure"],
                                       chunk_size=len(chunk))  # fmt: skip
                except Exception as exc:
                    raise FetchError(net.error("the structure search failed", exc)) from None
                result.requests["mp"] += 1
                page = {str(d["material_id"]): d.get("structure") for d in found if d.get("material_id")}
                cache.save("structures", k, page)
            structures.update(page)
    meta = cache.load("meta", 0)
    if meta is None:
        net = connect()
        meta = {"database_version": str(net.mpr.db_version or ""), "retrieved": now()}
        cache.save("meta", 0, meta)
    cache.mark_done("all")
    asked = asdict(query)
    if query.ids and len(query.ids) > 10:  # not thousands of ids in every row
        asked["ids"] = f"{len(query.ids)} ids ({query.ids[0]}, ...)"
    provenance = {"database": "Materials Project", "route": ROUTE[kind], "url": endpoint or DEFAULT_ENDPOINT,
                  **meta, "query": asked}  # fmt: skip
    for doc in docs:
        _add_row(result, kind, pk, doc, structures, fields, provenance)
    return result


def _mpid_order(mpid: str) -> tuple[str, int, str]:
    prefix, _, number = str(mpid).rpartition("-")
    return (prefix, int(number), "") if number.isdigit() else (str(mpid), 0, str(mpid))


def doc_id(kind: str, doc: dict[str, Any]) -> str | None:
    """The id a document is fetched by (``material_id``, or the electrode's battery id)."""
    pk = MP_KINDS[kind][1]
    if doc.get(pk) not in (None, ""):
        return str(doc[pk])
    if kind == "electrodes" and doc.get("material_ids") and doc.get("working_ion"):
        return f"{min(doc['material_ids'], key=_mpid_order)}_{doc['working_ion']}"
    return None


def _add_row(
    result: FetchResult,
    kind: str,
    pk: str,
    doc: dict[str, Any],
    structures: dict[str, Any],
    fields: tuple[FieldMap, ...],
    provenance: dict[str, Any],
) -> None:
    entry_id = doc_id(kind, doc)
    if entry_id is None:
        result.skipped.append(skip("mp", repr(doc)[:60], f"no {pk}"))
        return
    if kind == "thermo" and doc.get("thermo_type"):  # one document per material and thermo type
        entry_id = f"{entry_id}_{doc['thermo_type']}"
    extra: dict[str, Any] = {"formula": doc.get("formula_pretty") or doc.get("battery_formula")}
    if kind == "summary":
        structure = doc.get("structure")
    elif kind == "thermo":
        structure = structures.get(str(doc.get("material_id")))
        extra.update(material_id=doc.get("material_id"), thermo_type=doc.get("thermo_type"))
    else:
        structure = structures.get(str(doc.get("id_discharge")))
        if structure is None:
            reason = f"MP has no structure for the discharged end member ({doc.get('id_discharge')})"
            result.skipped.append(skip("mp", entry_id, reason))
            return
        charged = structures.get(str(doc.get("id_charge")))
        extra.update(working_ion=doc.get("working_ion"), id_discharge=doc.get("id_discharge"),
                     id_charge=doc.get("id_charge"), structure_charged=None)  # fmt: skip
        if charged is not None:
            try:
                extra["structure_charged"] = make_row(entry_id, charged, {}, (), {})["structure"]
            except ValueError as exc:
                result.skipped.append(skip("mp", entry_id, f"charged end member: {exc} (kept without it)"))
    try:
        row = make_row(entry_id, structure, doc, fields, {**provenance, "id": entry_id}, extra=extra)
    except ValueError as exc:
        result.skipped.append(skip("mp", entry_id, str(exc)))
        return
    result.rows.append(row)
