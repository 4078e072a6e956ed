"""Per-site baselines: the per-element average and the neighbour-list MLP (its features are
tested in tests/models/test_neighbour_mlp.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalgnn.baselines.site_baselines import (
    NeighbourMLPBaseline,
    PerElementSiteBaseline,
    fit_predict_site_baseline,
)
from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.splits import random_split
from crystalgnn.graphs.crystal_graph import build_graph

PER_ELEMENT = {"Li": 0.0, "Fe": 3.7, "Co": 2.9, "Mn": 4.4, "O": 0.12, "Ni": 1.6}


def _structures(n: int, seed: int = 0) -> list[Structure]:
    """Small random rock-salt-like cells of Li/TM/O with random site order and strain."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        tm = str(rng.choice(["Fe", "Co", "Mn", "Ni"]))
        species = ["Li", tm, "O", "O"]
        rng.shuffle(species)
        coords = [[0, 0, 0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]
        s = Structure(Lattice.cubic(4.2), species, coords)
        s.apply_strain(rng.uniform(-0.05, 0.05, 3))
        # displacements of 0.05 Å in seeded random directions (pymatgen's perturb draws its own)
        d = rng.normal(size=(len(s), 3))
        for i, v in enumerate(0.05 * d / np.linalg.norm(d, axis=1, keepdims=True)):
            s.translate_sites([i], v, frac_coords=False)
        out.append(s)
    return out


def _labels(structures: list[Structure]) -> list[np.ndarray]:
    return [np.array([PER_ELEMENT[site.specie.symbol] for site in s]) for s in structures]


def test_per_element_baseline_is_exact_on_a_per_element_target() -> None:
    structs = _structures(30)
    y = _labels(structs)
    y[0] = y[0].copy()
    y[0][0] = np.nan  # unlabelled training sites are ignored, not imputed
    base = PerElementSiteBaseline().fit(structs[:20], y[:20])
    pred = base.predict(structs[20:])
    for p, t in zip(pred, _labels(structs[20:]), strict=True):
        np.testing.assert_allclose(p, t, rtol=0, atol=1e-12)
    assert base.n_unseen_ == 0


def test_per_element_baseline_uses_training_sites_only_and_falls_back_for_unseen() -> None:
    structs = _structures(10)
    y = _labels(structs)
    ds = CrystalDataset(ids=[f"s{i}" for i in range(10)], structures=structs, site_targets={"m": y})
    split = random_split(10, (0.6, 0.2, 0.2), seed=1)
    # corrupt the test labels: a baseline fitted on training sites only cannot notice
    for i in split.test:
        ds.site_targets["m"][i] = np.full(len(structs[i]), 100.0)
    preds, base = fit_predict_site_baseline("per-element", ds, "m", split)
    assert all(np.all(p < 10) for p in preds)
    unseen = Structure(Lattice.cubic(3.0), ["Cu", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    p = base.predict([unseen])[0]
    assert p[0] == pytest.approx(base.fallback_) and base.n_unseen_ == 1


@pytest.fixture
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a busy machine
    yield
    torch.set_num_threads(n)


def test_neighbour_mlp_fits_a_per_element_target(one_thread: None) -> None:
    structs = _structures(40)
    graphs = [build_graph(s) for s in structs]
    y = _labels(structs)
    base = NeighbourMLPBaseline(epochs=40, hidden=32, n_layers=1, lr=1e-2, batch_size=64, seed=0, patience=None)
    base.fit(graphs[:30], y[:30], graphs[30:35], y[30:35])
    pred = base.predict(graphs[35:])
    assert [len(p) for p in pred] == [len(s) for s in structs[35:]]
    err = np.abs(np.concatenate(pred) - np.concatenate(y[35:])).mean()
    spread = np.abs(np.concatenate(y[35:]) - np.concatenate(y[:30]).mean()).mean()
    assert err < 0.25 * spread
    # trained by the one training path: a history per epoch, the normaliser of the training sites
    assert [h["epoch"] for h in base.history_] == list(range(40)) and all("val_mae" in h for h in base.history_)
    train_sites = np.concatenate(y[:30])
    assert base.mean_ == pytest.approx(train_sites.mean()) and base.std_ == pytest.approx(train_sites.std(), rel=1e-5)
    assert base.n_parameters() == base.task_.n_parameters() > 0 and base.train_time_s_ > 0


def test_neighbour_mlp_leaves_the_graphs_alone_and_trains_without_validation(one_thread: None, tmp_path) -> None:
    structs = _structures(12, seed=3)
    graphs = [build_graph(s) for s in structs]
    y = _labels(structs)
    y[0] = y[0].copy()
    y[0][1] = np.nan  # masked, not imputed
    y[1] = None  # a structure without labels
    keys = [set(g.keys()) for g in graphs]
    base = NeighbourMLPBaseline(epochs=3, hidden=16, n_layers=1, batch_size=16, run_dir=tmp_path / "run")
    base.fit(graphs, y)
    assert [set(g.keys()) for g in graphs] == keys  # labels went on copies
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
    assert [h["epoch"] for h in base.history_] == [0, 1, 2] and all("val_mae" not in h for h in base.history_)
    pred = base.predict(graphs[:3])
    assert [p.shape for p in pred] == [(len(s),) for s in structs[:3]] and all(np.isfinite(p).all() for p in pred)
    assert base.predict([]) == []
    with pytest.raises(ValueError, match="no labelled training site"):
        NeighbourMLPBaseline(epochs=1).fit(graphs[:2], [None, np.full(len(structs[1]), np.nan)])


def test_fit_predict_site_baseline_neighbour_mlp_builds_graphs(one_thread: None) -> None:
    structs = _structures(10, seed=5)
    ds = CrystalDataset(ids=[f"s{i}" for i in range(10)], structures=structs, site_targets={"m": _labels(structs)})
    split = random_split(10, (0.6, 0.2, 0.2), seed=1)
    preds, base = fit_predict_site_baseline("neighbour-mlp", ds, "m", split, epochs=2, hidden=8, n_layers=1)
    assert [len(p) for p in preds] == [len(structs[i]) for i in split.test]
    assert len(base.history_) == 2
