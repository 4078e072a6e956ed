"""The scoring stage of the screen: mapped by an engine, in batches saved as they finish.

:func:`score_candidates` splits the ``(discharged, charged)`` pairs into the engine's
partitions (whole chemical systems each, so a reference hull is built once) and maps :func:`~crystalgnn.discovery.scoring.score_pairs` over them (the models and
the reference hull are sent once to each worker). :func:`score_resumably` does so in batches of
:data:`SCORE_BATCH` pairs and writes each batch's rows to a file as soon as it is scored, so a
screen of many candidates that is interrupted (even ``kill -9``) resumes inside its scoring
stage: a re-run with the same stage fingerprint reads the finished batches and scores only the
rest. Rows are stored as JSON (floats round-trip exactly), so a resumed stage gives the same
``scores.csv`` as an uninterrupted one; batches do not depend on the engine, so an
interrupted screen may resume on another engine.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from crystalgnn.discovery.candidates import Candidate
from crystalgnn.discovery.engine import Engine, LocalEngine, in_input_order
from crystalgnn.discovery.hull import HullReference
from crystalgnn.discovery.scoring import ScoringModels
from crystalgnn.discovery.screen_tasks import score_part, system_partitions

SCORE_BATCH = 20_000
"""Pairs per saved batch: about 20 s of scoring on one core at the measured rate (issue 17
throughput), few files for 10^6 candidates, little lost on an interruption."""

Pair = tuple[Candidate, Candidate]


def score_candidates(
    pairs: Sequence[Pair],
    models: ScoringModels,
    hull: HullReference | None = None,
    engine: Engine | None = None,
    show_progress: bool = False,
) -> list[dict[str, Any]]:
    """:func:`~crystalgnn.discovery.scoring.score_pairs` mapped by ``engine`` (default: this
    process) over bins of whole chemical systems, rows in input order.
    """
    engine = engine or LocalEngine()
    task = partial(score_part, show_progress=show_progress and engine.in_process, n_jobs=engine.task_jobs)
    bins = system_partitions(pairs, engine.partitions)
    parts = engine.map(
        task, [[pairs[i] for i in b] for b in bins], models, hull, desc="scoring", show_progress=show_progress
    )
    return in_input_order(bins, parts)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def _write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=_plain) + "\n")
    os.replace(tmp, path)  # a batch file is complete or absent


def _read_rows(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def score_resumably(
    pairs: Sequence[Pair],
    models: ScoringModels,
    hull: HullReference | None,
    engine: Engine,
    folder: Path,
    show_progress: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """Rows of every pair (input order) and the number of batches read from ``folder``.

    ``folder`` holds this stage's batches only (name it after the stage fingerprint); other
    folders beside it, left by runs with other options, are removed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.iterdir():
        if stale.is_dir() and stale != folder:
            shutil.rmtree(stale, ignore_errors=True)
    rows: list[dict[str, Any]] = []
    reused = 0
    for start in range(0, len(pairs), SCORE_BATCH):
        stop = min(start + SCORE_BATCH, len(pairs))
        path = folder / f"pairs-{start:09d}-{stop:09d}.jsonl.gz"
        if path.is_file():
            rows += _read_rows(path)
            reused += 1
            continue
        made = score_candidates(pairs[start:stop], models, hull, engine, show_progress)
        _write_rows(made, path)
        rows += made
    return rows, reused
