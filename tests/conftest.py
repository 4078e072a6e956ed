"""Shared pytest fixtures for crystalgnn tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a test module, restored after it.

    Small graphs and matrices: on the shared 2-core test machine one OpenMP thread is faster
    (an order of magnitude under contention). A module opts in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def table() -> Any:
    """CGCNN's atom-feature table as a tensor, (max_Z + 1, 92), the models' usual ``atom_table``."""
    import torch

    from crystalgnn.graphs.atom_features import AtomFeaturizer

    return torch.tensor(AtomFeaturizer.cgcnn().matrix())
