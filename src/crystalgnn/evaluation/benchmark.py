"""The thesis' model comparison as one resumable command: every model x target x repeat.

::

    from crystalgnn.evaluation.benchmark import run_benchmark
    res = run_benchmark("perovskites", ["heat_all"], ["mean", "per-element", "soap-svr", "soap-mlp", "cgcnn"],
                        out="bench/perov", repeats=3, epochs=30)
    print(res.summary_markdown)

Output folder::

    settings.json      what defines the benchmark (source, protocol, split, subset, epochs, options)
    results.csv        one row per finished cell (model, target, repeat, metrics, time, size)
    summary.csv/.md    mean ± std per model x target
    benchmark.png      grouped bars with error bars: MAE, RMSE, R², training time (Fig. 14 style)
    splits/r<k>.json   the train/val/test ids of repeat (or fold) k
    runs/<model>-<target>-r<k>/   one run folder per cell (GNN runs are ``train`` run folders)
    subset.jsonl.gz    the structures used, when ``subset`` is given (what the GNN runs read)
    rejected.csv       entries left out (missing labels, no graph for a GNN), with the reason

Protocols. ``random``: repeat ``k`` uses ``random_split(n, split, seed=k)`` for every model and
target; the baselines train on the training part only, like the networks. ``matbench``: 5-fold
cross-validation with Matbench's folds (``KFold(5, shuffle=True, random_state=18012019)`` over
the dataset order, :func:`~crystalgnn.data.splits.kfold_splits`); repeat ``k`` is fold ``k``.
The networks carve their validation set (``val / (train + val)`` of ``split``) out of the
training folds; the baselines, which need none, train on the whole training folds.

Every model sees the same entries: those with all requested labels (and, when a graph network is
in the list, a graph), so every row of a repeat has the same test set.

Resuming: a cell recorded in ``results.csv`` is never recomputed; a network cell interrupted
half-way resumes from its run folder's ``last.ckpt``. Re-running with other models, targets or
more repeats adds cells; changing anything in ``settings.json`` is refused (use another folder).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.baselines.runner import BASELINES, dataset_soap, fit_predict_baseline
from crystalgnn.baselines.soap import SoapConfig
from crystalgnn.baselines.soap_mlp import THESIS_SOAP, train_soap_mlp
from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.readers import load_source
from crystalgnn.data.splits import MATBENCH_SEED, Split, kfold_splits, parse_ratios, random_split
from crystalgnn.metrics import classification_metrics, regression_metrics
from crystalgnn.progress import progress
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.run import train
from crystalgnn.training.targets import infer_task

#: SOAP -> MLP variants: name -> SoapMLPConfig options
SOAP_MLP_VARIANTS: dict[str, dict[str, Any]] = {
    "soap-mlp": {},
    "soap-mlp-raw": {"standardize": False, "input_softplus": True},  # unscaled, as the thesis
    "soap-mlp-noclip": {"clip": None},  # plain standardisation: explodes on rare/noise features
}
#: regression metrics, classification metrics (result columns)
REGRESSION_METRICS = ("mae", "rmse", "r2")
CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "f1", "precision", "recall")
RESULT_COLUMNS = (
    "model", "target", "repeat", "task", "unit", "n_train", "n_val", "n_test",
    *REGRESSION_METRICS, *CLASSIFICATION_METRICS,
    "train_time_s", "feature_time_s", "n_parameters", "model_bytes", "run_dir", "finished",
)  # fmt: skip
#: TrainConfig fields the benchmark sets itself (not allowed in ``train_options``)
_OWN_FIELDS = ("source", "targets", "site_target", "model", "subset", "subset_seed", "split", "split_file", "seed", "epochs", "out")


class BenchmarkMismatch(RuntimeError):
    """The output folder holds a benchmark with other settings."""


def gnn_names() -> list[str]:
    from crystalgnn.models.registry import model_names

    return [m for m in model_names() if m != "soap-mlp"]


def model_kind(name: str) -> str:
    """``"baseline"`` (mean, per-element, soap-svr), ``"soap-mlp"`` or ``"gnn"``."""
    if name in BASELINES:
        return "baseline"
    if name in SOAP_MLP_VARIANTS:
        return "soap-mlp"
    if name in gnn_names():
        return "gnn"
    known = [*BASELINES, *SOAP_MLP_VARIANTS, *gnn_names()]
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(known)}")


def available_models() -> list[str]:
    return [*BASELINES, *SOAP_MLP_VARIANTS, *gnn_names()]


# --------------------------------------------------------------------------- result store
class ResultStore:
    """``results.csv`` as rows keyed by ``key_fields``; every added row is written at once."""

    def __init__(self, path: str | Path, key_fields: Sequence[str], columns: Sequence[str]) -> None:
        import pandas as pd

        self.path = Path(path)
        self.key_fields = tuple(key_fields)
        self.columns = list(columns)
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file() and self.path.stat().st_size > 0:
            self.rows = pd.read_csv(self.path).to_dict("records")

    def key(self, row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(row[k]) for k in self.key_fields)

    def done(self, **key: Any) -> bool:
        want = tuple(str(key[k]) for k in self.key_fields)
        return any(self.key(r) == want for r in self.rows)

    def add(self, row: dict[str, Any]) -> None:
        k = self.key(row)
        self.rows = [r for r in self.rows if self.key(r) != k] + [row]
        self.save()

    def frame(self) -> Any:
        import pandas as pd

        cols = self.columns + [c for r in self.rows for c in r if c not in self.columns]
        return pd.DataFrame(self.rows, columns=list(dict.fromkeys(cols)))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".csv.tmp")
        self.frame().to_csv(tmp, index=False)
        os.replace(tmp, self.path)


# --------------------------------------------------------------------------- data
@dataclass
class BenchmarkData:
    """The entries every model sees, where the networks read them from, and SOAP on demand."""

    dataset: CrystalDataset
    gnn_source: str
    soap_config: SoapConfig = THESIS_SOAP
    n_jobs: int | None = None
    show_progress: bool = True
    _soap: np.ndarray | None = None
    feature_time_s: float = 0.0

    def soap(self) -> np.ndarray:
        if self._soap is None:
            t0 = time.perf_counter()
            self._soap = dataset_soap(self.dataset, self.soap_config, n_jobs=self.n_jobs, show_progress=self.show_progress)
            self.feature_time_s = time.perf_counter() - t0
        return self._soap


def _train_config_for(train_options: dict[str, Any]) -> TrainConfig:
    bad = sorted(set(train_options) - {f.name for f in dataclasses.fields(TrainConfig)})
    own = sorted(set(train_options) & set(_OWN_FIELDS))
    if bad or own:
        raise KeyError(f"train_options: unknown {bad} / set by the benchmark {own}")
    return TrainConfig(**train_options)


def _graph_rejections(ds: CrystalDataset, gnn_models: Sequence[str], train_options: dict[str, Any], n_jobs: int | None, show_progress: bool) -> list[tuple[int, str]]:
    """Entries some network in ``gnn_models`` cannot make a graph of (warms the graph cache)."""
    import torch

    from crystalgnn.graphs.atom_features import AtomFeaturizer
    from crystalgnn.graphs.builder import build_graph_list
    from crystalgnn.graphs.cache import GraphCache
    from crystalgnn.models.registry import make_config

    base = _train_config_for(train_options)
    path = base.atom_init or ds.atom_init
    table = torch.tensor((AtomFeaturizer.from_json(path) if path else AtomFeaturizer.cgcnn()).matrix())
    supported = [int(z) for z in torch.nonzero(~torch.isnan(table).any(dim=1)).flatten()]
    cache = None
    if base.use_cache:
        cache = GraphCache(Path(base.cache_dir) / "graphs.lmdb" if base.cache_dir else None)
    out: dict[int, str] = {}
    seen = set()
    for m in gnn_models:
        gcfg = make_config(m, base.model_options if m == base.model else {}).graph_config()
        key = json.dumps(gcfg.to_dict(), sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        _, report = build_graph_list(ds.structures, gcfg, cache=cache, supported_elements=supported, n_jobs=n_jobs, show_progress=show_progress)
        for i, why in report.rejected:
            out.setdefault(i, f"{m}: {why}")
    return sorted(out.items())


def write_dataset_file(ds: CrystalDataset, path: str | Path, targets: Sequence[str]) -> Path:
    """Entries as gzipped JSON lines (id, structure dict, targets), readable by ``load_source``."""
    import gzip

    from monty.json import MontyEncoder

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        for i, (entry_id, s) in enumerate(zip(ds.ids, ds.structures, strict=True)):
            row = {"id": entry_id, "structure": s.as_dict(), **{t: float(ds.targets[t][i]) for t in targets}}
            f.write(json.dumps(row, cls=MontyEncoder) + "\n")
    os.replace(tmp, path)
    return path


def prepare_data(
    source: Any,
    targets: Sequence[str],
    out: str | Path,
    *,
    models: Sequence[str] = (),
    subset: int | None = None,
    subset_seed: int = 0,
    train_options: dict[str, Any] | None = None,
    n_jobs: int | None = None,
    show_progress: bool = True,
) -> BenchmarkData:
    """Load ``source`` with all ``targets``, draw the subset, drop entries without a graph.

    Networks read ``out/subset.jsonl.gz`` when a subset is drawn, some entries are dropped, or
    ``source`` is not a path/name; otherwise the source itself (their split files name the ids).
    """
    out = Path(out)
    ds = load_source(source, targets=list(targets), n_jobs=n_jobs, show_progress=show_progress)
    if len(ds) == 0:
        raise ValueError(f"{source}: no entries with all of {list(targets)}")
    n_loaded = len(ds)
    if subset is not None and subset < len(ds):
        if subset < 10:
            raise ValueError("subset must be at least 10 entries")
        keep = np.sort(np.random.default_rng(subset_seed).choice(len(ds), size=subset, replace=False))
        rejections = list(ds.rejections)
        ds = ds.subset(keep)
        ds.rejections = rejections
    gnns = [m for m in models if model_kind(m) == "gnn"]
    dropped = _graph_rejections(ds, gnns, dict(train_options or {}), n_jobs, show_progress) if gnns else []
    if dropped:
        ds.drop([i for i, _ in dropped], [why for _, why in dropped], source="graph builder")
    out.mkdir(parents=True, exist_ok=True)
    ds.write_rejections(out / "rejected.csv")
    gnn_source = str(source)
    if len(ds) != n_loaded or not isinstance(source, (str, Path)):
        gnn_source = str(out / "subset.jsonl.gz")
        if not Path(gnn_source).is_file():
            write_dataset_file(ds, gnn_source, targets)
    return BenchmarkData(ds, gnn_source, n_jobs=n_jobs, show_progress=show_progress)


def make_splits(n: int, protocol: str, repeats: int, split: str | Sequence[float]) -> list[Split]:
    """The split of each repeat: seeded random splits, or the Matbench folds (at most 5)."""
    ratios = parse_ratios(split)
    if protocol == "random":
        return [random_split(n, ratios, seed=r) for r in range(repeats)]
    if protocol == "matbench":
        if repeats > 5:
            raise ValueError("the Matbench protocol has 5 folds; --repeats must be <= 5")
        val_fraction = ratios[1] / (ratios[0] + ratios[1]) if ratios[0] + ratios[1] > 0 else 0.0
        return kfold_splits(n, 5, seed=MATBENCH_SEED, val_fraction=val_fraction)[:repeats]
    raise ValueError(f"unknown protocol {protocol!r}; use random or matbench")


# --------------------------------------------------------------------------- one cell
def _metric_row(task: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    if task == "classification":
        m = classification_metrics(y, np.clip(pred, 0.0, 1.0))
        return {k: m[k] for k in CLASSIFICATION_METRICS}
    m = regression_metrics(y, pred)
    return {k: m[k] for k in REGRESSION_METRICS}


def _from_run_metrics(task: str, metrics: dict[str, Any]) -> dict[str, float]:
    test = metrics.get("test", {})
    keys = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    return {k: float(test.get(k, math.nan)) for k in keys}


def run_cell(
    model: str,
    data: BenchmarkData,
    target: str,
    split: Split,
    repeat: int,
    run_dir: str | Path,
    *,
    epochs: int,
    train_options: dict[str, Any] | None = None,
    split_file: str | Path | None = None,
    baseline_train_parts: Sequence[str] = ("train",),
    show_progress: bool = True,
) -> dict[str, Any]:
    """Train and test one model on one target and split; returns the ``results.csv`` row."""
    ds = data.dataset
    kind = model_kind(model)
    task = infer_task(ds, [target], str((train_options or {}).get("task", "auto")))
    run_dir = Path(run_dir)
    row: dict[str, Any] = {"model": model, "target": target, "repeat": repeat, "task": task}
    row["unit"] = ds.units.get(target, "")
    row |= {"n_train": len(split.train), "n_val": len(split.val), "n_test": len(split.test)}
    if kind == "baseline":
        X = data.soap() if model == "soap-svr" else None
        res = fit_predict_baseline(
            model, ds, target, split, train_parts=baseline_train_parts, features=X,
            n_jobs=data.n_jobs, show_progress=show_progress,
        )  # fmt: skip
        row["n_train"], row["n_val"] = res["n_train"], 0
        row |= _metric_row(task, res["y_test"], res["predictions"])
        row |= {"train_time_s": res["train_time_s"], "feature_time_s": data.feature_time_s if X is not None else 0.0}
        row |= {"n_parameters": res["n_parameters"], "model_bytes": res["model_bytes"]}
        run_dir.mkdir(parents=True, exist_ok=True)
        import pandas as pd

        pd.DataFrame(
            {"id": [ds.ids[i] for i in res["test_indices"]], "target": res["y_test"], "prediction": res["predictions"]}
        ).to_csv(run_dir / "predictions.csv", index=False)
        keep = {k: v for k, v in res.items() if k not in ("predictions", "y_test", "test_indices")}
        (run_dir / "metrics.json").write_text(json.dumps(keep, indent=2, default=str))
    else:
        opts = dict(train_options or {})
        cfg = TrainConfig(
            **opts,
            source=data.gnn_source,
            targets=[target],
            model=model if kind == "gnn" else "soap-mlp",
            split_file=str(split_file) if split_file else None,
            seed=int(repeat),
            epochs=int(epochs),
            out=str(run_dir),
        )
        cfg.progress = bool(show_progress) and cfg.progress
        if kind == "gnn":
            if split_file is None:
                raise ValueError("a network cell needs the split as an id file")
            metrics = train(cfg).metrics
            feature_time = 0.0
        else:
            X = data.soap()
            metrics = train_soap_mlp(ds, X, split, cfg, model_options=SOAP_MLP_VARIANTS[model], soap_config=data.soap_config)
            feature_time = data.feature_time_s
        row["n_train"], row["n_val"], row["n_test"] = metrics["n_train"], metrics["n_val"], metrics["n_test"]
        row |= _from_run_metrics(task, metrics)
        row |= {"train_time_s": metrics["train_time_s"], "feature_time_s": feature_time}
        row |= {"n_parameters": metrics["n_parameters"], "model_bytes": metrics.get("checkpoint_bytes")}
    row["run_dir"] = str(run_dir)
    row["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return row


# --------------------------------------------------------------------------- settings
def _check_settings(out: Path, settings: dict[str, Any]) -> None:
    path = out / "settings.json"
    settings = json.loads(json.dumps(settings, default=str))
    if path.is_file():
        old = json.loads(path.read_text())
        diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if diff:
            raise BenchmarkMismatch(
                f"{out} holds a benchmark with other settings (differs in: {', '.join(diff)}); "
                "use another --out or delete the folder"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2))


def _say(msg: str, enabled: bool) -> None:
    if enabled:
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stderr)


def folder_settings(
    source: Any,
    split: str | Sequence[float],
    subset: int | None,
    subset_seed: int,
    epochs: int,
    train_options: dict[str, Any],
    *,
    kind: str | None = None,
    protocol: str | None = None,
) -> dict[str, Any]:
    """What a benchmark (or learning-curve) folder's ``settings.json`` ties it to, in the file's order."""
    settings: dict[str, Any] = {} if kind is None else {"kind": kind}
    settings["source"] = str(source) if isinstance(source, (str, Path)) else f"<{type(source).__name__}>"
    if protocol is not None:
        settings["protocol"] = protocol
    settings["split"] = ",".join(f"{x:g}" for x in parse_ratios(split))
    settings["subset"] = subset
    settings["subset_seed"] = subset_seed if subset else None
    settings["epochs"] = int(epochs)
    settings["train_options"] = train_options
    settings["soap"] = dataclasses.asdict(THESIS_SOAP)
    return settings


def pending_cells(store: ResultStore, cells: list[Any], key: Any, verbose: bool) -> tuple[list[Any], int]:
    """The cells not yet in ``store`` (``key(cell)``: the cell's key fields), and how many are."""
    todo = [c for c in cells if not store.done(**key(c))]
    n_skipped = len(cells) - len(todo)
    if n_skipped:
        _say(f"{n_skipped} of {len(cells)} cells already in {store.path}; {len(todo)} to run", verbose)
    return todo, n_skipped


def _say_cell(row: dict[str, Any], label: str, number: int, total: int, t0: float, verbose: bool) -> None:
    """``[number/total] label: score (seconds since t0)`` for a finished cell."""
    score = f"MAE {row['mae']:.4g}" if row["task"] == "regression" else f"ROC-AUC {row['roc_auc']:.4g}"
    _say(f"[{number}/{total}] {label}: {score} ({time.perf_counter() - t0:.1f} s)", verbose)


@dataclass
class BenchmarkResult:
    out: Path
    results: Any  # pandas DataFrame, one row per run
    summary: Any  # pandas DataFrame, mean and std per model x target
    summary_markdown: str
    figure: Path | None
    n_run: int = 0
    n_skipped: int = 0
    files: dict[str, Path] = field(default_factory=dict)


def run_benchmark(
    source: Any,
    targets: Sequence[str],
    models: Sequence[str],
    *,
    out: str | Path,
    repeats: int | None = None,
    model_repeats: dict[str, int] | None = None,
    split: str = "0.8,0.1,0.1",
    epochs: int = 30,
    protocol: str = "random",
    subset: int | None = None,
    subset_seed: int = 0,
    train_options: dict[str, Any] | None = None,
    n_jobs: int | None = None,
    show_progress: bool = True,
    verbose: bool = True,
) -> BenchmarkResult:
    """Run (or finish) every ``model x target x repeat`` cell and write the reports.

    Args:
        source: a file, folder or dataset short name (or a ``CrystalDataset``).
        targets: graph-level targets (derived names such as ``log10_bulk_modulus_vrh`` work).
        models: any of :func:`available_models` (``mean``, ``per-element``, ``soap-svr``,
            ``soap-mlp``, ``soap-mlp-raw``, ``cgcnn``, ``megnet``, ...).
        out: the benchmark folder.
        repeats: random splits (seeds 0..repeats-1) or Matbench folds (default 3 / 5).
        model_repeats: other repeat counts for some models, e.g. ``{"soap-svr": 2}`` (the thesis
            ran its GNNs 10 times and its SOAP models twice); they use the first splits.
        split: train,val,test ratios (``random``); for ``matbench`` only val/(train+val) is used.
        epochs: training epochs of the networks (GNNs and SOAP -> MLP).
        protocol: ``"random"`` or ``"matbench"``.
        subset: use this many entries drawn at random (seed ``subset_seed``) from those with
            every target.
        train_options: other :class:`~crystalgnn.training.config.TrainConfig` fields for the
            networks (``batch_size``, ``lr``, ``optimizer``, ``num_threads``, ``accelerator``...).
        n_jobs: processes for parsing, graphs and SOAP.
        show_progress: progress bars (the cell bar and the runs' own bars).
        verbose: one line per finished cell on stderr.
    """
    import pandas as pd

    out = Path(out)
    targets, models = list(dict.fromkeys(targets)), list(dict.fromkeys(models))
    if not targets or not models:
        raise ValueError("give at least one target and one model")
    for m in models:
        model_kind(m)
    repeats = repeats if repeats is not None else (5 if protocol == "matbench" else 3)
    model_repeats = {m: int(n) for m, n in (model_repeats or {}).items()}
    unknown = sorted(set(model_repeats) - set(models))
    if unknown:
        raise ValueError(f"repeats given for model(s) not in the benchmark: {', '.join(unknown)}")
    if repeats < 1 or any(n < 1 for n in model_repeats.values()):
        raise ValueError("repeats must be >= 1")
    if protocol == "matbench" and model_repeats:
        raise ValueError("the Matbench protocol runs all 5 folds for every model")
    n_of = {m: model_repeats.get(m, repeats) for m in models}
    train_options = dict(train_options or {})
    _train_config_for(train_options)
    settings = folder_settings(source, split, subset, subset_seed, epochs, train_options, protocol=protocol)
    _check_settings(out, settings)
    store = ResultStore(out / "results.csv", ("model", "target", "repeat"), RESULT_COLUMNS)
    n_splits = max(n_of.values())
    cells = [(t, r, m) for t in targets for r in range(n_splits) for m in models if r < n_of[m]]
    todo, n_skipped = pending_cells(store, cells, lambda c: {"model": c[2], "target": c[0], "repeat": c[1]}, verbose)
    if todo:
        data = prepare_data(
            source, targets, out, models=models, subset=subset, subset_seed=subset_seed,
            train_options=train_options, n_jobs=n_jobs, show_progress=show_progress,
        )  # fmt: skip
        splits = make_splits(len(data.dataset), protocol, n_splits, split)
        split_files = []
        for r, sp in enumerate(splits):
            p = out / "splits" / f"r{r}.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.is_file():
                saved = Split.load(p, data.dataset.ids)
                same = all(np.array_equal(getattr(saved, k), getattr(sp, k)) for k in ("train", "val", "test"))
                if not same:
                    raise BenchmarkMismatch(f"{p} differs from the split this run computes; the data changed")
            else:
                sp.save(p, data.dataset.ids)
            split_files.append(p)
        train_parts = ("train", "val") if protocol == "matbench" else ("train",)
        bar = progress(total=len(cells), desc="benchmark", disable=not show_progress, initial=n_skipped, position=0)
        with bar:
            for k, (target, r, model) in enumerate(todo):
                bar.set_description(f"{model} {target} r{r}")
                bar.set_postfix_str(f"{len(todo) - k} left")
                t0 = time.perf_counter()
                row = run_cell(
                    model, data, target, splits[r], r, out / "runs" / f"{model}-{target}-r{r}",
                    epochs=epochs, train_options=train_options, split_file=split_files[r],
                    baseline_train_parts=train_parts, show_progress=show_progress,
                )  # fmt: skip
                store.add(row)
                bar.update(1)
                _say_cell(row, f"{model} {target} r{r}", k + 1 + n_skipped, len(cells), t0, verbose)
    results = store.frame()
    results = results[results["model"].isin(models) & results["target"].isin(targets)] if len(results) else results
    if len(results):
        results = results[pd.to_numeric(results["repeat"]) < results["model"].map(n_of)]
    return write_reports(out, results, models, targets, n_run=len(todo), n_skipped=n_skipped)


# --------------------------------------------------------------------------- reports
METRIC_LABELS = {
    "mae": "MAE", "rmse": "RMSE", "r2": "R²", "train_time_s": "training time (s)",
    "roc_auc": "ROC-AUC", "accuracy": "accuracy", "f1": "F1", "precision": "precision", "recall": "recall",
    "n_parameters": "parameters", "model_bytes": "model bytes",
}  # fmt: skip


def summarize(results: Any, models: Sequence[str] | None = None, targets: Sequence[str] | None = None, by: Sequence[str] = ("model", "target")) -> Any:
    """Mean, standard deviation (ddof 1) and count of every numeric column per group."""
    import pandas as pd

    if len(results) == 0:
        return pd.DataFrame()
    df = results.copy()
    numeric = [*REGRESSION_METRICS, *CLASSIFICATION_METRICS, "train_time_s", "feature_time_s", "n_parameters", "model_bytes", "n_train", "n_test"]
    numeric = [c for c in numeric if c in df]
    for c in numeric:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    g = df.groupby(list(by), sort=False)
    rows = []
    for key, part in g:
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key, strict=True))
        row["task"] = part["task"].iloc[0] if "task" in part else ""
        row["unit"] = part["unit"].iloc[0] if "unit" in part and isinstance(part["unit"].iloc[0], str) else ""
        row["n_runs"] = len(part)
        for c in numeric:
            vals = part[c].dropna()
            row[f"{c}_mean"] = float(vals.mean()) if len(vals) else math.nan
            row[f"{c}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else (0.0 if len(vals) else math.nan)
        rows.append(row)
    out = pd.DataFrame(rows)
    if models is not None and "model" in out:
        order = {m: i for i, m in enumerate(models)}
        out["_m"] = out["model"].map(order)
        out["_t"] = out["target"].map({t: i for i, t in enumerate(targets or [])}) if targets else 0
        out = out.sort_values(["_t", "_m"]).drop(columns=["_m", "_t"]).reset_index(drop=True)
    return out


def _fmt(mean: float, std: float, n: int) -> str:
    if not np.isfinite(mean):
        return "–"
    digits = 3 if abs(mean) < 100 else 1
    if abs(mean) < 0.01 and mean != 0:
        return f"{mean:.2e}" + (f" ± {std:.1e}" if n > 1 else "")
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if n > 1 else "")


