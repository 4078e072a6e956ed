"""Tiny synthetic perovskites for the experiments tests (a JSON-lines table and a dataset)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalgnn.data.dataset import CrystalDataset

A_SITE = {"Sr": 0.3, "Ba": 0.5, "Ca": 0.1, "La": -0.4, "K": 0.9}
B_SITE = {"Ti": -1.0, "Zr": -0.6, "Nb": -0.2, "Fe": 0.4, "Mn": 0.2, "Al": -0.8}


def perovskites(n: int = 60, seed: int = 0) -> tuple[list[Structure], np.ndarray]:
    """``n`` cubic ABO3 cells; ``energy`` depends on A, B and the lattice constant."""
    rng = np.random.default_rng(seed)
    structures, energy = [], []
    for _ in range(n):
        a, b = str(rng.choice(list(A_SITE))), str(rng.choice(list(B_SITE)))
        lat = float(rng.uniform(3.8, 4.2))
        s = Structure(
            Lattice.cubic(lat),
            [a, b, "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        )
        structures.append(s)
        energy.append(A_SITE[a] + B_SITE[b] + 2.0 * (lat - 4.0) + 0.05 * rng.normal())
    return structures, np.array(energy)


def _perovskite_table(path: Path, n: int = 60, seed: int = 0) -> Path:
    structures, energy = perovskites(n, seed)
    with gzip.open(path, "wt") as f:
        for k, (s, e) in enumerate(zip(structures, energy, strict=True)):
            f.write(json.dumps({"id": f"p{k}", "structure": s.as_dict(), "energy": float(e)}) + "\n")
    return path


@pytest.fixture(scope="session")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The perovskites as a gzipped JSON-lines table (what the CLI and the GNN runs read)."""
    return _perovskite_table(tmp_path_factory.mktemp("data") / "perov.jsonl.gz")


@pytest.fixture
def perov_dataset() -> CrystalDataset:
    """40 perovskites in memory: ``energy`` (one label missing), ``linear`` (exactly linear in
    the element fractions) and a per-site target ``charge`` (a constant per element)."""
    structures, energy = perovskites(40, seed=3)
    energy[0] = np.nan
    weights = {**A_SITE, **B_SITE, "O": -2.0}
    linear = np.array([sum(weights[site.specie.symbol] for site in s) / len(s) for s in structures])
    charge = [np.array([weights[site.specie.symbol] for site in s]) for s in structures]
    return CrystalDataset(
        ids=[f"q{i}" for i in range(40)],
        structures=structures,
        targets={"energy": energy, "linear": linear},
        units={"energy": "eV", "linear": "eV/atom", "charge": "e"},
        site_targets={"charge": charge},
        name="perov-test",
    )
