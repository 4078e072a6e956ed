"""Shared checks of the zoo model tests (test_zoo.py, test_icgcnn.py, test_ogcnn.py): batches,
symmetry operations, invariances, overfitting and a CLI run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch
from typer.testing import CliRunner

from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.models.registry import build_model, make_config
from tinydata import low_symmetry_cells, perovskite_rows, strained_crystals, write_jsonl


def batch_of(structs: list[Structure], name: str, options: dict[str, Any] | None = None) -> Batch:
    gcfg = make_config(name, options).graph_config()
    return Batch.from_data_list([build_graph(s, gcfg) for s in structs])


def overfit_ratio(name: str, table: torch.Tensor, options: dict[str, Any], steps: int = 150) -> tuple[float, float]:
    """(first, last) training loss of ``name`` fitting the volume per atom of 16 cells with Adam."""
    torch.manual_seed(0)
    structs = strained_crystals(16, seed=1)
    b = batch_of(structs, name, options)
    vol = np.array([s.volume / len(s) for s in structs])
    y = torch.tensor((vol - vol.mean()) / vol.std(), dtype=torch.float32).view(-1, 1)
    model = build_model(name, make_config(name, options), table, out_dim=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses: list[float] = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(b) - y) ** 2).mean()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())  # no parameter left unused
        opt.step()
        losses.append(loss.item())
        if losses[-1] < losses[0] / 10:
            break
    return losses[0], losses[-1]


def rotated(s: Structure, seed: int) -> Structure:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    return Structure(Lattice(s.lattice.matrix @ q.T), s.species, s.cart_coords @ q.T, coords_are_cartesian=True)


def permuted(s: Structure, seed: int) -> Structure:
    perm = np.random.default_rng(seed).permutation(len(s))
    return Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm])


def check_invariances(name: str, table: torch.Tensor) -> None:
    """Atom order, rotation and a 2 x 1 x 1 supercell leave the predictions unchanged."""
    structs = low_symmetry_cells(4)
    torch.manual_seed(0)
    model = build_model(name, make_config(name), table, out_dim=2)
    model.train()
    with torch.no_grad():  # non-trivial batch-norm running statistics
        model(batch_of(strained_crystals(6, seed=3), name))
    model.eval()
    with torch.no_grad():
        ref = model(batch_of(structs, name))
        perm = model(batch_of([permuted(s, k) for k, s in enumerate(structs)], name))
        rot = model(batch_of([rotated(s, k) for k, s in enumerate(structs)], name))
        sup = model(batch_of([s * (2, 1, 1) for s in structs[:2]], name))
    scale = float(ref.abs().max()) + 1e-6
    torch.testing.assert_close(perm, ref, atol=1e-5 * scale, rtol=1e-5)
    torch.testing.assert_close(rot, ref, atol=1e-4 * scale, rtol=1e-4)
    torch.testing.assert_close(sup, ref[:2], atol=1e-4 * scale, rtol=1e-4)


def train_with_cli(name: str, tmp_path: Path) -> dict[str, Any]:
    """``crystalgnn train --model NAME`` on 40 perovskites (2 epochs, graph cache on), then
    ``evaluate``; returns the run's metrics.json."""
    from crystalgnn.cli import app

    table = write_jsonl(tmp_path / "perov.jsonl", perovskite_rows(40))
    run = tmp_path / "run"
    runner = CliRunner()
    args = [
        "train", table, "-t", "heat_all", "--model", name, "--epochs", "2", "--batch-size", "16", "-o", run,
        "--optimizer", "adam", "--lr", "0.003", "-m", "atom_fea_len=16", "-m", "n_conv=2", "--jobs", "1",
        "--threads", "1", "--no-progress", "--split", "0.6,0.2,0.2", "--cache-dir", tmp_path / "cache",
    ]  # fmt: skip
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    assert f"model: {name}" in (run / "config.yaml").read_text()
    r = runner.invoke(app, ["evaluate", str(run), str(table), "-o", str(tmp_path / "eval")])
    assert r.exit_code == 0, r.output
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["metrics"]["n"] == 40 and evaluated["n_rejected"] == 0
    metrics: dict[str, Any] = json.loads((run / "metrics.json").read_text())
    return metrics