def summary_markdown(summary: Any, title: str = "Benchmark") -> str:
    """One Markdown table per target: mean ± std over repeats."""
    if len(summary) == 0:
        return f"# {title}\n\n(no finished runs)\n"
    lines = [f"# {title}", "", "Mean ± standard deviation over repeats (test set of each split).", ""]
    for target, part in summary.groupby("target", sort=False):
        task = part["task"].iloc[0]
        unit = part["unit"].iloc[0] or ""
        u = f" ({unit})" if unit else ""
        metrics = list(CLASSIFICATION_METRICS[:3]) if task == "classification" else ["mae", "rmse", "r2"]
        head = ["model", "runs", *[METRIC_LABELS[m] + (u if m in ("mae", "rmse") else "") for m in metrics], "train time (s)", "parameters", "model bytes"]
        lines += [f"## {target}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for _, r in part.iterrows():
            n = int(r["n_runs"])
            cells = [str(r["model"]), str(n)]
            cells += [_fmt(r[f"{m}_mean"], r[f"{m}_std"], n) for m in metrics]
            cells.append(_fmt(r["train_time_s_mean"], r["train_time_s_std"], n))
            cells.append(f"{r['n_parameters_mean']:,.0f}" if np.isfinite(r["n_parameters_mean"]) else "–")
            cells.append(f"{r['model_bytes_mean']:,.0f}" if np.isfinite(r["model_bytes_mean"]) else "–")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "Training time: fit only (SOAP features and graph building excluded; SOAP time is in "
        "results.csv as feature_time_s). Model bytes: pickled size for the baselines, the best "
        "checkpoint (weights + optimiser state) for the networks."
    )
    return "\n".join(lines) + "\n"


