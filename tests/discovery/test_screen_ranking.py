"""Ranking of scored candidates (filters, objective, lower confidence bound, Pareto front) and
the screen options, on hand-made tables (no model needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crystalgnn.discovery.ranking import filter_reasons, objective_values, pareto_front, rank_candidates
from crystalgnn.discovery.screen_config import ScreenConfig, prototype_name


def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e", "f"],
            "e_hull_discharged": [0.00, 0.05, 0.30, 0.02, np.nan, 0.01],
            "voltage": [3.0, 4.0, 3.5, 5.0, 3.2, 2.6],
            "specific_energy": [800.0, 700.0, 900.0, 1000.0, 600.0, 790.0],
            "specific_energy_std": [300.0, 10.0, 5.0, 1.0, 1.0, np.nan],
        }
    )


def test_filters_name_every_failure() -> None:
    reasons = filter_reasons(table(), 0.1, (2.5, 4.5))
    assert list(reasons[[0, 1, 5]]) == ["", "", ""]
    assert reasons[2] == "hull > 0.1 eV/atom"
    assert reasons[3] == "voltage outside 2.5-4.5 V"
    assert reasons[4] == "no hull distance"
    # no filters: everything passes
    assert (filter_reasons(table(), None, None) == "").all()


def test_rank_by_specific_energy_then_lcb() -> None:
    ranked = rank_candidates(table(), 0.1, (2.5, 4.5), "specific_energy")
    passing = ranked[ranked["rank"].notna()]
    assert list(passing["id"]) == ["a", "f", "b"] and list(passing["rank"]) == [1, 2, 3]
    # filtered rows follow without rank, with their reason
    assert set(ranked.loc[ranked["rank"].isna(), "id"]) == {"c", "d", "e"}
    assert ranked.loc[ranked["id"] == "c", "filtered_out"].item() == "hull > 0.1 eV/atom"
    # the lower confidence bound penalises the uncertain "a" (800 - 300); no spread = the mean
    lcb = rank_candidates(table(), 0.1, (2.5, 4.5), "lcb", k=1.0)
    assert list(lcb.loc[lcb["rank"].notna(), "id"]) == ["f", "b", "a"]
    assert lcb.loc[lcb["id"] == "a", "objective"].item() == pytest.approx(500.0)
    assert objective_values(table(), "lcb", k=2.0)[1] == pytest.approx(680.0)
    with pytest.raises(ValueError, match="unknown objective"):
        objective_values(table(), "best")


def test_ties_are_broken_by_id_so_reruns_agree() -> None:
    df = pd.DataFrame(
        {"id": ["z", "m", "b"], "e_hull_discharged": [0.0] * 3, "voltage": [3.0] * 3, "specific_energy": [500.0] * 3}
    )
    assert list(rank_candidates(df.sample(frac=1, random_state=3))["id"]) == ["b", "m", "z"]


def test_pareto_front_of_a_known_set() -> None:
    # (specific energy, -hull): maximise both
    pts = np.array([[900, -0.10], [800, -0.00], [850, -0.05], [700, -0.00], [900, -0.20], [600, -0.30], [850, -0.05]])
    assert list(pareto_front(pts)) == [True, True, True, False, False, False, True]
    assert pareto_front(np.zeros((0, 2))).shape == (0,)


def test_pareto_sweep_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    pts = rng.integers(0, 6, size=(200, 2)).astype(float)  # many ties
    dominated = [any((q >= p).all() and (q > p).any() for q in pts) for p in pts]
    assert list(pareto_front(pts)) == [not d for d in dominated]
    three = rng.normal(size=(50, 3))
    assert list(pareto_front(three)) == [not any((q >= p).all() and (q > p).any() for q in three) for p in three]


def test_ranked_table_marks_the_pareto_front() -> None:
    ranked = rank_candidates(table(), 0.1, (2.5, 4.5))
    front = set(ranked.loc[ranked["pareto"], "id"])
    # passing: a (800, 0.00), f (790, -0.01), b (700, -0.05): only a is non-dominated
    assert front == {"a"}


def test_config_round_trip_and_stage_keys(tmp_path) -> None:
    cfg = ScreenConfig(hosts=["x.cif"], prototypes=["layered", "olivine"], metals=["Co"], voltage_window=(2, 4))
    assert cfg.prototypes == ["layered-O3", "olivine"] and prototype_name("rocksalt") == "rocksalt-ordered"
    back = ScreenConfig.load(cfg.save(tmp_path / "screen.yaml"))
    assert back == cfg
    changed = ScreenConfig(**{**cfg.to_dict(), "voltage_model": "other"})
    assert changed.stage_key("candidates") == cfg.stage_key("candidates")
    assert changed.stage_key("scores") != cfg.stage_key("scores")
    ranking_only = ScreenConfig(**{**cfg.to_dict(), "max_hull": 0.3})
    assert ranking_only.stage_key("scores") == cfg.stage_key("scores")
    more = ScreenConfig(**{**cfg.to_dict(), "metals": ["Co", "Ni"]})
    assert more.stage_key("candidates") != cfg.stage_key("candidates")
    for bad, match in (
        ({"working_ion": "Xe"}, "unsupported working ion"),
        ({"prototypes": ["spinel"], "metals": []}, "needs --metals"),
        ({"voltage_window": (4, 2)}, "must be lower"),
        ({"objective": "cheap"}, "unknown objective"),
        ({"hosts": [], "prototypes": []}, "nothing to screen"),
    ):
        with pytest.raises(ValueError, match=match):
            ScreenConfig(**{**cfg.to_dict(), **bad}).check()
    with pytest.raises(ValueError, match="unknown prototype"):
        prototype_name("perovskite")
    with pytest.raises(ValueError, match="unknown screen options"):
        ScreenConfig.from_dict({"hosts": [], "colour": "red"})


def test_a_model_shipped_after_a_run_invalidates_its_scores(tmp_path, monkeypatch) -> None:
    import crystalgnn.training.resolve as resolve

    cfg = ScreenConfig(hosts=["x.cif"], voltage_model="electrode-voltage-test")
    monkeypatch.setattr(resolve, "shipped_models_dir", lambda: tmp_path)
    before = cfg.stage_key("scores")
    (tmp_path / "electrode-voltage-test.ckpt").write_bytes(b"weights")
    after = cfg.stage_key("scores")
    assert before != after and cfg.stage_key("candidates") == ScreenConfig(hosts=["x.cif"]).stage_key("candidates")
