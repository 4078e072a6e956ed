"""OPTIMADE providers (OQMD, NOMAD, Alexandria, JARVIS, the Materials Project) through the
``optimade`` package's client (``optimade.client.OptimadeClient``).

Why that client: it builds the query URLs, checks the filter with the reference grammar,
follows ``links.next`` across pages and reports each provider's errors separately, and it takes
any base URL and any ``requests.Session`` class, so a mirror or a local test server works as
well as the public servers (it pulls only ``httpx``/``lark``/``pydantic`` in, no heavy
dependency). Its own retry waits a fixed second on 429 and gives up on 5xx, so it is given a
session class that retries 429/5xx with back-off and honours ``Retry-After``
(:func:`~crystalgnn.data.clients.session.session_class`); every page it receives goes through
a callback into the cache, so an interrupted provider resumes at its next page
(``get_one(override_url=...)``).

Each provider is fetched on its own: one that is down (or fails half way) is named in
``FetchResult.failures`` and the others' rows are kept. Structures are converted to pymatgen
from ``lattice_vectors``, ``cartesian_site_positions``, ``species_at_sites`` and ``species``;
an entry without them (a molecule, a malformed record) is skipped with the reason. The
providers' property fields go through :data:`~crystalgnn.data.clients.vocabulary.PROVIDERS`.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from crystalgnn.data.clients.cache import QueryCache
from crystalgnn.data.clients.session import FetchResult, RetryPolicy, session_class
from crystalgnn.data.clients.vocabulary import PROVIDERS, FieldMap, Provider, select_fields
from crystalgnn.data.clients.writer import make_row, now, skip
from crystalgnn.progress import progress

#: environment variable with endpoints: ``URL`` (one provider), ``PROVIDER=URL,...`` or a URL
#: with ``{provider}`` in it
ENDPOINT_ENV = "CRYSTALGNN_OPTIMADE_ENDPOINT"
STRUCTURE_FIELDS = [
    "lattice_vectors",
    "cartesian_site_positions",
    "species_at_sites",
    "species",
    "chemical_formula_reduced",
    "last_modified",
]


def check_filter(filter_: str) -> str:
    """``filter_`` if the OPTIMADE grammar parses it; ValueError with the parser's message."""
    from optimade.filterparser import LarkParser

    try:
        LarkParser().parse(filter_)
    except Exception as exc:
        raise ValueError(f"not an OPTIMADE filter: {filter_!r} ({str(exc).splitlines()[0][:200]})") from None
    return filter_


def parse_endpoints(specs: list[str] | None, providers: list[str]) -> dict[str, str]:
    """Base URLs per provider from ``--endpoint`` values (else ``$CRYSTALGNN_OPTIMADE_ENDPOINT``).

    Each spec is ``PROVIDER=URL``, a URL containing ``{provider}`` (for every provider), or a
    bare URL (only when one provider is fetched). Providers not named keep their public URL.
    """
    if not specs:
        env = os.environ.get(ENDPOINT_ENV, "").strip()
        specs = [s.strip() for s in env.split(",") if s.strip()] if env else []
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, url = spec.partition("=")
        if sep and "://" not in name:
            if name not in PROVIDERS:
                raise ValueError(f"--endpoint {spec}: unknown provider {name!r} ({', '.join(PROVIDERS)})")
            out[name] = url
        elif "{provider}" in spec:
            out.update({p: spec.replace("{provider}", p) for p in providers})
        elif len(providers) == 1:
            out[providers[0]] = spec
        else:
            raise ValueError(f"--endpoint {spec}: with several providers write PROVIDER=URL or use {{provider}}")
    for url in out.values():
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--endpoint {url}: not an http(s) URL")
    return {p: out.get(p, PROVIDERS[p].base_url) for p in providers}


