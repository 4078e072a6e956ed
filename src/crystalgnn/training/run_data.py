"""The inputs of a run: its dataset, atom-feature table, graphs (in memory or on disk) and split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from crystalgnn.data.chunked import iter_source_chunks
from crystalgnn.data.dataset import CrystalDataset
from crystalgnn.data.readers import load_source
from crystalgnn.data.splits import Split, group_split, random_split
from crystalgnn.graphs.atom_features import AtomFeaturizer
from crystalgnn.graphs.builder import GraphBuildReport, build_chunked_graphs, build_dataset_graphs
from crystalgnn.graphs.cache import CachedGraphs, GraphCache
from crystalgnn.training.config import TrainConfig
from crystalgnn.training.loaders import make_loader, select_graphs


def atom_table(cfg: TrainConfig, ds: CrystalDataset) -> tuple[torch.Tensor, str]:
    """The run's atom-feature table (``--atom-init``, the source's ``atom_init.json``, or CGCNN's
    computed table, kept under ``--cache-dir`` when one is given) and its name.
    """
    if cfg.cache_dir:
        from crystalgnn.graphs.element_properties import set_cache_dir

        set_cache_dir(cfg.cache_dir)
    path = cfg.atom_init or ds.atom_init
    feat = AtomFeaturizer.from_json(path) if path else AtomFeaturizer.cgcnn()
    return torch.tensor(feat.matrix()), (str(path) if path else "cgcnn")


def load_run_dataset(cfg: TrainConfig, targets: list[str], check: Any = None) -> CrystalDataset:
    """``cfg.source`` with ``targets`` (``cfg.subset`` raw entries drawn before parsing);
    ``check(ds)`` may reject it; it must not be empty.
    """
    ds = load_source(
        cfg.source,
        targets=targets,
        structure_column=cfg.structure_column,
        end_member=cfg.end_member,
        n_jobs=cfg.n_jobs,
        show_progress=cfg.progress,
        subset=cfg.subset,
        subset_seed=int(cfg.subset_seed),
    )
    if check is not None:
        check(ds)
    if len(ds) == 0:
        raise ValueError(f"{cfg.source}: no usable entries ({len(ds.rejections)} rejected)")
    return ds


def resolve_default_target(cfg: TrainConfig) -> list[str]:
    """The source's only graph-level label when no target is named (a CGCNN or ALIGNN folder's
    unnamed ``id_prop.csv`` column); a ``ValueError`` listing the labels when there are several.
    """
    from crystalgnn.data.targets import default_targets

    ds = load_source(cfg.source, structure_column=cfg.structure_column, end_member=cfg.end_member,
                     n_jobs=cfg.n_jobs, show_progress=False, subset=min(cfg.subset or 64, 64))  # fmt: skip
    return default_targets(ds)


def graph_options(cfg: TrainConfig, table: torch.Tensor) -> dict[str, Any]:
    """The graph builder's options of a run: cache, elements with atom features, jobs, progress."""
    cache = GraphCache(Path(cfg.cache_dir) / "graphs.lmdb" if cfg.cache_dir else None) if cfg.use_cache else None
    if cfg.graphs_on_disk and cache is None:
        raise ValueError("--graphs-on-disk reads graphs from the cache: do not disable it")
    supported = [int(z) for z in torch.nonzero(~torch.isnan(table).any(dim=1)).flatten()]
    return {"cache": cache, "supported_elements": supported, "n_jobs": cfg.n_jobs, "show_progress": cfg.progress}


def build_run_graphs(
    cfg: TrainConfig, ds: CrystalDataset, gcfg: Any, table: torch.Tensor
) -> tuple[list[Any] | CachedGraphs, GraphBuildReport]:
    """Graphs of ``ds`` (elements without atom features rejected; ``cfg``'s cache and jobs)."""
    return build_dataset_graphs(ds, gcfg, on_disk=cfg.graphs_on_disk, **graph_options(cfg, table))


def stream_run_graphs(
    cfg: TrainConfig, gcfg: Any
) -> tuple[CrystalDataset, CachedGraphs, Any, torch.Tensor, str] | None:
    """``--graphs-on-disk`` on a table source: rows read, graphs built into the cache and
    structures dropped one chunk at a time (only one chunk of structures is ever in memory);
    ``None`` for other sources, and with ``--subset`` (which draws from the parsed entries
    before graph building, as in memory). Returns the structure-free dataset, its graphs on
    disk, the build report and the atom table with its name.
    """
    if cfg.subset is not None:
        return None
    chunks = iter_source_chunks(
        cfg.source,
        targets=cfg.targets,
        structure_column=cfg.structure_column,
        end_member=cfg.end_member,
        n_jobs=cfg.n_jobs,
        show_progress=cfg.progress,
    )
    if chunks is None:
        return None
    table, feat_name = atom_table(cfg, CrystalDataset())  # table files carry no atom_init.json
    ds, graphs, report = build_chunked_graphs(chunks, gcfg, **graph_options(cfg, table))
    if len(ds) == 0:
        raise ValueError(f"{cfg.source}: no usable entries ({len(ds.rejections)} rejected)")
    return ds, graphs, report, table, feat_name


def run_split(cfg: TrainConfig, ds: CrystalDataset, run_dir: Path | None) -> Split:
    """The run folder's ``split.json``, else ``cfg.split_file``, else a seeded random split (saved).

    Ids of an id-list split that are not in the dataset raise
    :class:`~crystalgnn.data.splits.MissingSplitIds` naming each with the reason (its rejection
    when it was read); with ``cfg.skip_missing_split_ids`` they are left out (``Split.skipped``).
    """
    split_path = run_dir / "split.json" if run_dir else None
    why = {r.id: r.reason for r in ds.rejections}
    options: dict[str, Any] = {"rejected": why, "allow_missing": cfg.skip_missing_split_ids}
    if split_path is not None and split_path.is_file():
        split = Split.load(split_path, ds.ids, **options)
    elif cfg.split_file:
        split = Split.load(cfg.split_file, ds.ids, **options)
    elif cfg.split_by:
        split = group_split(split_groups(ds, cfg.split_by), [float(x) for x in cfg.split.split(",")], seed=cfg.seed)
    else:
        split = random_split(len(ds), [float(x) for x in cfg.split.split(",")], seed=cfg.seed)
    if split_path is not None and not split_path.is_file():
        split.save(split_path, ds.ids)
    return split


def split_groups(ds: CrystalDataset, column: str) -> list[Any]:
    """The value of the metadata ``column`` of every entry (``--split-by``); one line naming the
    columns there are when no entry has it.
    """
    values = [m.get(column) for m in ds.metadata]
    if all(v is None for v in values):
        have = sorted({k for m in ds.metadata for k in m if k != "source"})
        raise ValueError(f"--split-by {column}: no such column in {ds.name} (columns: {', '.join(have) or 'none'})")
    return values


def run_loaders(graphs: list[Any], split: Split, cfg: TrainConfig) -> tuple[Any, Any]:
    """Seeded shuffled training loader and validation loader (no validation part: a tenth of train)."""
    train_loader = make_loader(select_graphs(graphs, split.train), cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_idx = split.val if len(split.val) else split.train[: max(1, len(split.train) // 10)]
    val_graphs = select_graphs(graphs, val_idx)
    return train_loader, make_loader(val_graphs, cfg.batch_size)
