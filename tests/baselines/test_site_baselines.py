"""Per-site baselines: the per-element average and the neighbour-list MLP."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalgnn.baselines.site_baselines import (
    NeighbourMLPBaseline,
    PerElementSiteBaseline,
    fit_predict_site_baseline,
    neighbour_arrays,
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
        s.perturb(0.05)
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


def test_neighbour_arrays_are_the_12_nearest_sorted_by_distance() -> None:
    s = _structures(1)[0]
    g = build_graph(s)
    z, nz, nd, mask = neighbour_arrays(g, k=12)
    assert nz.shape == (len(s), 12) and mask.all()
    assert np.all(np.diff(nd, axis=1) >= -1e-6)
    for i in range(len(s)):
        d = sorted(s.get_neighbors(s[i], 6.0), key=lambda n: n.nn_distance)[:12]
        np.testing.assert_allclose(nd[i], [n.nn_distance for n in d], atol=1e-4)
    _, _, _, mask4 = neighbour_arrays(g, k=40)  # fewer edges than slots: zero-padded, masked
    assert mask4.sum(axis=1).max() == 12 and not mask4.all()


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
