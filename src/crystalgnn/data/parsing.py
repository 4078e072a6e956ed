"""Parsing many structures at once: in parallel, with a progress bar, never crashing a batch.

Each payload is CIF text, POSCAR text, a Structure dict, or a ``Structure``/``Atoms``. Worker
processes parse CIF text and send back compact arrays (lattice, species, fractional
coordinates), which are far cheaper to pass between processes than pickled ``Structure``s.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymatgen.core import Composition, Element, Lattice, Structure

from crystalgnn.data.dataset import one_line
from crystalgnn.data.p1_cif import p1_cif_arrays
from crystalgnn.data.structure_checks import StructureParseError, lattice_problem, structure_problem
from crystalgnn.data.structure_io import structure_from_any
from crystalgnn.progress import progress

#: below this many text payloads, parsing stays in the calling process
PARALLEL_MIN = 3000


def default_jobs() -> int:
    """Worker processes to use: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


@functools.lru_cache(maxsize=512)
def _composition(symbol: str) -> Composition:
    """One shared single-element ``Composition`` per symbol: building each site's own is about
    half the cost of rebuilding a ``Structure`` from arrays (compositions are immutable).
    """
    return Composition({Element(symbol): 1})


def _parse_one(payload: Any) -> Structure:
    if payload is None:
        raise StructureParseError("missing structure")
    structure = structure_from_any(payload)
    problem = structure_problem(structure)
    if problem:
        raise StructureParseError(problem)
    return structure


def _fast_cif(payload: Any) -> tuple[np.ndarray, list[str], np.ndarray] | None:
    """Arrays straight from a P1 CIF (no ``Structure`` built in the worker), or ``None``."""
    if not isinstance(payload, str) or "_cell_length_a" not in payload:
        return None
    arrays = p1_cif_arrays(payload)
    if arrays is None:
        return None
    problem = lattice_problem(arrays[0])  # elements and occupancies were checked while parsing
    if problem:
        raise StructureParseError(problem)
    return arrays


def _parse_compact(payload: Any) -> tuple[str, Any]:
    try:
        fast = _fast_cif(payload)
        if fast is not None:
            return "ok", fast
        s = _parse_one(payload)
    except StructureParseError as exc:
        return "err", str(exc)
    except Exception as exc:  # anything else a third-party parser raises
        return "err", one_line(f"unparsable structure ({type(exc).__name__}: {exc})")
    if s.site_properties:
        return "obj", s
    return "ok", (s.lattice.matrix, [site.specie.symbol for site in s], s.frac_coords)


def _parse_chunk(chunk: list[Any]) -> list[tuple[str, Any]]:
    return [_parse_compact(p) for p in chunk]


def parse_structures(
    payloads: Sequence[Any],
    *,
    n_jobs: int | None = None,
    show_progress: bool = True,
    desc: str = "parsing structures",
) -> list[Structure | str]:
    """Parse every payload; each result is a ``Structure`` or the reason it was rejected."""
    n = len(payloads)
    n_jobs = default_jobs() if n_jobs is None else max(1, n_jobs)
    texts = sum(isinstance(p, str) for p in payloads)
    # Structures are built from the workers' arrays as each chunk arrives, while the workers
    # parse the next chunks.
    out: list[Structure | str] = []
    if n_jobs > 1 and texts >= PARALLEL_MIN:
        import multiprocessing as mp

        chunk = 256
        chunks = [list(payloads[k : k + chunk]) for k in range(0, n, chunk)]
        ctx = mp.get_context("fork")
        with ctx.Pool(n_jobs) as pool, progress(total=n, desc=desc, disable=not show_progress) as bar:
            for part in pool.imap(_parse_chunk, chunks):
                out.extend(_to_structure(kind, value) for kind, value in part)
                bar.update(len(part))
    else:
        with progress(total=n, desc=desc, disable=not show_progress or n < 500) as bar:
            for p in payloads:
                out.append(_to_structure(*_parse_compact(p)))
                bar.update(1)
    return out


def _to_structure(kind: str, value: Any) -> Structure | str:
    """A worker's result as a ``Structure`` (or the rejection reason it carries)."""
    if kind == "ok":
        lattice, species, frac = value
        return Structure(Lattice(lattice), [_composition(sp) for sp in species], np.asarray(frac))
    return value  # a Structure ("obj") or the reason ("err")