def provider_fields(providers: list[str], fields: list[str] | None) -> dict[str, tuple[FieldMap, ...]]:
    """The field maps to read per provider: all mapped ones, or those named in ``fields``
    (a name a provider does not serve is left out for it; ValueError when none serves it).
    """
    if not fields:
        return {p: PROVIDERS[p].fields for p in providers}
    for f in fields:
        if not any(_serves(PROVIDERS[p].fields, f) for p in providers):
            raise ValueError(f"--field {f}: none of {', '.join(providers)} serves it")
    return {p: tuple(m for m in PROVIDERS[p].fields if any(_serves((m,), f) for f in fields)) for p in providers}


def _serves(maps: tuple[FieldMap, ...], name: str) -> bool:
    try:
        return bool(select_fields(maps, [name]))
    except ValueError:
        return False


def to_structure(attrs: dict[str, Any]) -> Any:
    """A pymatgen ``Structure`` from an OPTIMADE structure's attributes; ValueError (the reason)."""
    from pymatgen.core import Lattice, Structure

    lattice = attrs.get("lattice_vectors")
    positions = attrs.get("cartesian_site_positions")
    names = attrs.get("species_at_sites")
    if not lattice or not positions or not names:
        missing = [k for k in ("lattice_vectors", "cartesian_site_positions", "species_at_sites") if not attrs.get(k)]
        raise ValueError(f"no structure ({', '.join(missing)} missing)")
    if any(v is None for row in lattice for v in (row or [None])):
        raise ValueError("not periodic in three dimensions (null lattice vector)")
    if len(positions) != len(names):
        raise ValueError(f"{len(positions)} positions for {len(names)} species_at_sites")
    species = {s.get("name"): s for s in attrs.get("species") or [] if isinstance(s, dict)}
    site_species: list[Any] = []
    for name in names:
        sp = species.get(name)
        if sp is None:
            site_species.append(name)
            continue
        symbols = sp.get("chemical_symbols") or [name]
        conc = sp.get("concentration") or [1.0] * len(symbols)
        if len(symbols) == 1 and conc[0] == 1.0:
            site_species.append(symbols[0])
        else:  # disordered or with vacancies: the reader names it when it rejects it
            site_species.append({s: c for s, c in zip(symbols, conc, strict=False) if s != "vacancy"})
    try:
        return Structure(Lattice(lattice), site_species, positions, coords_are_cartesian=True)
    except Exception as exc:
        raise ValueError(f"unreadable structure ({type(exc).__name__}: {exc})") from None


def fetch_optimade(
    providers: list[str],
    filter_: str,
    *,
    fields: list[str] | None = None,
    endpoints: list[str] | None = None,
    max_per_provider: int | None = None,
    page_limit: int | None = None,
    cache_root: Path | None = None,
    use_cache: bool = True,
    refresh: bool = False,
    retry: RetryPolicy | None = None,
    show_progress: bool = True,
) -> FetchResult:
    """Fetch the structures matching ``filter_`` from each provider into one set of rows.

    Args:
        providers: names from :data:`~crystalgnn.data.clients.vocabulary.PROVIDERS`.
        filter_: an OPTIMADE filter (``elements HAS ALL "Li","O" AND nelements=3``).
        fields: crystalgnn label names or provider fields to keep (all mapped ones by default).
        endpoints: ``--endpoint`` values (see :func:`parse_endpoints`).
        max_per_provider: stop a provider after this many entries (``None``: all).
        page_limit: entries per page to ask for (the server's default otherwise).
        cache_root, use_cache, refresh, retry, show_progress: as for
            :func:`~crystalgnn.data.clients.mp.fetch_mp`.

    Raises:
        ValueError: unknown provider or field, or a filter the grammar rejects (before any request).
    """
    unknown = [p for p in providers if p not in PROVIDERS]
    if unknown or not providers:
        raise ValueError(f"unknown provider(s) {', '.join(unknown) or '(none given)'}; one of {', '.join(PROVIDERS)}")
    check_filter(filter_)
    maps = provider_fields(providers, fields)
    urls = parse_endpoints(endpoints, providers)
    result = FetchResult()
    for name in dict.fromkeys(providers):
        _fetch_provider(result, PROVIDERS[name], urls[name], filter_, maps[name], max_per_provider, page_limit,
                        QueryCache(cache_root, f"optimade-{name}", {"url": urls[name], "filter": filter_,
                                   "fields": [f.source for f in maps[name]], "max": max_per_provider,
                                   "page_limit": page_limit}, enabled=use_cache),
                        refresh, retry or RetryPolicy(), show_progress)  # fmt: skip
    return result


