"""The cathode screen: hosts -> generate -> filter -> dedup -> flag known -> end members ->
score -> rank -> report (issue 17, ``crystalgnn screen``).

Each stage is a function from lists to lists (:func:`collect_hosts`, :func:`generate`,
:func:`prepare_candidates`, :func:`~crystalgnn.discovery.scoring.score_pairs`,
:func:`~crystalgnn.discovery.ranking.rank_candidates`) with no global state, so the candidate
list is partitioned and mapped by an engine (:mod:`~crystalgnn.discovery.engine`: this process
or a Dask cluster; :mod:`~crystalgnn.discovery.screen_tasks`) with the same result. :func:`run_screen` chains
them in an output folder and is resumable: the candidate pairs (``candidates.jsonl.gz``,
structures as pymatgen dicts) and the scores (``scores.csv``) are saved with a fingerprint of
the options they depend on (``stages.json``) and reused when the same command is run again;
an interrupted scoring stage resumes from its saved batches
(:mod:`~crystalgnn.discovery.screen_scoring`).
No candidate is relaxed (lattices are rescaled to a predicted volume at most).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Composition, Structure

from crystalgnn.data.dataset import DataError, Rejection
from crystalgnn.data.structure_checks import StructureParseError
from crystalgnn.data.structure_io import structure_from_cif_text
from crystalgnn.discovery.candidates import Candidate, load_hosts
from crystalgnn.discovery.engine import Engine, LocalEngine, in_input_order, split
from crystalgnn.discovery.hull import HullReference, chemical_system, load_reference_energies
from crystalgnn.discovery.ranking import rank_candidates
from crystalgnn.discovery.scoring import TEXT_COLUMNS, ScoringModels, load_models
from crystalgnn.discovery.screen_config import ScreenConfig
from crystalgnn.discovery.screen_report import ScreenResult, Staged, write_screen_report
from crystalgnn.discovery.screen_scoring import score_candidates, score_resumably
from crystalgnn.discovery.screen_tasks import (
    charged_pairs,
    deduplicate,
    flag_known_part,
    formula_partitions,
    generate_valid,
    generation_tasks,
    merge_duplicates,
    merge_generated,
    references_for,
    run_generation,
)
from crystalgnn.progress import progress

Pair = tuple[Candidate, Candidate]
PARTIAL = "scores.partial"
"""Folder of the scoring batches finished so far (removed when the stage completes)."""


def collect_hosts(sources: Iterable[str], working_ion: str) -> tuple[list[Candidate], Staged]:
    """Hosts of every source; unreadable sources and bad hosts named with their reason."""
    hosts: list[Candidate] = []
    rejected: Staged = []
    for source in sources:
        try:
            found, bad = load_hosts(source, working_ion)
        except (DataError, FileNotFoundError, ValueError, KeyError) as exc:
            rejected.append(("host", Rejection(str(source), str(source), f"unreadable source: {exc}")))
            continue
        hosts += found
        rejected += [("host", r) for r in bad]
    return hosts, rejected


def generate(hosts: Sequence[Candidate], config: ScreenConfig) -> tuple[list[Candidate], Staged]:
    """The hosts themselves (``keep_hosts``), decorated prototypes, and explicit and probable
    substitutions of the hosts, in that order: duplicate removal keeps the first of a group, so
    a relaxed host, then an ideal prototype, is kept rather than an unrelaxed substitution
    product of the same structure.
    """
    out: list[Candidate] = []
    rejected: Staged = []
    for task in generation_tasks(hosts, config):
        made, bad = run_generation(task, config)
        out += made
        rejected += bad
    return out, rejected


@lru_cache(maxsize=4096)
def _reduced(formula: str) -> str:
    try:
        return Composition(formula).reduced_formula
    except ValueError:  # a few legacy rows hold placeholder formulas
        return ""


def known_references(name: str, formulas: Iterable[str]) -> list[tuple[str, Structure]]:
    """Structures of the catalog data set ``name`` whose reduced formula is in ``formulas``.

    Only matching rows are parsed, so the electrode table (4,148 CIFs) costs a file scan. For
    electrode tables the discharged member is the reference.
    """
    from crystalgnn.data.catalog import ALIASES, CATALOG, catalog_path

    entry = CATALOG[ALIASES.get(name, name)]
    key = "low_formula" if entry.electrode else "formula"
    find = re.compile(rf'"{key}":\s*"([^"]+)"')  # read the formula without parsing the row
    wanted = set(formulas)
    systems = {chemical_system(f) for f in wanted}  # a cheap first test, by elements
    out: list[tuple[str, Structure]] = []
    with gzip.open(catalog_path(name), "rt", encoding="utf-8") as fh:
        for line in fh:
            m = find.search(line)
            if m is None or chemical_system(m.group(1)) not in systems or _reduced(m.group(1)) not in wanted:
                continue
            row = json.loads(line)
            if not row.get(entry.structure_column):
                continue
            try:
                out.append((str(row["id"]), structure_from_cif_text(row[entry.structure_column])))
            except StructureParseError:
                continue
    return out


def prepare_candidates(
    hosts: Sequence[Candidate], config: ScreenConfig, show_progress: bool = False, engine: Engine | None = None
) -> tuple[list[Pair], Staged, dict[str, int], dict[str, float]]:
    """Stage chain: generate -> validity filter -> duplicates -> known flag -> charged end members.

    Each stage is mapped over partitions by ``engine`` (default: this process, unpartitioned)
    and merged in order (:mod:`~crystalgnn.discovery.screen_tasks`), so every engine gives the
    same pairs and rejections. With ``show_progress`` a bar advances stage by stage.
    """
    engine = engine or LocalEngine()
    n = engine.partitions
    seconds: dict[str, float] = {}
    bar = progress(total=4, desc="generate", disable=not show_progress, unit="stage")

    def done(stage: str, start: float, following: str) -> float:
        seconds[stage] = time.perf_counter() - start
        bar.update()
        bar.set_description(following)
        return time.perf_counter()

    t = time.perf_counter()
    tasks = generation_tasks(hosts, config, n)
    parts = engine.map(generate_valid, tasks, config, desc="generation tasks", show_progress=show_progress)
    valid, rejected, n_generated = merge_generated(parts)
    t = done("generate", t, f"deduplicate {len(valid)}")
    bins = formula_partitions(valid, n)
    kept = engine.map(deduplicate, [[valid[i] for i in b] for b in bins], desc="deduplicate")
    unique, duplicate_of = merge_duplicates(valid, bins, kept)
    rejected += [("duplicate", Rejection(i, "dedup", f"duplicate of {k}")) for i, k in duplicate_of.items()]
    t = done("dedup", t, f"flag known {len(unique)}")
    formulas = {c.formula for c in unique}
    try:
        refs = [ref for name in config.known_references for ref in known_references(name, formulas)]
    except DataError as exc:  # shared data missing: candidates stay unflagged (known None)
        rejected.append(("known", Rejection("known references", "data", str(exc))))
        refs = None
    if config.known_references and refs is not None:
        bins = formula_partitions(unique, n)  # a formula's references go to one worker
        chunks = [[unique[i] for i in b] for b in bins]
        flagged = engine.map(_flag_known_with, list(zip(chunks, references_for(chunks, refs), strict=True)))
        unique = in_input_order(bins, flagged)
    t = done("known", t, "charged end members")
    made = engine.map(charged_pairs, split(unique, n), config.charged_fraction, desc="end members")
    pairs = [p for part, _ in made for p in part]
    rejected += [r for _, bad in made for r in bad]
    done("end_members", t, "candidates ready")
    bar.close()
    counts = {"hosts": len(hosts), "generated": n_generated, "valid": len(valid), "unique": len(unique)}
    counts["pairs"] = len(pairs)
    return pairs, rejected, counts, seconds


def _flag_known_with(part: tuple[list[Candidate], list[tuple[str, Structure]]]) -> list[Candidate]:
    return flag_known_part(*part)


# ---------------------------------------------------------------- stage files


def candidate_to_dict(c: Candidate) -> dict[str, Any]:
    return {
        "id": c.id,
        "host_id": c.host_id,
        "steps": list(c.steps),
        "working_ion": c.working_ion,
        "known": c.known,
        "metadata": json.loads(json.dumps(c.metadata, default=str)),
        "structure": c.structure.as_dict(),
    }


def candidate_from_dict(d: dict[str, Any]) -> Candidate:
    return Candidate(
        d["id"],
        Structure.from_dict(d["structure"]),
        d["host_id"],
        tuple(d["steps"]),
        d["working_ion"],
        d["known"],
        d["metadata"],
    )


def write_pairs(pairs: Sequence[Pair], path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for d, c in pairs:
            fh.write(json.dumps({"discharged": candidate_to_dict(d), "charged": candidate_to_dict(c)}) + "\n")


def read_pairs(path: Path) -> list[Pair]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [(candidate_from_dict(r["discharged"]), candidate_from_dict(r["charged"])) for r in rows]


def write_rejections(rejected: Staged, path: Path) -> None:
    pd.DataFrame(
        [(r.id, stage, r.source, r.reason) for stage, r in rejected], columns=["id", "stage", "source", "reason"]
    ).to_csv(path, index=False)


def read_rejections(path: Path) -> Staged:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [(row.stage, Rejection(row.id, row.source, row.reason)) for row in df.itertuples()]


def _read_scores(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:  # no candidate was scored
        return pd.DataFrame()
    text = set(df.select_dtypes(include="object").columns) | {c for c in TEXT_COLUMNS if c in df.columns}
    for col in sorted(text):
        df[col] = df[col].fillna("").astype(str)
    return df


def _stages(out: Path) -> dict[str, Any]:
    p = out / "stages.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def _save_stage(out: Path, stage: str, key: str, **info: Any) -> None:
    stages = _stages(out)
    stages[stage] = {"key": key, **info}
    (out / "stages.json").write_text(json.dumps(stages, indent=1))


# ---------------------------------------------------------------- the pipeline


def load_hull(name: str | None) -> HullReference | None:
    """The reference hull of ``name`` (a catalog name or ``.jsonl.gz`` path), ``None`` for none."""
    return None if name is None else HullReference(load_reference_energies(name))


def run_screen(
    config: ScreenConfig,
    out_dir: str | Path,
    models: ScoringModels | None = None,
    show_progress: bool = False,
    write_report: bool = True,
    engine: Engine | None = None,
) -> ScreenResult:
    """Run (or resume) the screen of ``config`` in ``out_dir``.

    Args:
        models: predictors to use instead of loading ``config``'s model names (then the scores
            are not reused across runs, as their fingerprint cannot be known).
        write_report: also write CIFs, plots and ``report.md``
            (:func:`~crystalgnn.discovery.screen_report.write_screen_report`).
        engine: where generation and scoring run (:mod:`~crystalgnn.discovery.engine`; default
            this process). Every engine gives the same result, so it is not part of the stage
            fingerprints: a screen started on one engine resumes on another.
    """
    config.check()
    engine = engine or LocalEngine()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "screen.yaml")
    stages = _stages(out)
    result = ScreenResult(pd.DataFrame())
    cand_key = config.stage_key("candidates")
    cand_file, rej_file = out / "candidates.jsonl.gz", out / "rejected.csv"
    if stages.get("candidates", {}).get("key") == cand_key and cand_file.is_file() and rej_file.is_file():
        pairs = read_pairs(cand_file)
        result.rejected = read_rejections(rej_file)
        result.counts = dict(stages["candidates"]["counts"])
        result.reused.append("candidates")
    else:
        t = time.perf_counter()
        hosts, rejected = collect_hosts(config.hosts, config.working_ion)
        result.seconds["hosts"] = time.perf_counter() - t
        pairs, more, counts, seconds = prepare_candidates(hosts, config, show_progress, engine)
        result.rejected = rejected + more
        result.counts = {"host_rejected": sum(s == "host" for s, _ in rejected), **counts}
        result.seconds.update(seconds)
        write_pairs(pairs, cand_file)
        write_rejections(result.rejected, rej_file)
        _save_stage(out, "candidates", cand_key, counts=result.counts)
        stages = _stages(out)
    score_key = config.stage_key("scores") if models is None else None
    score_file = out / "scores.csv"
    if score_key and stages.get("scores", {}).get("key") == score_key and score_file.is_file():
        scores = _read_scores(score_file)
        result.notes = list(stages["scores"].get("notes", []))
        result.reused.append("scores")
    else:
        t = time.perf_counter()
        if models is None:
            assert config.formation_model is not None  # config.check
            models, notes = load_models(
                config.formation_model, config.voltage_model, config.band_gap_model, config.metal_model
            )
            result.notes += notes
        hull = load_hull(config.hull_reference)
        result.seconds["load_models"] = time.perf_counter() - t
        t = time.perf_counter()
        if score_key:  # batches saved as they finish: an interrupted stage resumes
            rows, reused = score_resumably(pairs, models, hull, engine, out / PARTIAL / score_key, show_progress)
            if reused:
                result.reused.append(f"{reused} scored batches")
        else:
            rows = score_candidates(pairs, models, hull, engine, show_progress)
        result.seconds["score"] = time.perf_counter() - t
        pd.DataFrame(rows).to_csv(score_file, index=False)
        scores = _read_scores(score_file)  # exactly as a resumed run reads it
        _save_stage(out, "scores", score_key or "", notes=result.notes)
        shutil.rmtree(out / PARTIAL, ignore_errors=True)
    result.counts["scored"] = len(scores)
    if len(scores):
        result.ranked = rank_candidates(scores, config.max_hull, config.voltage_window, config.objective, config.lcb_k)
        result.counts["passing"] = int(result.ranked["rank"].notna().sum())
    if write_report:
        write_screen_report(result, config, out, pairs)
    return result
