"""``crystalgnn graphs``: build and cache crystal graphs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from crystalgnn.cli.app import app, console, fail, failing_on_bad_data, load, report_rejections

graphs_app = typer.Typer(help="Build and cache crystal graphs.", no_args_is_help=True)
app.add_typer(graphs_app, name="graphs")


@graphs_app.command("build")
def graphs_build(
    sources: list[str] = typer.Argument(..., help="file(s), folder(s) or dataset short names"),
    radius: float = typer.Option(8.0, help="neighbour cutoff (Å)"),
    max_neighbors: int = typer.Option(12, help="neighbours per atom (0 = no cap)"),
    pad: bool = typer.Option(False, "--pad-to-max-neighbors", help="the reference code's zero padding"),
    cache_dir: Path | None = typer.Option(None, help="graph cache folder (default ~/.cache/crystalgnn)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="build without reading or writing the cache"),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="worker processes"),
    rejected: Path | None = typer.Option(None, "--rejected", help="write rejected.csv here"),
    strict: bool = typer.Option(False, "--strict"),
    chunk_size: int | None = typer.Option(
        None,
        "--chunk-size",
        min=1,
        help="read a table source this many rows at a time; graphs go to the cache only (data larger than RAM)",
    ),
) -> None:
    """Build CGCNN crystal graphs (in parallel, cached) and print a summary."""
    if chunk_size and no_cache:
        fail("--chunk-size writes the graphs to the cache: drop --no-cache")
    from crystalgnn.graphs.atom_features import AtomFeaturizer
    from crystalgnn.graphs.builder import build_dataset_graphs
    from crystalgnn.graphs.cache import GraphCache
    from crystalgnn.graphs.crystal_graph import GraphConfig

    t0 = time.perf_counter()
    cfg = GraphConfig(radius=radius, max_neighbors=max_neighbors or None, pad_to_max_neighbors=pad)
    cache = None if no_cache else GraphCache(cache_dir / "graphs.lmdb" if cache_dir else None)
    options: dict[str, Any] = {"cache": cache, "supported_elements": AtomFeaturizer.cgcnn().elements, "n_jobs": jobs}
    if chunk_size:
        ds, n_graphs, rep = _build_in_chunks(sources, cfg, chunk_size, options)
        t2 = time.perf_counter()
        console.print(
            f"[bold]{n_graphs} graphs[/] from {ds.name}, read and built {chunk_size} rows at a time: {t2 - t0:.2f} s "
            f"({rep.n_from_cache} from cache, {rep.n_built} built); {n_graphs / max(t2 - t0, 1e-9):.0f} structures/s"
        )
    else:
        ds = load(sources, n_jobs=jobs)
        t1 = time.perf_counter()
        graphs, rep = build_dataset_graphs(ds, cfg, **options)
        n_graphs = len(graphs)
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
    report_rejections(ds, rejected, strict)
    if n_graphs == 0:
        fail(f"no graphs built: nothing usable in {ds.name}")


def _build_in_chunks(sources: list[str], cfg: Any, chunk_size: int, options: dict[str, Any]) -> tuple[Any, int, Any]:
    """``graphs build --chunk-size``: one table source, graphs into the cache chunk by chunk."""
    from crystalgnn.data.chunked import iter_source_chunks
    from crystalgnn.graphs.builder import build_chunked_graphs

    with failing_on_bad_data():
        chunks = (
            iter_source_chunks(sources[0], chunk_size=chunk_size, n_jobs=options["n_jobs"])
            if len(sources) == 1
            else None
        )
        if chunks is None:
            fail("--chunk-size reads one CSV / JSON-lines table or dataset short name")
        ds, graphs, rep = build_chunked_graphs(chunks, cfg, **options)
    return ds, len(graphs), rep
