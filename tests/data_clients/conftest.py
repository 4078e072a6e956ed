"""Local test servers for the database clients: recorded responses on 127.0.0.1 only."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver listens on 127.0.0.1 (a free port), never on another address."""
    return ("127.0.0.1", 0)