def benchmark_figure(summary: Any, path: str | Path, models: Sequence[str] | None = None) -> Path | None:
    """Grouped bars with error bars (one row per target, one panel per metric; Fig. 14 style)."""
    if len(summary) == 0:
        return None
    from crystalgnn.evaluation.plots import _plt

    plt = _plt()
    targets = list(dict.fromkeys(summary["target"]))
    models = [m for m in (models or list(dict.fromkeys(summary["model"]))) if m in set(summary["model"])]
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    ncol = 4
    fig, axes = plt.subplots(len(targets), ncol, figsize=(3.3 * ncol, 2.9 * len(targets) + 0.5), dpi=130, squeeze=False)
    for row, target in enumerate(targets):
        part = summary[summary["target"] == target].set_index("model")
        task = part["task"].iloc[0]
        unit = part["unit"].iloc[0] or ""
        metrics = ["roc_auc", "accuracy", "f1", "train_time_s"] if task == "classification" else ["mae", "rmse", "r2", "train_time_s"]
        present = [m for m in models if m in part.index]
        x = np.arange(len(present))
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            mean = np.array([part.loc[m, f"{metric}_mean"] for m in present], dtype=float)
            std = np.array([part.loc[m, f"{metric}_std"] for m in present], dtype=float)
            std = np.nan_to_num(std)
            ax.bar(x, np.nan_to_num(mean), yerr=std, capsize=3, color=[colors[m] for m in present], edgecolor="k", linewidth=0.4)
            ax.set_xticks(x)
            ax.set_xticklabels(present, rotation=35, ha="right", fontsize=7)
            label = METRIC_LABELS[metric] + (f" ({unit})" if metric in ("mae", "rmse") and unit else "")
            ax.set_title(f"{target}: {label}" if col == 0 else label, fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
            if metric == "train_time_s":
                pos = mean[np.isfinite(mean) & (mean > 0)]
                if len(pos) and pos.max() / max(pos.min(), 1e-9) > 100:
                    ax.set_yscale("log")
            if metric == "r2":
                ax.axhline(0, color="k", lw=0.6)
                lo = float(np.nanmin(mean - std)) if len(mean) else 0.0
                ax.set_ylim(max(min(lo - 0.05, 0.0), -1.0), 1.0)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_reports(
    out: str | Path, results: Any, models: Sequence[str], targets: Sequence[str], *, n_run: int = 0, n_skipped: int = 0
) -> BenchmarkResult:
    """``summary.csv``, ``summary.md`` and ``benchmark.png`` from the results table."""
    out = Path(out)
    summary = summarize(results, models, targets)
    md = summary_markdown(summary, title=f"Benchmark: {out.name}")
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(md)
    fig = benchmark_figure(summary, out / "benchmark.png", models)
    files = {"results": out / "results.csv", "summary_csv": out / "summary.csv", "summary_md": out / "summary.md"}
    if fig:
        files["figure"] = fig
    return BenchmarkResult(out, results, summary, md, fig, n_run=n_run, n_skipped=n_skipped, files=files)


__all__ = [
    "SOAP_MLP_VARIANTS",
    "BenchmarkData",
    "BenchmarkMismatch",
    "BenchmarkResult",
    "ResultStore",
    "available_models",
    "folder_settings",
    "pending_cells",
    "benchmark_figure",
    "make_splits",
    "model_kind",
    "prepare_data",
    "run_benchmark",
    "run_cell",
    "summarize",
    "summary_markdown",
    "write_reports",
]
