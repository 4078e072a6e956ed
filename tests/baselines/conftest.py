"""Shared fixtures for the baseline tests: small synthetic crystals and (when present) real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

os.environ.setdefault("CRYSTALGNN_PROGRESS", "0")

DATA_DIR = Path(os.environ.get("CRYSTALGNN_DATA_DIR", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
HAS_PEROVSKITES = (DATA_DIR / "castelli_perovskites_cdvae.jsonl.gz").is_file()


@pytest.fixture
def triclinic() -> Structure:
    """A distorted 5-atom ABX3-like cell (low symmetry, so invariances are not accidental)."""
    return Structure(
        Lattice.from_parameters(4.1, 4.5, 5.2, 80, 95, 100),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.45, 0.52], [0.5, 0.5, 0], [0.1, 0.5, 0.5], [0.5, 0.0, 0.55]],
    )


@pytest.fixture(scope="session")
def perovskites():
    if not HAS_PEROVSKITES:
        pytest.skip(f"real data not found in {DATA_DIR}")
    from crystalgnn.data.readers import load_source

    return load_source("perovskites", targets=["heat_all"], show_progress=False)


def _random_structures(elements: list[str], n: int, seed: int, max_atoms: int = 8) -> list[Structure]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(1, max_atoms + 1))
        species = [str(e) for e in rng.choice(elements, size=k)]
        out.append(Structure(Lattice.cubic(6.0), species, rng.random((k, 3))))
    return out


@pytest.fixture
def make_structures():
    """``make_structures(elements, n, seed, max_atoms=8)``: random cells with 1..max_atoms atoms
    drawn from ``elements`` (for composition-only models; geometry is arbitrary)."""
    return _random_structures
