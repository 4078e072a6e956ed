"""Command-line interface (thin: parse -> call one library function -> print/write)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="crystalgnn: graph neural networks for crystal properties and cathode screening.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect datasets and sources.", no_args_is_help=True)
graphs_app = typer.Typer(help="Build and cache crystal graphs.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(graphs_app, name="graphs")
# tables are wide: when output goes to a file or pipe, do not squeeze them into 80 columns
console = Console(stderr=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


def _fail(msg: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(code)


@contextmanager
def _failing_on_bad_data() -> Iterator[None]:
    """Bad input (unreadable data, unknown names, missing files) ends the command with its message."""
    from crystalgnn.data.dataset import DataError

    try:
        yield
    except (DataError, KeyError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc).strip("'\""))


def _load(sources: list[str], targets: list[str] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
    from crystalgnn.data.readers import load_source

    with _failing_on_bad_data():
        return load_source(sources if len(sources) > 1 else sources[0], targets=targets, **kw)


def _report_rejections(ds: Any, rejected_path: Path | None, strict: bool) -> None:
    if ds.rejections:
        err.print(f"[yellow]{len(ds.rejections)} entries rejected[/] (reason: count)")
        for reason, n in ds.rejection_counts().most_common():
            err.print(f"  {reason}: {n}")
        for r in ds.rejections[:5]:
            err.print(f"  - {r.id} ({r.source}): {r.reason}")
        if rejected_path is not None:
            ds.write_rejections(rejected_path)
            err.print(f"  full list: {rejected_path}")
    if strict and ds.rejections:
        _fail(f"--strict: {len(ds.rejections)} entries rejected", code=2)


# ----------------------------------------------------------------------------- data
@data_app.command("inspect")
def data_inspect(
    sources: list[str] = typer.Argument(..., help="file(s), folder(s) or dataset short names"),
    target: Optional[list[str]] = typer.Option(None, "--target", "-t", help="labels that must be present"),
    rejected: Optional[Path] = typer.Option(None, "--rejected", help="write rejected.csv here"),
    strict: bool = typer.Option(False, "--strict", help="exit non-zero if anything is rejected"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    end_member: str = typer.Option("discharged", help="electrode sets: charged or discharged structure"),
) -> None:
    """Counts, elements, sites per structure, label statistics with units, and rejections."""
    ds = _load(sources, target, end_member=end_member)
    s = ds.summary()
    if as_json:
        console.print_json(json.dumps(s))
    else:
        console.print(f"[bold]{s['name']}[/]: {s['entries']} structures, {s['rejected']} rejected")
        console.print(
            f"sites per structure: min {s['sites_min']}, median {s['sites_median']:g}, max {s['sites_max']} "
            f"(total {s['sites_total']})"
        )
        top = ", ".join(f"{k} {v}" for k, v in list(s["elements"].items())[:15])
        console.print(f"{s['n_elements']} elements (structures containing): {top}{' ...' if s['n_elements'] > 15 else ''}")
        t = Table("label", "unit", "count", "missing", "min", "median", "mean", "max")
        t.columns[0].no_wrap = t.columns[1].no_wrap = True
        t.columns[0].min_width = max((len(k) for k in s["labels"]), default=5)
        for k, st in s["labels"].items():
            f = lambda key: f"{st[key]:.4g}" if key in st else "-"  # noqa: E731
            t.add_row(k, st["unit"], str(st["count"]), str(st["missing"]), f("min"), f("median"), f("mean"), f("max"))
        console.print(t)
    _report_rejections(ds, rejected, strict)


@data_app.command("list")
def data_list() -> None:
    """The dataset short names (files in ../shared/data) and what they hold."""
    from crystalgnn.data.catalog import CATALOG, shared_data_dir

    root = shared_data_dir()
    t = Table("name", "file", "labels (units)", "available")
    for name, e in CATALOG.items():
        labels = ", ".join(f"{k} ({u})" if u else k for k, u in {**e.units, **e.site_units}.items())
        t.add_row(name, e.file, labels, "yes" if root and (root / e.file).is_file() else "no")
    console.print(t)


# ----------------------------------------------------------------------------- graphs
@graphs_app.command("build")
def graphs_build(
    sources: list[str] = typer.Argument(..., help="file(s), folder(s) or dataset short names"),
    radius: float = typer.Option(8.0, help="neighbour cutoff (Å)"),
    max_neighbors: int = typer.Option(12, help="neighbours per atom (0 = no cap)"),
    pad: bool = typer.Option(False, "--pad-to-max-neighbors", help="the reference code's zero padding"),
    cache_dir: Optional[Path] = typer.Option(None, help="graph cache folder (default ~/.cache/crystalgnn)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="build without reading or writing the cache"),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="worker processes"),
    rejected: Optional[Path] = typer.Option(None, "--rejected", help="write rejected.csv here"),
    strict: bool = typer.Option(False, "--strict"),
    chunk_size: Optional[int] = typer.Option(
        None, "--chunk-size", help="read a table source this many rows at a time; graphs go to the cache only (data larger than RAM)"
    ),
) -> None:
    """Build CGCNN crystal graphs (in parallel, cached) and print a summary."""
    from crystalgnn.graphs.atom_features import AtomFeaturizer
    from crystalgnn.graphs.builder import build_dataset_graphs
    from crystalgnn.graphs.cache import GraphCache
    from crystalgnn.graphs.crystal_graph import GraphConfig

    t0 = time.perf_counter()
    cfg = GraphConfig(radius=radius, max_neighbors=max_neighbors or None, pad_to_max_neighbors=pad)
    cache = None if no_cache else GraphCache(cache_dir / "graphs.lmdb" if cache_dir else None)
    options = {"cache": cache, "supported_elements": AtomFeaturizer.cgcnn().elements, "n_jobs": jobs}
    if chunk_size:
        ds, n_graphs, rep = _build_in_chunks(sources, cfg, chunk_size, options)
        t2 = time.perf_counter()
        console.print(
            f"[bold]{n_graphs} graphs[/] from {ds.name}, read and built {chunk_size} rows at a time: {t2 - t0:.2f} s "
            f"({rep.n_from_cache} from cache, {rep.n_built} built); {n_graphs / max(t2 - t0, 1e-9):.0f} structures/s"
        )
    else:
        ds = _load(sources, n_jobs=jobs)
        t1 = time.perf_counter()
        graphs, rep = build_dataset_graphs(ds, cfg, **options)
        t2 = time.perf_counter()
        n_edges = sum(g.num_edges for g in graphs)
        n_nodes = sum(g.num_nodes for g in graphs)
        console.print(
            f"[bold]{len(graphs)} graphs[/] ({n_nodes} atoms, {n_edges} edges, {n_edges / max(n_nodes, 1):.2f} edges/atom) "
            f"from {ds.name}: read {t1 - t0:.2f} s, graphs {t2 - t1:.2f} s "
            f"({rep.n_from_cache} from cache, {rep.n_built} built); {len(graphs) / max(t2 - t0, 1e-9):.0f} structures/s"
        )
    if cache is not None:
        console.print(f"cache {cache.path}: {len(cache)} graphs, {cache.nbytes() / max(len(cache), 1):.0f} bytes/graph")
    _report_rejections(ds, rejected, strict)


def _build_in_chunks(sources: list[str], cfg: Any, chunk_size: int, options: dict[str, Any]) -> tuple[Any, int, Any]:
    """``graphs build --chunk-size``: one table source, graphs into the cache chunk by chunk."""
    from crystalgnn.data.chunked import iter_source_chunks
    from crystalgnn.graphs.builder import build_chunked_graphs

    if options["cache"] is None:
        _fail("--chunk-size writes the graphs to the cache: drop --no-cache")
    with _failing_on_bad_data():
        chunks = iter_source_chunks(sources[0], chunk_size=chunk_size, n_jobs=options["n_jobs"]) if len(sources) == 1 else None
        if chunks is None:
            _fail("--chunk-size reads one CSV / JSON-lines table or dataset short name")
        ds, graphs, rep = build_chunked_graphs(chunks, cfg, **options)
    return ds, len(graphs), rep


# ----------------------------------------------------------------------------- train
@app.command()
def train(
    source: Optional[str] = typer.Argument(None, help="file, folder or dataset short name"),
    target: Optional[list[str]] = typer.Option(None, "--target", "-t", help="target name (repeat for several)"),
    site_target: Optional[str] = typer.Option(
        None, "--site-target", help="per-site target (e.g. magmom, abs_magmom): train a per-site model"
    ),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file with any of these options"),
    model: Optional[str] = typer.Option(None, help="cgcnn | megnet | schnet | alignn"),
    task: Optional[str] = typer.Option(None, help="regression | classification | auto"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="run folder"),
    epochs: Optional[int] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None),
    optimizer: Optional[str] = typer.Option(None, help="sgd | adam | adamw"),
    momentum: Optional[float] = typer.Option(None),
    weight_decay: Optional[float] = typer.Option(None),
    loss: Optional[str] = typer.Option(None, help="regression loss: mse (default) | l1 | huber"),
    scheduler: Optional[str] = typer.Option(None, help="multistep | cosine | onecycle | none"),
    lr_milestones: Optional[str] = typer.Option(None, help="comma-separated epochs (multistep)"),
    split: Optional[str] = typer.Option(None, help="train,val,test ratios, e.g. 0.6,0.2,0.2"),
    subset: Optional[int] = typer.Option(None, help="use a seeded random subset of this many structures"),
    subset_seed: Optional[int] = typer.Option(None, help="seed of --subset (default 0)"),
    split_file: Optional[str] = typer.Option(None, help="JSON with train/val/test id lists"),
    seed: Optional[int] = typer.Option(None),
    early_stopping: Optional[int] = typer.Option(None, "--early-stopping", help="patience in epochs"),
    model_option: Optional[list[str]] = typer.Option(None, "--model-option", "-m", help="KEY=VALUE model hyper-parameter"),
    atom_init: Optional[str] = typer.Option(None, help="CGCNN atom_init.json to use as atom features"),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j"),
    threads: Optional[int] = typer.Option(None, help="torch threads"),
    accelerator: Optional[str] = typer.Option(None, help="cpu | gpu | auto"),
    devices: Optional[str] = typer.Option(None, help="devices per node (e.g. 1, 4, auto)"),
    num_nodes: Optional[int] = typer.Option(None),
    strategy: Optional[str] = typer.Option(None, help="Lightning strategy (auto, ddp, ...)"),
    cache_dir: Optional[str] = typer.Option(None),
    graphs_on_disk: bool = typer.Option(
        False, "--graphs-on-disk", help="keep graphs in the LMDB cache and read them per batch (datasets larger than RAM)"
    ),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Train a model; re-running the same command resumes an interrupted run."""
    import yaml

    from crystalgnn.training.config import TrainConfig
    from crystalgnn.training.run import RunConfigMismatch
    from crystalgnn.training.run import train as run_train

    base: dict[str, Any] = {}
    if config is not None:
        if not config.is_file():
            _fail(f"{config}: no such config file")
        base = TrainConfig.from_yaml(config).to_dict()
    flags = {
        "source": source,
        "targets": list(target) if target else None,
        "site_target": site_target,
        "model": model,
        "task": task,
        "out": out,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "loss": loss,
        "scheduler": scheduler,
        "lr_milestones": [int(x) for x in lr_milestones.split(",")] if lr_milestones else None,
        "split": split,
        "subset": subset,
        "subset_seed": subset_seed,
        "split_file": split_file,
        "seed": seed,
        "early_stopping_patience": early_stopping,
        "atom_init": atom_init,
        "n_jobs": jobs,
        "num_threads": threads,
        "accelerator": accelerator,
        "devices": (int(devices) if devices and devices.isdigit() else devices),
        "num_nodes": num_nodes,
        "strategy": strategy,
        "cache_dir": cache_dir,
    }
    merged = {**base, **{k: v for k, v in flags.items() if v is not None}}
    if model_option:
        opts = dict(merged.get("model_options") or {})
        for kv in model_option:
            if "=" not in kv:
                _fail(f"--model-option takes KEY=VALUE, got {kv!r}")
            k, v = kv.split("=", 1)
            opts[k] = yaml.safe_load(v)
        merged["model_options"] = opts
    if no_progress:
        merged["progress"] = False
    if graphs_on_disk:
        merged["graphs_on_disk"] = True
    try:
        cfg = TrainConfig.from_dict(merged)
    except (KeyError, TypeError) as exc:
        _fail(str(exc))
    if not cfg.source:
        _fail("no SOURCE given (argument or 'source:' in the config)")
    if cfg.out == "runs/run":
        cfg.out = f"runs/{Path(str(cfg.source)).name.split('.')[0]}-{'-'.join(cfg.targets or [str(cfg.site_target)])}-{cfg.model}-s{cfg.seed}"
    from crystalgnn.data.dataset import DataError

    from crystalgnn.evaluation.reports import run_figures

    try:
        result = run_train(cfg)
    except (RunConfigMismatch, DataError, KeyError, ValueError) as exc:
        _fail(str(exc).strip("'\""))
    run_figures(result.run_dir)
    m = result.metrics
    console.print(f"[bold green]done[/]: {result.run_dir}")
    console.print(json.dumps({k: m[k] for k in ("test", "train_time_s", "time_per_epoch_s", "n_parameters") if k in m}, indent=1))


