"""Database clients: the Materials Project (``mp-api``) and OPTIMADE providers (OQMD, NOMAD,
Alexandria, JARVIS, MP) into data-set files that every crystalgnn command reads.

``crystalgnn data fetch mp ...`` / ``crystalgnn data fetch optimade ...`` on the command line;
in Python::

    from crystalgnn.data.clients import MPQuery, fetch_mp, fetch_optimade, write_rows

    res = fetch_optimade(["oqmd", "jarvis"], 'elements HAS ALL "Li","O" AND nelements=2')
    write_rows("li-o.jsonl.gz", res.rows)  # load_source("li-o.jsonl.gz") reads it, with units

Modules: :mod:`~crystalgnn.data.clients.vocabulary` (field -> label and unit), ``session``
(errors, retries, results), ``cache`` (pages keyed by the query), ``writer`` (rows, file),
``mp`` and ``optimade`` (the clients). The heavy client packages are imported inside the
functions that use them.
"""

from __future__ import annotations

from crystalgnn.data.clients.mp import MPQuery, fetch_mp, resolve_api_key
from crystalgnn.data.clients.optimade import fetch_optimade
from crystalgnn.data.clients.session import FetchError, FetchResult, MissingAPIKeyError, RetryPolicy, Skipped
from crystalgnn.data.clients.writer import write_rows

__all__ = [
    "FetchError",
    "FetchResult",
    "MPQuery",
    "MissingAPIKeyError",
    "RetryPolicy",
    "Skipped",
    "fetch_mp",
    "fetch_optimade",
    "resolve_api_key",
    "write_rows",
]
