"""``crystalgnn explain structure`` end to end on a 2-epoch CGCNN trained in the test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Structure
from typer.testing import CliRunner

from crystalgnn.cli import app
from tinydata import perovskite_rows, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_and_cifs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("explain-structure")
    rows = perovskite_rows(30)
    table = write_jsonl(root / "perov.jsonl", rows)
    run = root / "run"
    args = ["train", str(table), "-t", "heat_all", "--epochs", "2", "--batch-size", "8", "-o", str(run),
            "--optimizer", "adam", "--lr", "0.003", "-m", "atom_fea_len=16", "-m", "n_conv=2", "-j", "1",
            "--threads", "1", "--split", "0.6,0.2,0.2", "--no-progress"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    cifs = []
    for row in rows[:2]:
        path = root / f"{row['id']}.cif"
        path.write_text(row["cif"])
        cifs.append(path)
    return run, cifs


@pytest.mark.parametrize("method", ["ig", "gnnexplainer"])
def test_explain_structure_writes_tables_and_pictures(run_and_cifs, tmp_path: Path, method: str) -> None:
    run, cifs = run_and_cifs
    bad = tmp_path / "broken.cif"
    bad.write_text("not a cif")
    out = tmp_path / "out"
    args = ["explain", "structure", str(run), *map(str, cifs), str(bad), "--method", method, "--top", "2",
            "--out", str(out), "--epochs", "20"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "broken.cif" in r.output  # the bad file is named, the others explained
    atoms = pd.read_csv(out / "atoms.csv")
    bonds = pd.read_csv(out / "bonds.csv")
    n_atoms = sum(len(Structure.from_file(c)) for c in cifs)
    assert len(atoms) == n_atoms and atoms["importance"].ge(0).all()
    assert set(atoms["id"]) == {c.stem for c in cifs}
    assert {"site_i", "element_i", "site_j", "element_j", "length", "importance"} <= set(bonds.columns)
    assert bonds["directions"].isin([1, 2]).all()
    for c in cifs:  # the top atoms printed are the CSV's first rows
        first = atoms[atoms["id"] == c.stem].iloc[0]
        assert c.stem in r.output and f"{first['element']}" in r.output
        assert (out / f"{c.stem}_atoms.png").stat().st_size > 1000
    assert (out / "elements.png").stat().st_size > 1000


def test_explain_structure_rejects_an_unknown_method(run_and_cifs, tmp_path: Path) -> None:
    run, cifs = run_and_cifs
    r = CliRunner().invoke(
        app, ["explain", "structure", str(run), str(cifs[0]), "--method", "lime", "--out", str(tmp_path)]
    )
    assert r.exit_code == 1
    assert "unknown method" in r.output and "gnnexplainer" in r.output