# ----------------------------------------------------------------------------- evaluate
@app.command()
def evaluate(
    model: str = typer.Argument(..., help="run folder, checkpoint file or shipped model name"),
    sources: list[str] = typer.Argument(..., help="labelled data: file(s), folder(s) or dataset names"),
    out: Path = typer.Option(Path("evaluation"), "--out", "-o", help="folder for metrics, predictions.csv, plots"),
    target: Optional[str] = typer.Option(None, help="label column if it differs from the model's target name"),
) -> None:
    """Metrics, predictions.csv and parity/ROC plots of a trained model on labelled data."""
    import numpy as np

    from crystalgnn.evaluation.reports import write_report
    from crystalgnn.prediction import Predictor

    try:
        pred = Predictor.load(model)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    if pred.kind == "site":  # a per-site checkpoint: one value per site
        _evaluate_sites(pred, sources, out, target)
        return
    names = pred.targets if target is None else [target]
    ds = _load(sources, names)
    if target is not None:
        ds.targets[pred.targets[0]] = ds.targets[target]
    res = pred.predict(ds)
    idx = np.array(ds.index_of(res.ids), dtype=int)
    metrics = write_report(out, ds, idx, res.values, kind=pred.kind, targets=pred.targets, units=pred.units, prefix="metrics")
    metrics["n_rejected"] = len(res.rejected)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    console.print(json.dumps(metrics, indent=1))
    if res.rejected:
        err.print(f"[yellow]{len(res.rejected)} entries rejected[/]; see {out / 'rejected.csv'}")
        _write_rejected(res.rejected, out / "rejected.csv")


