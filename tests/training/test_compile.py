"""``train --compile``: the model compiled in place with ``torch.compile``; same parameter names,
checkpoints that load into an eager model, results equal to the eager run up to float round-off."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Structure

from crystalgnn.graphs.atom_features import AtomFeaturizer
from crystalgnn.graphs.batching import collate_graphs
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.models.registry import build_model, make_config
from crystalgnn.training.run import train
from tinydata import perovskite_rows, small_config, write_jsonl


def test_compiled_training_equals_eager_training(tmp_path) -> None:
    table = write_jsonl(tmp_path / "perov12.jsonl", perovskite_rows(12))
    eager = train(small_config(table, tmp_path / "eager", split="0.5,0.25,0.25"))
    compiled = train(small_config(table, tmp_path / "compiled", split="0.5,0.25,0.25", compile_model=True))
    assert json.loads((compiled.run_dir / "metrics.json").read_text())["epochs_run"] == 2
    a = pd.read_csv(eager.run_dir / "predictions.csv")
    b = pd.read_csv(compiled.run_dir / "predictions.csv")
    assert a["id"].tolist() == b["id"].tolist()
    np.testing.assert_allclose(
        b["predicted heat_all"], a["predicted heat_all"], rtol=5e-3, atol=1e-3
    )  # Adam magnifies round-off a little
    best = torch.load(compiled.run_dir / "checkpoints" / "best.ckpt", weights_only=False)["state_dict"]
    assert not any("_orig_mod" in k for k in best)  # checkpoints keep the eager parameter names


def test_compiled_alignn_forward_and_gradients_equal_eager() -> None:
    torch.manual_seed(0)
    cfg = make_config("alignn", {"hidden_features": 32, "embedding_features": 16, "alignn_layers": 1, "gcn_layers": 1})
    graphs, _ = build_graph_list(
        [Structure.from_str(r["cif"], fmt="cif") for r in perovskite_rows(6)],
        cfg.graph_config(),
        n_jobs=1,
        show_progress=False,
    )
    table = torch.tensor(AtomFeaturizer.cgcnn().matrix(), dtype=torch.float32)
    eager = build_model("alignn", cfg, table, out_dim=1)
    compiled = build_model("alignn", cfg, table, out_dim=1)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile(dynamic=True)
    for part in (graphs[:4], graphs[2:]):  # two batch shapes: no recompilation needed to be right
        batch = collate_graphs(part)
        ye, yc = eager(batch), compiled(batch)
        torch.testing.assert_close(yc, ye, rtol=1e-4, atol=1e-5)
        eager.zero_grad(), compiled.zero_grad()
        ye.sum().backward()
        yc.sum().backward()
        for (name, pe), pc in zip(eager.named_parameters(), compiled.parameters(), strict=True):
            torch.testing.assert_close(pc.grad, pe.grad, rtol=1e-3, atol=1e-5, msg=name)
    assert [k for k, _ in compiled.named_parameters()] == [k for k, _ in eager.named_parameters()]
