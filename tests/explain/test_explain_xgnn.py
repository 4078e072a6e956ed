"""XGNN for crystals: label tables, validity of generated graphs, the generator learning a
classifier's target class, the scorer's crystal graphs and the summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.nn import global_add_pool

from crystalgnn.explain.xgnn import Explanation, XGNNConfig, XGNNResult, sample_explanations, train_generator
from crystalgnn.explain.xgnn_env import LabelGraphScorer, apply_actions, graph_is_valid, state_records
from crystalgnn.explain.xgnn_labels import (
    detect_labels,
    element_label,
    label_table,
    representative_elements,
    write_label_atom_init,
)
from crystalgnn.explain.xgnn_policy import GraphStates, XGNNPolicy
from crystalgnn.explain.xgnn_summary import edge_counts, explanation_statistics, label_histogram, write_summary

pytestmark = pytest.mark.usefixtures("one_thread")

LUT = torch.tensor([0] + [element_label(z, "group") for z in range(1, 101)])


def fires_on_group16(batch: object) -> torch.Tensor:
    """A classifier whose class 1 probability grows with the number of group-16 atoms."""
    hit = (LUT[batch.z] == 15).float()  # type: ignore[attr-defined]
    n = global_add_pool(hit, batch.batch, size=batch.num_graphs)  # type: ignore[attr-defined]
    p1 = torch.sigmoid(2.0 * (n - 1.5))
    return torch.stack([1 - p1, p1], 1)


def scorer() -> LabelGraphScorer:
    return LabelGraphScorer(fires_on_group16, representative_elements("group"), np.full((18, 18), 2.5))


@pytest.mark.parametrize(("symbol", "z", "group", "period"), [("O", 8, 16, 2), ("Fe", 26, 8, 4), ("Na", 11, 1, 3),
                                                              ("Cl", 17, 17, 3), ("La", 57, 3, 6)])  # fmt: skip
def test_label_tables(symbol: str, z: int, group: int, period: int) -> None:
    assert element_label(z, "group") == group - 1 and element_label(z, "period") == period - 1
    assert label_table("group")[z].tolist() == [float(i == group - 1) for i in range(18)]
    assert label_table("period")[z].argmax() == period - 1 and label_table("period")[z].sum() == 1


def test_atom_init_round_trip_and_detection(tmp_path: object) -> None:
    from crystalgnn.graphs.atom_features import AtomFeaturizer

    for kind in ("group", "period"):
        path = write_label_atom_init(kind, tmp_path / f"{kind}.json")  # type: ignore[operator]
        assert detect_labels(AtomFeaturizer.from_json(path).matrix()) == kind
    with pytest.raises(ValueError, match="not one-hot group"):
        detect_labels(AtomFeaturizer.cgcnn().matrix())
    swapped = label_table("group")
    swapped[[8, 26]] = swapped[[26, 8]]  # O and Fe exchanged: not the group table
    with pytest.raises(ValueError):
        detect_labels(swapped)


def test_representative_elements_are_the_most_frequent_of_their_label() -> None:
    reps = representative_elements("group", [8, 8, 16, 26, 26, 26, 44])
    assert reps[15] == 8 and reps[7] == 26 and reps[0] == 1  # group 1 unseen: lightest (H)
    assert all(element_label(z, "group") == i for i, z in enumerate(reps))


def test_actions_enforce_the_rules() -> None:
    states = GraphStates.start(torch.tensor([0]), 3)
    cand = lambda label: torch.tensor([3 + label])  # noqa: E731
    states, ok = apply_actions(states, torch.tensor([0]), cand(5), 3, 2)
    assert ok.item() and states.labels.tolist() == [[0, 5, -1]]
    states, ok = apply_actions(states, torch.tensor([0]), torch.tensor([1]), 3, 2)  # repeated bond
    assert not ok.item()
    states, ok = apply_actions(states, torch.tensor([0]), cand(7), 3, 2)
    assert ok.item() and states.n_atoms.item() == 3
    before = states.clone()
    for start, end in ((0, 3 + 1), (0, 2), (1, 1)):  # 4th atom; degree of atom 0 over 2; self bond
        states, ok = apply_actions(states, torch.tensor([start]), torch.tensor([end]), 3, 2)
        assert not ok.item() and torch.equal(states.adj, before.adj) and torch.equal(states.labels, before.labels)
    assert graph_is_valid([0, 5, 7], [(0, 1), (0, 2)], 18, max_nodes=3, max_degree=2) == []
    assert graph_is_valid([0, 5, 7], [(0, 1)], 18) == ["not connected"]
    assert graph_is_valid([0] * 7, [(0, i) for i in range(1, 7)], 18)[:2] == [
        "7 atoms (1..6 allowed)",
        "an atom with 6 neighbours (max 4)",
    ]


def test_random_policy_graphs_are_valid() -> None:
    torch.manual_seed(0)
    policy = XGNNPolicy(18, 6)
    states = GraphStates.start(torch.randint(0, 18, (200,)), 6)
    with torch.no_grad():
        for _ in range(15):
            start, end, logp, _ = policy.act(states)
            assert torch.isfinite(logp).all()
            states, _ = apply_actions(states, start, end, 6, 4)
    records = state_records(states)
    assert max(len(labels) for labels, _ in records) == 6
    for labels, edges in records:
        assert graph_is_valid(labels, edges, 18, 6, 4) == []


def test_scorer_builds_the_crystal_graphs_of_the_labels() -> None:
    dist = np.arange(18 * 18, dtype=float).reshape(18, 18)
    dist = dist + dist.T
    sc = LabelGraphScorer(fires_on_group16, representative_elements("group"), dist)
    states = GraphStates.start(torch.tensor([15, 2]), 3)
    states, _ = apply_actions(states, torch.tensor([0, 0]), torch.tensor([3 + 7, 3 + 15]), 3, 4)
    batch = sc.batch(states)
    assert batch.num_graphs == 2 and batch.z.tolist() == [8, 26, 21, 8]  # O-Fe, Sc-O
    assert batch.edge_index.tolist() == [[1, 0, 3, 2], [0, 1, 2, 3]]
    assert batch.edge_dist.tolist() == [dist[15, 7]] * 2 + [dist[2, 15]] * 2
    assert batch.get_example(1).z.tolist() == [21, 8]
    assert sc(states, 1).tolist() == pytest.approx([torch.sigmoid(torch.tensor(-1.0)).item()] * 2)


def test_generator_learns_the_target_class() -> None:
    cfg = XGNNConfig(iterations=25, batch=16, rollouts=2, max_steps=6, seed=0)
    sc = scorer()
    policy, history = train_generator(sc, 18, 1, cfg)
    assert np.mean(history[:3]) < 0.3 and np.mean(history[-3:]) > 0.8
    kept, n = sample_explanations(policy, sc, 1, cfg, n_explanations=40, min_prob=0.8, max_samples=400)
    assert len(kept) == 40 and 40 <= n <= 400
    for e in kept:
        assert e.prob > 0.8 and e.labels.count(15) >= 3 and graph_is_valid(e.labels, e.edges, 18) == []


def test_summaries_count_labels_and_metal_bonds(tmp_path: object) -> None:
    graphs = [Explanation([7, 7, 15], [(0, 1), (1, 2)], 0.9), Explanation([0, 16], [(0, 1)], 0.95)]
    res = XGNNResult("group", 0, graphs, n_sampled=4, min_prob=0.8)
    hist, pairs = label_histogram(res), edge_counts(res)
    assert hist[7] == 2 and hist[15] == 1 and hist.sum() == 5
    assert pairs[7, 7] == 1 and pairs[7, 15] == pairs[15, 7] == 1 and pairs[0, 16] == 1
    st = explanation_statistics(res)
    assert (st["metal_atoms"], st["metal_metal_bonds"], st["chalcogen_halogen_metal_bonds"]) == (3, 1, 2)
    assert st["kept_fraction"] == 0.5 and st["metal_metal_bond_fraction"] == pytest.approx(1 / 3)
    paths = write_summary({0: res}, tmp_path)  # type: ignore[arg-type]
    assert paths["label_histogram"].stat().st_size > 0 and paths["edge_heatmaps"].stat().st_size > 0
    assert "low,group 8,2,0.4" in paths["label_counts"].read_text()