def _evaluate_sites(pred: Any, sources: list[str], out: Path, target: Optional[str]) -> None:
    """``evaluate`` for per-site checkpoints: per-site metrics, per-element table and figures."""
    from crystalgnn.evaluation.site_report import write_site_report

    name = target or pred.site_target
    ds = _load(sources, [name])
    res = pred.predict(ds, show_progress=len(ds) > 500)
    df = res.to_frame(ds, target=name)
    metrics = write_site_report(out, df, target=pred.site_target, unit=pred.units.get(pred.site_target, ""), prefix="metrics")
    metrics["n_rejected"] = len(res.rejected)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    console.print(json.dumps({k: v for k, v in metrics.items() if not k.endswith("_per_element")}, indent=1))
    console.print(f"per-element metrics: {out / 'per_element.csv'}")
    if res.rejected:
        err.print(f"[yellow]{len(res.rejected)} entries rejected[/]; see {out / 'rejected.csv'}")
        _write_rejected(res.rejected, out / "rejected.csv")


def _write_rejected(rejections: list[Any], path: Path) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "source", "reason"])
        for r in rejections:
            w.writerow([r.id, r.source, r.reason])


# ----------------------------------------------------------------------------- predict
@app.command()
def predict(
    model: str = typer.Argument(..., help="run folder, .ckpt, original CGCNN .pth.tar, or shipped model name"),
    inputs: list[str] = typer.Argument(..., help="structure files, folders, tables or dataset names"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the table as CSV"),
    limit: int = typer.Option(50, help="rows shown on screen"),
    structures_out: Optional[Path] = typer.Option(
        None, "--structures-out", help="per-site models: write structures with the predictions as a site property"
    ),
) -> None:
    """Predict with a trained model: a table on screen and, with --output, a CSV.

    Per-site models give one row per site (id, site_index, element, prediction)."""
    from crystalgnn.prediction import Predictor

    try:
        pred = Predictor.load(model)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    if structures_out is not None and pred.kind != "site":
        _fail("--structures-out needs a per-site model (trained with --site-target)")
    ds = _load(inputs)
    res = pred.predict(ds, show_progress=len(ds) > 500)
    df = res.to_frame(ds)
    _print_frame(df, limit, title=f"{pred.model_name} -> {', '.join(pred.targets)} ({_units(pred)})")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(output, index=False)
        console.print(f"wrote {output}")
    if structures_out is not None:
        res.write_structures(ds, structures_out)
        console.print(f"wrote {len(res.ids)} structures (JSON + CIF, site property {res.property_name()}) to {structures_out}")
    if res.rejected:
        err.print(f"[yellow]{len(res.rejected)} inputs rejected[/]:")
        for r in res.rejected[:20]:
            err.print(f"  - {r.id} ({r.source}): {r.reason}")


def _units(pred: Any) -> str:
    if pred.kind == "classification":
        return "probability of class 1"
    return ", ".join(pred.units.get(t, "") or "-" for t in pred.targets)


def _print_frame(df: Any, limit: int, title: str = "") -> None:
    t = Table(*[str(c) for c in df.columns], title=title)
    for _, row in df.head(limit).iterrows():
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    console.print(t)
    if len(df) > limit:
        console.print(f"... {len(df) - limit} more rows (use --output to get them all)")


# ----------------------------------------------------------------------------- models
@app.command("models")
def models_cmd() -> None:
    """List the pretrained models shipped with the package, with their test metrics."""
    from crystalgnn.pretrained import list_shipped_models

    rows = list_shipped_models()
    if not rows:
        console.print("no shipped models in this installation")
        return
    t = Table("name", "target", "unit", "data", "test metric")
    for r in rows:
        t.add_row(r["name"], r["target"], r["unit"], r["data"], r["metric"])
    console.print(t)


@app.command("import-cgcnn")
def import_cgcnn(
    checkpoint: Path = typer.Argument(..., help="original CGCNN *.pth.tar"),
    output: Path = typer.Option(..., "--output", "-o", help="crystalgnn checkpoint to write (.ckpt)"),
    atom_init: Optional[Path] = typer.Option(None, help="the atom_init.json the model was trained with"),
) -> None:
    """Convert an original CGCNN checkpoint into a crystalgnn checkpoint."""
    from crystalgnn.prediction.cgcnn_import import save_imported

    if not checkpoint.is_file():
        _fail(f"{checkpoint}: no such file")
    try:
        path = save_imported(checkpoint, output, atom_init)
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"wrote {path}")


