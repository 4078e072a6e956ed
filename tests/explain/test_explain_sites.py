"""Per-site contributions (:mod:`crystalgnn.explain.sites`): they pool exactly into the
prediction, carry roles, and are written as structures and periodic-table maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystalgnn.explain.sites import COLUMNS, NotSiteLinearError, explain_sites, site_contributions
from crystalgnn.models.registry import make_config
from crystalgnn.prediction import Predictor
from crystalgnn.training.targets import TargetSpec
from crystalgnn.training.task import CrystalTask
from tinydata import low_symmetry_cells

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = {"atom_fea_len": 16, "h_fea_len": 16, "n_conv": 2}


def predictor(table, *, readout: str = "site-linear", reduce: str = "mean", kind: str = "regression") -> Predictor:
    """An untrained CGCNN with a non-trivial normaliser (mean 1.3, std 0.7), so de-normalising is tested."""
    torch.manual_seed(0)
    cfg = make_config("cgcnn", TINY)
    if kind == "classification":
        spec = TargetSpec(["metal"], kind="classification")
    else:
        spec = TargetSpec(["e"], units={"e": "eV"}, mean=[1.3], std=[0.7])
    options = {"site_reduce": reduce} if readout == "site-linear" else None
    task = CrystalTask(
        "cgcnn", cfg.to_dict(), cfg.graph_config().to_dict(), spec.to_dict(), readout=readout,
        readout_options=options, atom_table=table,
    )  # fmt: skip
    return Predictor(task, source="tiny")


def mixed_structures(structures) -> list[Structure]:
    """Cells of 2 to 10 sites: three low-symmetry ones, cubic SrTiO3 and a 2x1x1 supercell of it."""
    s = structures["srtio3"]
    return [*low_symmetry_cells(4), s, s * (2, 1, 1)]


@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_contributions_pool_exactly_into_the_prediction(table, structures, reduce) -> None:
    pred = predictor(table, reduce=reduce)
    structs = mixed_structures(structures)
    res = explain_sites(pred, structs, n_jobs=1)
    df = res.frame
    assert tuple(df.columns) == COLUMNS and res.reduce == reduce and res.unit == "eV" and res.target == "e"
    assert len(df) == sum(len(s) for s in structs) and not res.rejected
    pooled = df.groupby("id", sort=False)["contribution"].agg(reduce)
    first = df.groupby("id", sort=False)["prediction"].agg(["first", "nunique"])
    assert (first["nunique"] == 1).all()
    np.testing.assert_allclose(pooled.to_numpy(), first["first"].to_numpy(), rtol=1e-12, atol=1e-12)
    # ... and the prediction is the model's (Predictor.predict, float32)
    values = pred.predict(structs, n_jobs=1).values[:, 0]
    np.testing.assert_allclose(first["first"].to_numpy(), values, rtol=2e-5, atol=2e-5)
    # rows follow the structures' sites
    for sid, s in zip(res.ids, structs, strict=True):
        rows = df[df["id"] == sid]
        assert rows["site_index"].tolist() == list(range(len(s)))
        assert rows["element"].tolist() == [site.specie.symbol for site in s]
    # roles: the (distorted and cubic) SrTiO3 cells are perovskites, LiFeO2 and NaCl get none
    srtio3 = df[df["id"] == res.ids[3]]
    assert srtio3["role"].tolist() == df[df["id"] == res.ids[0]]["role"].tolist() == ["A", "B", "X", "X", "X"]
    assert df[df["id"] == res.ids[4]]["role"].value_counts().to_dict() == {"X": 6, "A": 2, "B": 2}
    assert set(df[df["id"].isin(res.ids[1:3])]["role"]) == {""}
    # the contributions differ from site to site (not the prediction copied onto every atom)
    assert srtio3["contribution"].nunique() > 1


def test_site_contributions_frame_and_roles_none(table, structures) -> None:
    pred = predictor(table)
    df = site_contributions(pred, [structures["srtio3"], structures["nacl"]], roles="none", n_jobs=1)
    assert list(df.columns) == list(COLUMNS) and set(df["role"]) == {""} and df.attrs["rejected"] == []
    means = explain_sites(pred, [structures["srtio3"]], n_jobs=1).element_means()
    assert list(means.columns) == ["role", "element", "mean", "std", "count"]
    assert dict(zip(means["element"], means["count"], strict=True)) == {"Sr": 1, "Ti": 1, "O": 3}


def test_models_without_site_contributions_are_refused(table, structures) -> None:
    for readout, kind, why in [
        ("graph", "regression", "trained with --readout graph: per-site contributions need a model trained with"),
        ("site-linear", "classification", "classification model: per-site contributions are defined for regression"),
    ]:
        with pytest.raises(NotSiteLinearError, match=why):
            explain_sites(predictor(table, readout=readout, kind=kind), [structures["nacl"]], n_jobs=1)
    with pytest.raises(ValueError, match="the model predicts e, not 'gap'"):
        explain_sites(predictor(table), [structures["nacl"]], target="gap", n_jobs=1)


def test_bad_structures_are_rejected_and_the_rest_explained(table, structures) -> None:
    bad = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])  # atoms 0.2 Å apart
    res = explain_sites(predictor(table), [structures["srtio3"], bad, structures["nacl"]], n_jobs=1)
    assert len(res.ids) == 2 and len(res.frame) == 7
    assert len(res.rejected) == 1 and "overlap" in res.rejected[0].reason.lower()


def test_structures_and_maps_are_written(table, structures, tmp_path) -> None:
    res = explain_sites(predictor(table), mixed_structures(structures), n_jobs=1)
    res.write_structures(tmp_path / "structures")
    index = (tmp_path / "structures" / "index.csv").read_text().splitlines()
    assert index[0] == "id,json,cif" and len(index) == 1 + len(res.ids)
    meta = json.loads((tmp_path / "structures" / "site_property.json").read_text())
    assert meta["site_property"] == "contribution_e" and meta["unit"] == "eV"
    json_name = index[4].split(",")[1]  # SrTiO3
    s = Structure.from_file(tmp_path / "structures" / json_name)
    rows = res.frame[res.frame["id"] == res.ids[3]]
    np.testing.assert_allclose(s.site_properties["contribution_e"], rows["contribution"].to_numpy())
    assert s.site_properties["site_role"] == ["A", "B", "X", "X", "X"]
    cif = (tmp_path / "structures" / json_name.replace(".json", ".cif")).read_text()
    assert "_atom_site_contribution_e" in cif
    maps = res.write_maps(tmp_path / "maps")
    assert sorted(p.name for p in maps) == ["map_A.png", "map_B.png", "map_X.png", "map_other.png"]
    assert all(p.stat().st_size > 10_000 for p in maps)
    only = explain_sites(predictor(table), [structures["nacl"]], n_jobs=1).write_maps(tmp_path / "plain")
    assert [p.name for p in only] == ["map_all.png"]


def test_an_ensemble_averages_its_members_contributions(table, structures) -> None:
    """The members' mean site terms pool exactly into the ensemble's mean prediction."""
    from crystalgnn.prediction import EnsemblePredictor

    one, two = predictor(table), predictor(table)
    for p in two.task.model.parameters():  # a second member with other weights
        p.data.add_(0.05 * torch.randn_like(p))
    ens = EnsemblePredictor([one, two], source="ens")
    structs = mixed_structures(structures)
    res = explain_sites(ens, structs, n_jobs=1)
    alone = [explain_sites(m, structs, n_jobs=1).frame["contribution"].to_numpy() for m in (one, two)]
    np.testing.assert_allclose(res.frame["contribution"].to_numpy(), (alone[0] + alone[1]) / 2, rtol=1e-12)
    assert not np.allclose(alone[0], alone[1])
    first = res.frame.groupby("id", sort=False)["prediction"].first().to_numpy()
    np.testing.assert_allclose(first, ens.predict(structs, n_jobs=1).values[:, 0], rtol=2e-5, atol=2e-5)
