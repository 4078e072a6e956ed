"""Shared pytest fixtures for crystalgnn tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")

#: the real datasets beside the repository (never copied into it)
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it are skipped when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


def make_structures() -> dict[str, Structure]:
    """Small ordered crystals with distinct element sets (site order as given)."""
    return {
        "nacl": Structure(Lattice.cubic(2.82), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "si": Structure(
            Lattice.from_parameters(3.84, 3.84, 3.84, 60, 60, 60), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]
        ),
        "srtio3": Structure(
            Lattice.cubic(3.905),
            ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        ),
        "lifeo2": Structure(
            Lattice.from_parameters(2.9, 2.9, 14.2, 90, 90, 120),
            ["Li", "Fe", "O", "O"],
            [[0, 0, 0.5], [0, 0, 0], [1 / 3, 2 / 3, 0.26], [2 / 3, 1 / 3, 0.74]],
        ),
    }


@pytest.fixture
def structures() -> dict[str, Structure]:
    return make_structures()


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Graph and descriptor caches go to a temporary folder, never to ~/.cache."""
    os.environ["CRYSTALGNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("crystalgnn-cache"))