@app.command()
def demo(
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the table as CSV"),
) -> None:
    """The main job on bundled cathode structures: graphs + every shipped model's predictions."""
    from crystalgnn.pretrained import predict_examples

    try:
        df = predict_examples(show_progress=False)
    except FileNotFoundError as exc:
        _fail(str(exc))
    _print_frame(df, 100, title="bundled cathode structures: predictions of the shipped models")
    if output is not None:
        df.to_csv(output, index=False)
        console.print(f"wrote {output}")


# ----------------------------------------------------------------------------- benchmark
def _bench_train_options(batch_size: Optional[int], lr: Optional[float], optimizer: Optional[str],
                         threads: Optional[int], accelerator: Optional[str]) -> dict[str, Any]:
    opts = {"batch_size": batch_size, "lr": lr, "optimizer": optimizer, "num_threads": threads, "accelerator": accelerator}
    return {k: v for k, v in opts.items() if v is not None}


@app.command()
def benchmark(
    source: str = typer.Argument(..., help="file, folder or dataset short name"),
    targets: str = typer.Option(..., "--targets", "-t", help="comma-separated targets"),
    models: str = typer.Option("cgcnn,soap-svr,soap-mlp,per-element,mean", "--models", help="comma-separated models"),
    repeats: Optional[int] = typer.Option(None, help="random splits (seeds 0..N-1; default 3) or Matbench folds (default 5)"),
    repeats_for: Optional[list[str]] = typer.Option(
        None, "--repeats-for", metavar="MODEL=N", help="another repeat count for one model (e.g. soap-svr=2), repeatable"
    ),
    split: str = typer.Option("0.8,0.1,0.1", help="train,val,test ratios"),
    out: Path = typer.Option(..., "--out", "-o", help="benchmark folder (re-run to resume)"),
    epochs: int = typer.Option(30, help="epochs of the networks (GNNs, SOAP -> MLP)"),
    protocol: str = typer.Option("random", help="random | matbench (5-fold CV with Matbench's folds)"),
    subset: Optional[int] = typer.Option(None, help="use a random subset of this many entries"),
    subset_seed: int = typer.Option(0, help="seed of the subset"),
    batch_size: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None),
    optimizer: Optional[str] = typer.Option(None, help="sgd | adam | adamw"),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="processes for parsing, graphs, SOAP"),
    threads: Optional[int] = typer.Option(None, help="torch threads"),
    accelerator: Optional[str] = typer.Option(None, help="cpu | gpu | auto"),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Every model x target x repeat: results.csv, summary.md/.csv and benchmark.png (resumable)."""
    from crystalgnn.experiments import run_benchmark

    try:
        per_model = {}
        for item in repeats_for or []:
            name, sep, n = item.partition("=")
            if not sep or not n.strip().isdigit():
                raise ValueError(f"--repeats-for takes MODEL=N, got {item!r}")
            per_model[name.strip()] = int(n)
        res = run_benchmark(
            source, [t for t in targets.split(",") if t], [m for m in models.split(",") if m], out=out,
            repeats=repeats, model_repeats=per_model, split=split, epochs=epochs, protocol=protocol, subset=subset, subset_seed=subset_seed,
            train_options=_bench_train_options(batch_size, lr, optimizer, threads, accelerator),
            n_jobs=jobs, show_progress=not no_progress,
        )  # fmt: skip
    except (RuntimeError, KeyError, ValueError) as exc:
        _fail(str(exc).strip("'\""))
    console.print(res.summary_markdown)
    console.print(f"[bold green]done[/]: {res.n_run} cells run, {res.n_skipped} already finished; " + ", ".join(str(p) for p in res.files.values()))


@app.command("learning-curve")
def learning_curve(
    source: str = typer.Argument(..., help="file, folder or dataset short name"),
    target: str = typer.Option(..., "--target", "-t"),
    models: str = typer.Option("cgcnn,soap-svr", "--models", help="comma-separated models"),
    sizes: str = typer.Option("500,1000,2000,4000,6000", help="comma-separated training-set sizes"),
    repeats: int = typer.Option(2, help="random splits (seeds 0..N-1); test set fixed per repeat"),
    split: str = typer.Option("0.8,0.1,0.1", help="train,val,test ratios (sizes come from the train part)"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (re-run to resume)"),
    epochs: int = typer.Option(30),
    subset: Optional[int] = typer.Option(None),
    subset_seed: int = typer.Option(0),
    batch_size: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None),
    optimizer: Optional[str] = typer.Option(None),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j"),
    threads: Optional[int] = typer.Option(None),
    accelerator: Optional[str] = typer.Option(None),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Test MAE against training-set size on log-log axes (CGCNN paper Fig. 2b), resumable."""
    from crystalgnn.experiments import run_learning_curve

    try:
        res = run_learning_curve(
            source, target, [m for m in models.split(",") if m], [int(s) for s in sizes.split(",") if s], out=out,
            repeats=repeats, split=split, epochs=epochs, subset=subset, subset_seed=subset_seed,
            train_options=_bench_train_options(batch_size, lr, optimizer, threads, accelerator),
            n_jobs=jobs, show_progress=not no_progress,
        )  # fmt: skip
    except (RuntimeError, KeyError, ValueError) as exc:
        _fail(str(exc).strip("'\""))
    if len(res.summary):
        cols = ["model", "size", "n_runs", "mae_mean", "mae_std"] if "mae_mean" in res.summary else list(res.summary.columns)[:6]
        _print_frame(res.summary[cols], 200, title=f"learning curve: {target}")
    console.print(f"[bold green]done[/]: {res.n_run} cells run, {res.n_skipped} already finished; {out / 'learning_curve.csv'}, {res.figure}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
