"""The screen's stages as tasks over partitions, and their order-preserving merge (issue 17, part 4).

Each stage of :func:`~crystalgnn.discovery.screen.prepare_candidates` and of the scoring is
split so that an :class:`~crystalgnn.discovery.engine.Engine` can map it over partitions, and
merged so that the result equals the unpartitioned run (same candidates, ids, lineage, order
and rejections):

- *generation*: one task per (generator, contiguous chunk of hosts), and one per prototype
  framework, ordered generator-major like :func:`~crystalgnn.discovery.screen.generate`
  (hosts, prototypes, rule substitutions, Hautier substitutions); every generator treats each
  host (prototype) on its own, so the concatenation is the unpartitioned list. The validity
  filter, a per-candidate test, runs in the same task;
- *duplicates*: ``StructureMatcher`` only compares structures of equal reduced formula
  (:func:`~crystalgnn.discovery.candidates.remove_duplicates`), so whole formula groups are
  packed into partitions (:func:`formula_partitions`, largest group first into the lightest
  partition) and the kept flags and ``duplicate -> kept`` pairs are put back in input order;
- *known flag*: per candidate, in bins of whole formulas (each formula's references are sent
  to one worker only); *charged end members*: per candidate, contiguous chunks;
- *scoring*: per pair, in bins of whole chemical systems (:func:`system_partitions`): the
  reference hull of a system (most of the scoring time) is then built by one worker only.

The task functions are module-level (importable by a worker) and take plain data.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymatgen.core import Structure

from crystalgnn.discovery.candidates import Candidate, filter_valid, flag_known, remove_duplicates
from crystalgnn.discovery.end_members import end_member_pairs
from crystalgnn.discovery.engine import split, split_by_key
from crystalgnn.discovery.hull import HullReference
from crystalgnn.discovery.prototypes import decorate_prototypes
from crystalgnn.discovery.scoring import ScoringModels, score_pairs
from crystalgnn.discovery.screen_config import ScreenConfig
from crystalgnn.discovery.screen_report import Staged
from crystalgnn.discovery.substitution import apply_rules, parse_rules, probable_substitutions

Pair = tuple[Candidate, Candidate]

GENERATORS: tuple[str, ...] = ("hosts", "prototype", "substitute", "hautier")
"""Generator steps in the order their candidates are listed. Duplicate removal keeps the first of
each group: a relaxed host, then an ideal prototype, before an unrelaxed (distorted) substitution
product of the same structure."""


@dataclass(frozen=True)
class GenerationTask:
    """One generator on a chunk of hosts (``prototype``: on the frameworks ``prototypes``)."""

    generator: str
    hosts: tuple[Candidate, ...] = ()
    prototypes: tuple[str, ...] = ()


@dataclass
class GeneratedPart:
    """What a generation task returns: valid candidates and both kinds of rejection."""

    valid: list[Candidate]
    generator_rejected: Staged
    filter_rejected: Staged
    generated: int
    seconds: float = 0.0


def generation_tasks(hosts: Sequence[Candidate], config: ScreenConfig, partitions: int = 1) -> list[GenerationTask]:
    """The generation of ``config`` on ``hosts`` as tasks, generator-major, hosts in chunks."""
    wanted = {
        "hosts": config.keep_hosts,
        "substitute": bool(config.substitute),
        "hautier": config.hautier_threshold is not None,
    }
    tasks: list[GenerationTask] = []
    for generator in GENERATORS:
        if generator == "prototype":
            tasks += [GenerationTask("prototype", prototypes=(name,)) for name in config.prototypes]
        elif wanted[generator]:
            tasks += [GenerationTask(generator, tuple(chunk)) for chunk in split(hosts, partitions)]
    return tasks


def run_generation(task: GenerationTask, config: ScreenConfig) -> tuple[list[Candidate], Staged]:
    """The candidates of one task and the generator's rejections (stage = generator name)."""
    if task.generator == "hosts":
        return list(task.hosts), []
    if task.generator == "substitute":
        assert config.substitute is not None
        made, bad = apply_rules(task.hosts, parse_rules(config.substitute), rescale=config.rescale)
    elif task.generator == "hautier":
        assert config.hautier_threshold is not None
        made, bad = probable_substitutions(task.hosts, config.hautier_threshold, config.max_per_host, config.rescale)
    elif task.generator == "prototype":
        made, bad = decorate_prototypes(
            task.prototypes, config.metals, [config.working_ion], config.anions, rescale=config.rescale
        )
    else:
        raise ValueError(f"unknown generator {task.generator!r} (choose from {', '.join(GENERATORS)})")
    return made, [(task.generator, r) for r in bad]


