"""``crystalgnn explain sites`` end to end: a 2-epoch site-linear CGCNN trained through the CLI
on 16 perovskites, explained together with a bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crystalgnn.cli import app
from tinydata import OVERLAP_CIF, perovskite_rows, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def site_linear_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("explain-sites")
    table = write_jsonl(folder / "perov.jsonl", perovskite_rows(16))
    run = folder / "run"
    r = CliRunner().invoke(
        app,
        ["train", str(table), "-t", "heat_all", "--readout", "site-linear", "--epochs", "2", "--batch-size", "8",
         "--optimizer", "adam", "--lr", "0.003", "-m", "atom_fea_len=16", "-m", "n_conv=1", "-m", "h_fea_len=16",
         "--split", "0.6,0.2,0.2", "-j", "1", "--threads", "1", "--no-progress", "-o", str(run)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return run, table


def test_explain_sites_writes_contributions_structures_and_maps(site_linear_run, tmp_path) -> None:
    run, table = site_linear_run
    bad = tmp_path / "overlap.cif"
    bad.write_text(OVERLAP_CIF)
    out = tmp_path / "sites"
    r = CliRunner().invoke(app, ["explain", "sites", str(run), str(table), str(bad), "--out", str(out), "-j", "1"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    # the bad input is named with its reason, the 16 perovskites are explained
    assert "1 inputs rejected" in text and "overlap" in text
    assert "16 structures, 80 sites: heat_all = mean of the site contributions" in text
    for role in ("A", "B", "X"):
        assert f"{role} sites: lowest and highest mean contribution" in text
    df = pd.read_csv(out / "site_contributions.csv", keep_default_na=False)
    assert list(df.columns) == ["id", "site_index", "element", "role", "contribution", "prediction", "target"]
    assert len(df) == 80 and df["id"].nunique() == 16
    pooled = df.groupby("id")["contribution"].mean()
    np.testing.assert_allclose(pooled.to_numpy(), df.groupby("id")["prediction"].first().to_numpy(), rtol=1e-9)
    # every perovskite has one A, one B and three X sites (or none, when the coordination rule does not apply)
    for _, g in df.groupby("id"):
        assert sorted(g["role"]) in (["A", "B", "X", "X", "X"], [""] * 5)
    assert (df["role"] != "").sum() >= 60
    means = pd.read_csv(out / "element_means.csv", keep_default_na=False)
    assert set(means["role"]) >= {"A", "B", "X"} and means["count"].sum() == 80
    for name in ("map_A.png", "map_B.png", "map_X.png"):
        assert (out / name).stat().st_size > 10_000
    index = pd.read_csv(out / "structures" / "index.csv")
    assert len(index) == 16
    doc = json.loads((out / "structures" / index["json"][0]).read_text())
    props = [site["properties"] for site in doc["sites"]]
    assert all("contribution_heat_all" in p and "site_role" in p for p in props)
    rejected = pd.read_csv(out / "rejected.csv")
    assert rejected["id"].tolist() == ["overlap"]


def test_explain_sites_refuses_models_without_contributions(tmp_path) -> None:
    """A shipped graph-readout model: one line naming the fix, exit 1."""
    r = CliRunner().invoke(
        app, ["explain", "sites", "perovskite-formation-energy", "perovskites", "--out", str(tmp_path / "o")]
    )
    assert r.exit_code == 1
    assert "--readout site-linear" in " ".join(r.output.split()) and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_explain_sites_options_are_checked(site_linear_run, tmp_path) -> None:
    run, table = site_linear_run
    r = CliRunner().invoke(app, ["explain", "sites", str(run), str(table), "--out", str(tmp_path), "--roles", "abc"])
    assert r.exit_code == 2 and "--roles must be one of auto, perovskite, none" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["explain", "sites", str(run), str(table), "-o", str(tmp_path / "t"), "-t", "gap"])
    assert r.exit_code == 1 and "the model predicts heat_all, not 'gap'" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["explain", "sites", "--help"])
    assert r.exit_code == 0 and "site-linear" in r.output and "[default: auto]" in " ".join(r.output.split())
