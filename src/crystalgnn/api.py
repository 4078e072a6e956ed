"""The Python API in three calls, as users of matgl and pymatgen expect it.

Example::

    import crystalgnn

    model = crystalgnn.load_model("mp-band-gap")  # shipped name, run folder, .ckpt or .pth.tar
    preds = model.predict([structure, atoms])  # pymatgen Structures / ASE Atoms / paths
    preds.values, preds.to_frame()

    data = crystalgnn.load_dataset("perovskites")  # any source the readers accept
    run = crystalgnn.train("perovskites", target="heat_all", epochs=30, out="runs/perov")
    run.metrics["test"]["mae"], run.run_dir

Everything the CLI does goes through these functions and the modules they call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_model(ref: str | Path) -> Any:
    """A :class:`~crystalgnn.prediction.predictor.Predictor` for a shipped model name (``crystalgnn
    models`` lists them), a run folder, a ``.ckpt`` file, or an original CGCNN ``.pth.tar``.

    Its ``predict(x)`` takes a pymatgen ``Structure`` or ASE ``Atoms`` (one or a list), a path, a
    dataset name or a :class:`~crystalgnn.data.dataset.CrystalDataset`, and returns
    :class:`~crystalgnn.prediction.results.Predictions` (``.ids``, ``.values``, ``.rejected``,
    ``.to_frame()``), or per-site predictions for a per-site model.
    """
    from crystalgnn.prediction import Predictor

    return Predictor.load(ref)


def load_dataset(source: Any, targets: str | list[str] | None = None, **options: Any) -> Any:
    """:func:`crystalgnn.data.load_dataset` (every source the readers accept, rejected entries
    kept with their reasons), with one target accepted as a string and no progress bars unless
    ``show_progress=True``.
    """
    from crystalgnn.data import load_dataset as read_dataset

    if isinstance(targets, str):
        targets = [targets]
    options.setdefault("show_progress", False)
    return read_dataset(source, targets=targets, **options)


def train(
    source: Any = None,
    target: str | list[str] | None = None,
    *,
    config: Any = None,
    figures: bool = True,
    **options: Any,
) -> Any:
    """Train a model and test it; returns a :class:`~crystalgnn.training.run.RunResult`
    (``run_dir``, ``metrics``). Re-running the same call resumes an interrupted run.

    Args:
        source: file, folder or dataset short name.
        target: graph-level target name(s).
        config: a :class:`~crystalgnn.training.config.TrainConfig`, a dict or a YAML path to
            start from (keyword options override it).
        figures: draw the run's figures (training curve, parity / ROC).
        **options: any :class:`~crystalgnn.training.config.TrainConfig` field (``model``,
            ``epochs``, ``out``, ``site_target``, ``readout``, ``model_options``, ...).
    """
    from crystalgnn.training.config import TrainConfig
    from crystalgnn.training.run import train as run_train

    if isinstance(config, TrainConfig):
        base = config.to_dict()
    elif isinstance(config, str | Path):
        base = TrainConfig.from_yaml(config).to_dict()
    else:
        base = dict(config or {})
    if source is not None:
        base["source"] = str(source)
    if target is not None:
        base["targets"] = [target] if isinstance(target, str) else list(target)
    options.setdefault("progress", False)
    cfg = TrainConfig.from_dict({**base, **options})
    if cfg.ensemble > 1:
        from crystalgnn.training.ensemble import train_ensemble

        return train_ensemble(cfg)
    result = run_train(cfg)
    if figures:
        from crystalgnn.evaluation.reports import run_figures

        run_figures(result.run_dir)
    return result
