"""Shared pytest fixtures for crystalgnn tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pymatgen.core import Structure
from tinydata import small_structures

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")

#: the real datasets beside the repository (never copied into it)
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it are skipped when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def structures() -> dict[str, Structure]:
    return small_structures()


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Graph and descriptor caches go to a temporary folder, never to ~/.cache."""
    os.environ["CRYSTALGNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("crystalgnn-cache"))
