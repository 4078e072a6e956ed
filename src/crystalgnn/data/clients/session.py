"""What every client shares: its errors, HTTP sessions that retry with back-off, the record of
what was skipped, and the result of a fetch.

Retries: ``429`` and ``5xx`` answers (and dropped connections) are retried up to
:attr:`RetryPolicy.total` times, waiting ``backoff * 2**n`` seconds, or as long as the server's
``Retry-After`` header asks (urllib3's :class:`~urllib3.util.retry.Retry`, which requests
mounts). Both clients get such a session: mp-api through ``MPRester(session=...)``, the
OPTIMADE client through its ``http_client`` class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the statuses retried (rate limit, server errors, gateways)
RETRY_STATUSES = (429, 500, 502, 503, 504)


class FetchError(RuntimeError):
    """A fetch that cannot go on (unreachable server, refused query); the message says why."""


class MissingAPIKeyError(FetchError):
    """No API key was found (the message says where one is looked for)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a failed request."""

    total: int = 5
    backoff: float = 0.5
    max_wait: float = 120.0

    def retry(self) -> Any:
        from urllib3.util.retry import Retry

        return Retry(
            total=self.total,
            connect=self.total,
            read=self.total,
            status=self.total,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.backoff,
            backoff_max=self.max_wait,
            respect_retry_after_header=True,
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=True,
        )


def retrying_session(policy: RetryPolicy, headers: dict[str, str] | None = None) -> Any:
    """A ``requests.Session`` that retries as ``policy`` says."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(max_retries=policy.retry())
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if headers:
        session.headers.update(headers)
    return session


def session_class(policy: RetryPolicy) -> type:
    """A ``requests.Session`` subclass whose instances retry as ``policy`` says (for clients
    that take a class and make their own sessions, as ``OptimadeClient(http_client=...)``).
    """
    import requests
    from requests.adapters import HTTPAdapter

    class RetryingSession(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            adapter = HTTPAdapter(max_retries=policy.retry())
            self.mount("http://", adapter)
            self.mount("https://", adapter)

    return RetryingSession


@dataclass(frozen=True)
class Skipped:
    """A record that was fetched but could not be used (named, with the reason)."""

    database: str
    id: str
    reason: str


@dataclass
class FetchResult:
    """The rows of a fetch and everything that went wrong on the way.

    Attributes:
        rows: the data set's rows (see :mod:`crystalgnn.data.clients.writer`).
        skipped: records dropped, each with its reason.
        failures: database -> why it could not be (completely) fetched; the rows of the
            other databases, and the pages it sent before failing, are kept.
        from_cache: database -> whether its rows came from the local cache only.
        requests: database -> number of pages (requests) fetched over the network.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    from_cache: dict[str, bool] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)

    @property
    def units(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for row in self.rows:
            out.update(row.get("units") or {})
        return out