def generate_valid(task: GenerationTask, config: ScreenConfig) -> GeneratedPart:
    """:func:`run_generation` then the validity filter (task of the generation stage)."""
    t = time.perf_counter()
    made, rejected = run_generation(task, config)
    valid, bad = filter_valid(made, config.min_distance)
    return GeneratedPart(valid, rejected, [("filter", r) for r in bad], len(made), time.perf_counter() - t)


def merge_generated(parts: Sequence[GeneratedPart]) -> tuple[list[Candidate], Staged, int]:
    """Valid candidates, rejections (generators' first, then the filter's) and the number generated."""
    valid = [c for p in parts for c in p.valid]
    rejected = [r for p in parts for r in p.generator_rejected] + [r for p in parts for r in p.filter_rejected]
    return valid, rejected, sum(p.generated for p in parts)


def formula_partitions(candidates: Sequence[Candidate], partitions: int) -> list[list[int]]:
    """Candidate positions in at most ``partitions`` bins of whole reduced-formula groups
    (:func:`~crystalgnn.discovery.engine.split_by_key`), each bin in input order.
    """
    return split_by_key([c.formula for c in candidates], partitions)


def system_partitions(pairs: Sequence[Pair], partitions: int) -> list[list[int]]:
    """Pair positions in bins of whole chemical systems (of the discharged member), so each
    reference hull is built on one worker only.
    """
    return split_by_key([tuple(sorted(d.structure.composition.chemical_system_set)) for d, _ in pairs], partitions)


def deduplicate(candidates: Sequence[Candidate]) -> tuple[list[bool], dict[str, str]]:
    """Task of the duplicate stage: kept flags (input order) and ``duplicate id -> kept id``."""
    unique, duplicate_of = remove_duplicates(candidates)
    kept = {id(c) for c in unique}
    return [id(c) in kept for c in candidates], duplicate_of


def merge_duplicates(
    candidates: Sequence[Candidate], bins: Sequence[Sequence[int]], results: Sequence[tuple[list[bool], dict[str, str]]]
) -> tuple[list[Candidate], dict[str, str]]:
    """Unique candidates in input order and ``duplicate -> kept`` ordered as
    :func:`~crystalgnn.discovery.candidates.remove_duplicates` orders them (formula groups by
    first appearance).
    """
    keep = [False] * len(candidates)
    pairs: list[tuple[str, str]] = []
    for idx, (flags, duplicate_of) in zip(bins, results, strict=True):
        for i, k in zip(idx, flags, strict=True):
            keep[i] = k
        pairs += duplicate_of.items()
    first: dict[str, int] = {}
    for i, c in enumerate(candidates):
        first.setdefault(c.formula, i)
    formula = {c.id: c.formula for c in candidates}
    pairs.sort(key=lambda p: first[formula[p[0]]])  # stable: order inside a group is kept
    return [c for c, k in zip(candidates, keep, strict=True) if k], dict(pairs)


def flag_known_part(candidates: Sequence[Candidate], references: Sequence[tuple[str, Structure]]) -> list[Candidate]:
    """Task of the known stage: :func:`~crystalgnn.discovery.candidates.flag_known` on a chunk."""
    return flag_known(candidates, references)


def references_for(
    chunks: Sequence[Sequence[Candidate]], references: Sequence[tuple[str, Structure]]
) -> list[list[tuple[str, Structure]]]:
    """For each chunk the references of its formulas only (what a worker needs to be sent)."""
    by_formula: dict[str, list[tuple[str, Structure]]] = {}
    for ref in references:
        by_formula.setdefault(ref[1].composition.reduced_formula, []).append(ref)
    return [[r for f in dict.fromkeys(c.formula for c in chunk) for r in by_formula.get(f, [])] for chunk in chunks]


def charged_pairs(candidates: Sequence[Candidate], fraction: float) -> tuple[list[Pair], Staged]:
    """Task of the end-member stage: (discharged, charged) pairs and the failures."""
    pairs, bad = end_member_pairs(candidates, fraction)
    return pairs, [("end member", r) for r in bad]


def score_part(
    pairs: Sequence[Pair],
    models: ScoringModels,
    hull: HullReference | None,
    show_progress: bool = False,
    n_jobs: int | None = None,
) -> list[dict[str, Any]]:
    """Task of the scoring stage: :func:`~crystalgnn.discovery.scoring.score_pairs` on a chunk."""
    return score_pairs(pairs, models, hull, show_progress, n_jobs=n_jobs)