def _fetch_provider(
    result: FetchResult,
    provider: Provider,
    url: str,
    filter_: str,
    fields: tuple[FieldMap, ...],
    max_results: int | None,
    page_limit: int | None,
    cache: QueryCache,
    refresh: bool,
    retry: RetryPolicy,
    show_progress: bool,
) -> None:
    name = provider.name
    if refresh:
        cache.clear()
    pages = cache.pages("pages")
    result.from_cache[name] = cache.done("pages")
    result.requests[name] = 0
    if not cache.done("pages"):
        from optimade.client import OptimadeClient

        fetched = sum(len(p["data"]) for p in pages)
        resume = pages[-1]["next"] if pages else None
        left = None if max_results is None else max_results - fetched
        if left is None or left > 0:
            bar = progress(desc=f"OPTIMADE {name}", disable=not show_progress, initial=fetched)

            def keep(page_url: str, results: dict[str, Any]) -> None:
                nxt = results["links"].get("next")
                page = {"url": page_url, "next": nxt["href"] if isinstance(nxt, dict) else nxt,
                        "meta": results.get("meta") or {}, "data": results.get("data") or []}  # fmt: skip
                cache.save("pages", len(pages), page)
                pages.append(page)
                result.requests[name] += 1
                bar.update(len(page["data"]))

            client = OptimadeClient(base_urls=[url], max_results_per_provider=left or 0, use_async=False,
                                    http_client=session_class(retry), silent=True, callbacks=[keep])  # fmt: skip
            response_fields = sorted({*STRUCTURE_FIELDS, *(f.top_field for f in fields)})
            # the client prints provider errors on stdout even when silent: they are reported here
            with bar, contextlib.redirect_stdout(io.StringIO()):
                out = client.get_one("structures", filter_, url, response_fields=response_fields,
                                     page_limit=page_limit, override_url=resume)  # fmt: skip
            errors = [str(e) for r in out.values() for e in r.errors]
            if errors:
                kept = sum(len(p["data"]) for p in pages)
                result.failures[name] = f"{url}: {errors[0][:300]} ({kept} entries fetched before are kept)"
        if name not in result.failures:
            cache.mark_done("pages")
    retrieved = now()
    for page in pages:
        meta = page.get("meta") or {}
        version = (meta.get("implementation") or {}).get("version") or meta.get("api_version")
        for entry in page["data"]:
            _add_entry(result, provider, url, filter_, fields, entry, version, meta.get("time_stamp") or retrieved)


def _add_entry(
    result: FetchResult,
    provider: Provider,
    url: str,
    filter_: str,
    fields: tuple[FieldMap, ...],
    entry: Any,
    version: Any,
    retrieved: str,
) -> None:
    name = provider.name
    if not isinstance(entry, dict) or entry.get("id") in (None, ""):
        result.skipped.append(skip(name, repr(entry)[:60], "malformed entry (no id)"))
        return
    native = str(entry["id"])
    attrs = entry.get("attributes")
    if not isinstance(attrs, dict):
        result.skipped.append(skip(name, native, "malformed entry (no attributes)"))
        return
    provenance = {"database": provider.title, "provider": name, "id": native, "url": url,
                  "database_version": version, "retrieved": retrieved, "last_modified": attrs.get("last_modified"),
                  "query": {"filter": filter_}}  # fmt: skip
    try:
        structure = to_structure(attrs)
        row = make_row(f"{name}:{native}", structure, attrs, fields, provenance,
                       extra={"formula": attrs.get("chemical_formula_reduced")})  # fmt: skip
    except ValueError as exc:
        result.skipped.append(skip(name, native, str(exc)))
        return
    result.rows.append(row)
