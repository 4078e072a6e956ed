"""Every problem training would reject in a source, found before training: :func:`inspect_source`.

Training drops entries at three stages, each recorded as a
:class:`~crystalgnn.data.dataset.Rejection`:

* ``read``: the reader could not use the entry (unparsable or empty file, disordered sites,
  unknown element, missing structure file, duplicate id, ...);
* ``label``: a requested label is missing, NaN or infinite (the same check and reason as
  training: :meth:`~crystalgnn.data.dataset.CrystalDataset.require_targets`);
* ``graph``: the crystal graph cannot be built (element without atom features, isolated atom,
  overlapping atoms), found by :func:`crystalgnn.graphs.builder.build_graph_list` without the
  cache, with the CGCNN graph settings and atom-feature elements unless others are given.

Unlike training, which stops looking at an entry at its first problem, the inspection checks
every parsed entry at the label and graph stages, so an entry with two problems is listed twice
(once per stage).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crystalgnn.data.dataset import CrystalDataset, Rejection, reason_kind
from crystalgnn.data.readers import load_source
from crystalgnn.data.targets import ensure_targets
from crystalgnn.graphs.builder import build_graph_list
from crystalgnn.graphs.crystal_graph import GraphConfig

#: the stages at which an entry can be rejected, in the order training applies them
STAGES = ("read", "label", "graph")
#: structures handed to the graph builder at a time (the graphs are dropped after each chunk)
GRAPH_CHUNK = 4096


@dataclass
class Inspection:
    """What :func:`inspect_source` found.

    Attributes:
        dataset: the entries that pass every check (what training would use), with all the
            rejections in ``dataset.rejections``.
        rejections: every problem found: one :class:`Rejection` (id, source, full reason) per
            problem, reader-stage first, then label, then graph.
        stages: the stage of each rejection (``"read"``, ``"label"`` or ``"graph"``).
        targets: the labels that were required.
        graph_config: the graph settings used.
        n_read: entries the reader parsed (before the label and graph checks).
    """

    dataset: CrystalDataset
    rejections: list[Rejection] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    graph_config: GraphConfig = field(default_factory=GraphConfig)
    n_read: int = 0

    def __len__(self) -> int:
        return len(self.rejections)

    @property
    def rejected_ids(self) -> list[str]:
        """Ids with at least one problem, in order of first appearance."""
        return list(dict.fromkeys(r.id for r in self.rejections))

    def counts(self, by: str = "kind") -> Counter[str]:
        """Number of problems per reason kind (default, e.g. ``isolated atom``), per full
        ``"reason"``, or per ``"stage"``.
        """
        if by == "kind":
            return Counter(reason_kind(r.reason) for r in self.rejections)
        if by == "reason":
            return Counter(r.reason for r in self.rejections)
        if by == "stage":
            return Counter(self.stages)
        raise ValueError(f"counts(by=...) takes 'kind', 'reason' or 'stage', not {by!r}")

    def rows(self) -> list[dict[str, str]]:
        """One dict per problem: ``id``, ``source``, ``stage``, ``kind``, ``reason``."""
        return [
            {"id": r.id, "source": r.source, "stage": s, "kind": reason_kind(r.reason), "reason": r.reason}
            for r, s in zip(self.rejections, self.stages, strict=True)
        ]

    def to_frame(self) -> Any:
        """The problems as a pandas ``DataFrame`` (columns id, source, stage, kind, reason)."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=["id", "source", "stage", "kind", "reason"])

    def write_csv(self, path: str | Path) -> Path:
        """Write the problems as CSV (id, source, stage, kind, reason); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["id", "source", "stage", "kind", "reason"])
            w.writeheader()
            w.writerows(self.rows())
        return path

    def summary(self) -> dict[str, Any]:
        """The usable entries' :meth:`~crystalgnn.data.dataset.CrystalDataset.summary`
        (counts, elements, sites, label statistics with units), plus ``read`` (entries parsed),
        ``rejected`` (problems), ``rejected_entries`` (distinct ids), ``rejections_by_reason``
        (per kind), ``rejections_by_stage``, ``targets`` and ``graph_config``.
        """
        s = self.dataset.summary()
        s.update(
            read=self.n_read,
            rejected=len(self.rejections),
            rejected_entries=len(self.rejected_ids),
            rejections_by_reason=dict(self.counts("kind").most_common()),
            rejections_by_stage={k: self.counts("stage")[k] for k in STAGES if self.counts("stage")[k]},
            targets=list(self.targets),
            graph_config=self.graph_config.to_dict(),
        )
        return s


def inspect_source(
    source: Any,
    *,
    targets: Sequence[str] | None = None,
    graph_config: GraphConfig | None = None,
    supported_elements: Collection[int] | None = None,
    **load_kw: Any,
) -> Inspection:
    """Load ``source`` and report every entry training would reject, with the reason.

    Args:
        source: anything :func:`~crystalgnn.data.readers.load_source` reads (path, folder,
            dataset short name, list of them, structures, a ``CrystalDataset``).
        targets: labels to require (a name or a list of names): entries whose label is missing, NaN or infinite are
            reported (``label 'y' is missing, NaN or infinite``); derived names (``log10_X``, ...)
            are computed. ``None``: no label check.
        graph_config: graph settings (default: ``GraphConfig()``, CGCNN's radius 8 Å and 12
            neighbours; isolated and overlapping atoms depend on them).
        supported_elements: atomic numbers that have atom features (default: the CGCNN
            table's, Z = 1-100); other elements are reported.
        **load_kw: passed to ``load_source``: ``structure_column``, ``end_member``, ``n_jobs``
            (also used for graph building), ``show_progress``, ``subset``, ``subset_seed``.

    Returns:
        an :class:`Inspection`: the usable entries, every problem (id, source, stage, full
        reason), counts per reason, ``to_frame()`` and ``write_csv(path)``.

    Raises:
        DataError: when the source cannot be read at all (as ``load_source``).
        KeyError: for a target the source does not have (and cannot derive).
    """
    targets = [targets] if isinstance(targets, str) else list(targets or [])
    config = graph_config or GraphConfig()
    if supported_elements is None:
        from crystalgnn.graphs.atom_features import AtomFeaturizer

        supported_elements = AtomFeaturizer.cgcnn().elements
    ds = load_source(source, **load_kw)
    if ds is source:  # a CrystalDataset given: do not drop its entries in place
        ds = ds.subset(range(len(ds)))
    n_read = len(ds)
    rejections = list(ds.rejections)
    stages = ["read"] * len(rejections)
    bad: set[int] = set()

    # label stage: training's own check, on a copy, for every parsed entry
    if targets:
        ensure_targets(ds, targets)
        probe = ds.subset(range(len(ds)))
        probe.rejections = []
        probe.ids = [str(i) for i in range(len(ds))]  # positions, to map the rejections back
        probe.require_targets(targets)
        for r in probe.rejections:
            i = int(r.id)
            rejections.append(Rejection(ds.ids[i], r.source, r.reason))
            stages.append("label")
            bad.add(i)

    # graph stage: the builder training uses, without the cache, chunk by chunk
    n_jobs = load_kw.get("n_jobs")
    show = bool(load_kw.get("show_progress", True))
    for start in range(0, len(ds), GRAPH_CHUNK):
        _, report = build_graph_list(
            ds.structures[start : start + GRAPH_CHUNK],
            config,
            cache=None,
            supported_elements=supported_elements,
            n_jobs=n_jobs,
            show_progress=show,
        )
        for k, why in report.rejected:
            i = start + k
            src = str(ds.metadata[i].get("source", ds.name))
            rejections.append(Rejection(ds.ids[i], src, why))
            stages.append("graph")
            bad.add(i)

    kept = ds.subset([i for i in range(len(ds)) if i not in bad])
    kept.rejections = list(rejections)
    return Inspection(
        dataset=kept,
        rejections=rejections,
        stages=stages,
        targets=targets,
        graph_config=config,
        n_read=n_read,
    )


__all__ = ["STAGES", "Inspection", "inspect_source"]
