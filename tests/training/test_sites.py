"""Per-site learning: equivariance of per-site predictions, masking, and a tiny CLI run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from crystalgnn.data.readers import read_objects
from crystalgnn.graphs.crystal_graph import build_graph
from crystalgnn.prediction import Predictor
from crystalgnn.training.losses import masked_regression_loss
from crystalgnn.training.targets import TargetSpec, attach_site_targets
from crystalgnn.training.task import CrystalTask

SMALL = {"atom_fea_len": 16, "h_fea_len": 16, "n_conv": 2}
GRAPH = {"radius": 8.0, "max_neighbors": 12}


def site_task(mean: float = 0.0, std: float = 1.0, hidden: int = 128) -> CrystalTask:
    """A per-site CGCNN task on the target ``q`` (what ``--site-target q`` trains)."""
    target = TargetSpec(["q"], level="site", mean=[mean], std=[std]).to_dict()
    return CrystalTask("cgcnn", SMALL, GRAPH, target, readout="site", readout_options={"site_head_hidden": hidden})


def _triclinic() -> Structure:
    """Low symmetry, so no equal-distance ties decide which 12 neighbours are kept."""
    return Structure(
        Lattice.from_parameters(4.1, 4.5, 5.2, 80, 95, 100),
        ["Sr", "Ti", "O", "O", "Fe"],
        [[0, 0, 0], [0.5, 0.45, 0.52], [0.5, 0.5, 0.03], [0.1, 0.5, 0.5], [0.52, 0.02, 0.55]],
    )


def _predictor(seed: int = 0) -> Predictor:
    torch.manual_seed(seed)
    task = site_task(hidden=16)
    assert task.model.level == "site" and task.model.readout.mlp.conv_to_fc.out_features == 16
    # non-trivial batch-norm statistics, so eval mode is not an identity
    for m in task.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    pred = Predictor(task)
    assert pred.kind == "site" and pred.site_target == "q"
    return pred


def _predict(pred: Predictor, structures: list[Structure]) -> list[np.ndarray]:
    res = pred.predict(read_objects(structures), show_progress=False)
    assert not res.rejected
    return res.values


def test_site_predictions_permute_with_atoms() -> None:
    s = _triclinic()
    perm = np.array([3, 0, 4, 2, 1])
    permuted = Structure.from_sites([s[int(i)] for i in perm])
    pred = _predictor()
    a, b = _predict(pred, [s, permuted])
    assert len(a) == len(s) and np.std(a) > 1e-6  # per-site, not one value broadcast
    np.testing.assert_allclose(b, a[perm], rtol=1e-5, atol=1e-5)


def test_supercell_images_get_the_original_prediction() -> None:
    s = _triclinic()
    s.add_site_property("orig", list(range(len(s))))
    sc = s.copy()
    sc.make_supercell([2, 2, 2])
    assert len(sc) == 8 * len(s)
    pred = _predictor(1)
    a, b = _predict(pred, [s, sc])
    orig = np.array(sc.site_properties["orig"])
    np.testing.assert_allclose(b, a[orig], rtol=1e-4, atol=1e-4)


def test_masked_sites_do_not_contribute_to_the_loss() -> None:
    pred = torch.tensor([0.5, -1.0, 2.0, 0.1], requires_grad=True)
    y = torch.tensor([0.4, float("nan"), 1.5, 0.0])
    loss, n = masked_regression_loss(pred, y)
    assert int(n) == 3
    assert float(loss.detach()) == pytest.approx(float(((pred.detach()[[0, 2, 3]] - y[[0, 2, 3]]) ** 2).mean()))
    loss.backward()
    assert pred.grad is not None and float(pred.grad[1]) == 0.0

    # the whole model: the loss and every gradient with site 1 masked (NaN) equal those of a
    # hand-written MSE over the other sites, whatever label site 1 would have had
    torch.manual_seed(0)
    task = site_task(mean=0.2, std=1.5)
    task.train()
    s = _triclinic()

    def grads() -> list[torch.Tensor]:
        return [p.grad.clone() for p in task.model.parameters() if p.grad is not None]

    g = attach_site_targets([build_graph(s)], [np.array([0.1, np.nan, 0.3, -0.2, 3.0])])[0]
    task.zero_grad()
    loss, _, n = task._loss(Batch.from_data_list([g]))
    loss.backward()
    masked = (float(loss.detach()), grads())
    assert int(n) == 4
    for hidden_label in (9.0, -4.0):
        labelled = torch.tensor([0.1, hidden_label, 0.3, -0.2, 3.0])
        task.zero_grad()
        out = task.model(Batch.from_data_list([g]))[:, 0]
        keep = [0, 2, 3, 4]
        manual = ((out[keep] - (labelled[keep] - 0.2) / 1.5) ** 2).mean()
        manual.backward()
        assert float(manual) == pytest.approx(masked[0], rel=1e-5)
        for a, b in zip(masked[1], grads(), strict=True):
            torch.testing.assert_close(a, b)
    # and an unmasked label does count
    g2 = attach_site_targets([build_graph(s)], [np.array([0.1, 9.0, 0.3, -0.2, 3.0])])[0]
    loss2, _, _ = task._loss(Batch.from_data_list([g2]))
    assert float(loss2) != pytest.approx(masked[0])


def test_site_metrics_count_unlabelled_sites() -> None:
    import pandas as pd

    from crystalgnn.metrics import per_element_metrics, site_metrics

    df = pd.DataFrame(
        {
            "id": ["a", "a", "b"],
            "site_index": [0, 1, 0],
            "element": ["Fe", "O", "Fe"],
            "target": [2.0, np.nan, 3.0],
            "prediction": [2.5, 0.0, 3.0],
        }
    )
    m = site_metrics(df)
    assert m["n"] == 2 and m["n_unlabelled"] == 1 and m["n_sites"] == 3 and m["n_structures"] == 2
    assert m["mae"] == pytest.approx(0.25)
    table = per_element_metrics(df).set_index("element")
    assert table.loc["Fe", "mae"] == pytest.approx(0.25) and table.loc["O", "n_unlabelled"] == 1


# --------------------------------------------------------------------------- the CLI end to end
VALUES = {"Na": 0.3, "Cl": -0.3, "Si": 0.0, "Sr": 0.1, "Ti": -0.8, "O": 0.05, "Li": 0.0, "Fe": -3.7}


def _write_table(path: Path, structures: dict[str, Structure], n: int = 16) -> dict[str, list]:
    rng = np.random.default_rng(0)
    base = list(structures.values())
    labels = {}
    with path.open("w") as f:
        for i in range(n):
            s = base[i % len(base)].copy()
            s.apply_strain(rng.uniform(-0.03, 0.03, 3))
            q = [VALUES[site.specie.symbol] + 0.01 * rng.normal() for site in s]
            if i % 4 == 0:
                q[0] = None  # an unlabelled site: masked, counted, never dropped
            labels[f"x{i}"] = q
            f.write(json.dumps({"id": f"x{i}", "structure": s.as_dict(), "q": q}) + "\n")
    return labels


def test_tiny_site_run_trains_evaluates_and_predicts_via_cli(tmp_path: Path, structures: dict[str, Structure]) -> None:
    from typer.testing import CliRunner

    from crystalgnn.cli import app

    table = tmp_path / "sites.jsonl"
    labels = _write_table(table, structures)
    run = tmp_path / "run"
    runner = CliRunner()
    args = [
        "train", str(table), "--site-target", "abs_q", "--epochs", "2", "--batch-size", "4",
        "--split", "0.5,0.25,0.25", "--optimizer", "adam", "--lr", "0.005", "--out", str(run),
        "--no-progress", "--threads", "1", "--cache-dir", str(tmp_path / "cache"),
        "-m", "atom_fea_len=16", "-m", "h_fea_len=16", "-m", "n_conv=2",
    ]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    for f in ("config.yaml", "split.json", "metrics.json", "predictions.csv", "parity.png", "per_element.csv",
              "checkpoints/best.ckpt", "checkpoints/last.ckpt", "log/metrics.csv"):  # fmt: skip
        assert (run / f).is_file(), f
    metrics = json.loads((run / "metrics.json").read_text())
    split = json.loads((run / "split.json").read_text())
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(labels)  # split by structure
    n_test_sites = sum(len(labels[i]) for i in split["test"])
    n_test_nan = sum(v is None for i in split["test"] for v in labels[i])
    assert metrics["test"]["n_sites"] == n_test_sites
    assert metrics["test"]["n_unlabelled"] == n_test_nan and metrics["test"]["n"] == n_test_sites - n_test_nan
    assert metrics["sites"]["train"]["unlabelled"] == sum(v is None for i in split["train"] for v in labels[i])
    with (run / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    unit = metrics["units"]["abs_q"]
    label = f"abs_q ({unit})" if unit else "abs_q"
    assert list(rows[0]) == ["id", "site_index", "element", label, f"predicted {label}"]  # headers name target and unit
    rows = [{"target": r[label], "prediction": r[f"predicted {label}"], **r} for r in rows]
    assert len(rows) == n_test_sites
    row = rows[0]
    expected = labels[row["id"]][int(row["site_index"])]
    assert (row["target"] == "") if expected is None else float(row["target"]) == pytest.approx(abs(expected))

    # re-running the finished command reports it without training again
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output

    ev = tmp_path / "ev"
    r = runner.invoke(app, ["evaluate", str(run), str(table), "--out", str(ev)])
    assert r.exit_code == 0, r.output
    ev_metrics = json.loads((ev / "metrics.json").read_text())
    assert ev_metrics["metrics"]["n_sites"] == sum(len(v) for v in labels.values())
    assert (ev / "per_element_mae.png").is_file() and (ev / "per_element.csv").is_file()

    out_csv, sdir = tmp_path / "pred.csv", tmp_path / "structs"
    r = runner.invoke(app, ["predict", str(run), str(table), "--output", str(out_csv), "--structures-out", str(sdir)])
    assert r.exit_code == 0, r.output
    with out_csv.open() as f:
        prows = list(csv.DictReader(f))
    assert len(prows) == sum(len(v) for v in labels.values())
    pred_col = next(c for c in prows[0] if c.startswith("predicted abs_q"))  # the header names target and unit
    assert {"id", "site_index", "element"} <= set(prows[0])
    prows = [{"prediction": p[pred_col], **p} for p in prows]
    s = Structure.from_file(sdir / "x3.json")
    preds_x3 = [float(p["prediction"]) for p in prows if p["id"] == "x3"]
    np.testing.assert_allclose(s.site_properties["predicted_abs_q"], preds_x3, rtol=1e-6)
    from pymatgen.io.cif import CifFile

    block = next(iter(CifFile.from_file(str(sdir / "x3.cif")).data.values()))
    np.testing.assert_allclose([float(v) for v in block.data["_atom_site_predicted_abs_q"]], preds_x3, rtol=1e-6)
