"""Hostile cells and dying workers: the neighbour search refuses cells that would crash (SIGFPE)
or hang its compiled back ends, with a named reason, on every path; the parallel builder
survives a worker that dies anyway, rejecting only the structure that killed it.

The crash tests replace ``build_graph_arrays_many`` in :mod:`crystalgnn.graphs.builder` with a
wrapper that kills its process on a marked structure. The builder's worker processes are forked
(``fork`` context) after the replacement, so they run it too.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import time

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

import crystalgnn.graphs.builder as builder
from crystalgnn.graphs.batched_graphs import build_graph_arrays_many
from crystalgnn.graphs.builder import CRASH_REASON, build_graph_list
from crystalgnn.graphs.crystal_graph import (
    GraphBuildError,
    GraphConfig,
    build_graph,
    structure_arrays,
    structure_arrays_many,
    structure_problems,
)
from crystalgnn.graphs.neighbors import (
    MAX_IMAGES,
    MIN_CELL_FLATNESS,
    UnsafeCellError,
    _vesin_grid_collapses,
    batched_dense_neighbors,
    cell_problem,
    cell_problems,
    periodic_neighbors,
)
from tinydata import low_symmetry_cells, perovskite_rows, small_structures, structures_of

FIELDS = ("z", "pos", "lattice", "edge_index", "edge_shift", "edge_vec", "edge_dist")
SRTIO3 = (["Sr", "Ti", "O", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


def long_axis_cell() -> Structure:
    """A perovskite with c = 10^6 Å: vesin's cell grid collapses to 0 cells along a (SIGFPE)."""
    return Structure(Lattice.from_parameters(3.905, 3.905, 1e6, 90, 90, 90), *SRTIO3)


def near_degenerate_cell() -> Structure:
    """a = b = c = 4 Å, alpha = beta = gamma = 120 degrees: coplanar vectors, a volume of rounding
    noise (~2e-6 Å^3, above a 1e-6 determinant test); the image search never ends."""
    return Structure(Lattice.from_parameters(4, 4, 4, 120, 120, 120), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])


def hostile() -> dict[str, Structure]:
    return {"long_axis": long_axis_cell(), "near_degenerate": near_degenerate_cell()}


def test_hostile_cells_are_refused_by_scale_free_tests() -> None:
    long_axis, flat = long_axis_cell().lattice, near_degenerate_cell().lattice
    assert 1e-6 < flat.volume < 1e-5  # passes a fixed determinant threshold
    for lattice in (long_axis, flat):
        why = cell_problem(lattice.matrix, 8.0)
        assert why is not None and why.startswith("degenerate cell:")
        # the same verdict at any scale: the test compares the cell's height with its edges
        for scale in (1e-3, 1e3):
            assert str(cell_problem(lattice.matrix * scale, 8.0)).startswith("degenerate cell:")
    # the batched test agrees with the one-cell test (plain floats)
    stack = np.stack([long_axis.matrix, flat.matrix, np.eye(3) * 4.0])
    assert cell_problems(stack, 8.0) == [cell_problem(m, 8.0) for m in stack]
    assert cell_problems(stack, 8.0)[2] is None


def test_other_refusals_are_named() -> None:
    # a cubic cell of 0.05 Å: not degenerate, but 321^3 images within 8 Å
    tiny = np.eye(3) * 0.05
    assert cell_problem(tiny, 8.0).startswith("neighbour search too large:")  # type: ignore[union-attr]
    assert cell_problem(tiny, 0.5) is None and MAX_IMAGES >= (2 * 10 + 1) ** 3
    nan_cell = np.eye(3) * 4.0
    nan_cell[1, 1] = np.nan
    assert cell_problem(nan_cell, 8.0).startswith("non-finite lattice:")  # type: ignore[union-attr]
    assert cell_problems(np.stack([nan_cell, tiny]), 8.0)[0].startswith("non-finite lattice:")  # type: ignore[union-attr]
    # non-finite positions, and more atoms than the volume can hold 0.5 Å apart (Kepler's bound)
    cfg = GraphConfig()
    cell = np.eye(3) * 4.0
    nan_pos = np.array([[0.0, 0.0, 0.0], [np.nan, 1.0, 1.0]])
    z2 = np.array([11, 17])
    crowded = (np.eye(3) * 0.4, np.zeros((1, 3)), np.array([6]))
    items = [(cell, nan_pos, z2), crowded, (cell, np.zeros((1, 3)), np.array([6]))]
    found = structure_problems(items, cfg)
    assert found[0] is None and found[2] is None  # positions: left to the one-structure path
    assert found[1] is not None and found[1].startswith("overlapping atoms:")
    assert [structure_problems([it], cfg)[0] for it in items[:2]] == ["non-finite atomic positions", found[1]]
    # the batched builder finds no pair for the NaN position and hands it to that path
    assert [v if not ok else "built" for ok, v in build_graph_arrays_many(items, cfg)] == [
        "non-finite atomic positions",
        found[1],
        "built",
    ]


def test_every_search_path_refuses_the_hostile_cells() -> None:
    for name, st in hostile().items():
        lattice, cart, _ = structure_arrays(st)
        why = cell_problem(lattice, 8.0)
        assert why is not None, name  # checked first: a failure here must not reach vesin
        for backend in ("vesin", "numpy", "ase", "pymatgen", "auto"):
            with pytest.raises(UnsafeCellError, match="degenerate cell"):
                periodic_neighbors(cart, lattice, 8.0, backend)  # type: ignore[arg-type]
            with pytest.raises(GraphBuildError, match="degenerate cell"):
                build_graph(st, GraphConfig(backend=backend))  # type: ignore[arg-type]
        with pytest.raises(UnsafeCellError, match="degenerate cell"):
            batched_dense_neighbors(cart[None], lattice[None], np.array([4.0]), np.array([1, 1, 1]))
    # the batched builder (auto: dense batches + vesin) rejects them among good structures
    good = list(small_structures().values())
    items = structure_arrays_many([*good[:2], *hostile().values(), *good[2:]])
    out = build_graph_arrays_many(items, GraphConfig())
    assert [ok for ok, _ in out] == [True, True, False, False, True, True]
    assert all(str(v).startswith("degenerate cell:") for ok, v in out if not ok)


def test_thresholds_leave_real_crystals_alone() -> None:
    cells = [*small_structures().values(), *low_symmetry_cells(), *structures_of(perovskite_rows(50))]
    assert structure_problems(structure_arrays_many(cells), GraphConfig()) == [None] * len(cells)
    # graphene with 100 Å of vacuum: shortest height 2.13 Å, 200 times the flatness limit
    slab = Lattice.from_parameters(2.46, 2.46, 100, 90, 90, 120)
    assert cell_problem(slab.matrix, 8.0) is None
    assert 200 * MIN_CELL_FLATNESS < 2.13 / 100


def test_vesin_grid_collapse_goes_to_ase() -> None:
    # heights 2.6, 2540, 2540 Å: not degenerate by the flatness test (1e-3), but vesin's grid of
    # at most 10^5 cells would get 0 cells along a and divide by zero
    cell = np.diag([2.6, 2540.0, 2540.0])
    cart = np.array([[0.0, 0.0, 0.0], [1.3, 1270.0, 1270.0]])
    assert cell_problem(cell, 8.0) is None and _vesin_grid_collapses(cell, 8.0)
    assert not _vesin_grid_collapses(np.eye(3) * 4.0, 8.0)
    got = periodic_neighbors(cart, cell, 8.0, "vesin")
    want = periodic_neighbors(cart, cell, 8.0, "numpy")
    assert sorted(got.distance.round(9).tolist()) == sorted(want.distance.round(9).tolist())
    assert len(got.distance) == 12  # each atom and its images 2.6 Å apart along a, up to 3 images each side


@pytest.fixture(scope="module")
def mixed() -> tuple[list[Structure], list[int]]:
    """150 perovskites with the hostile cells at 40 and 130 and two killers (marked by element
    118, Og, at 12 and 117, Ts, at 98), in different chunks of the parallel build."""
    sts = structures_of(perovskite_rows(150))
    sts.insert(40, long_axis_cell())
    sts.insert(130, near_degenerate_cell())
    for pos, element in ((12, "Og"), (98, "Ts")):
        sts[pos] = sts[pos].copy()
        sts[pos].replace(0, element)
    return sts, [12, 98]


def _crashing(real):  # the replacement of build_graph_arrays_many in the workers
    parent = os.getpid()

    def build(items, config):
        if os.getpid() != parent:  # never kill the test process itself
            faulthandler.disable()  # pytest's would print the dying worker's stack
            for _, _, z in items:
                if 118 in z:
                    os.kill(os.getpid(), signal.SIGFPE)
                if 117 in z:
                    os._exit(3)
        return real(items, config)

    return build


def test_parallel_builder_survives_dying_workers(mixed, monkeypatch) -> None:
    structures, killers = mixed
    reference, ref_report = build_graph_list(structures, n_jobs=1, show_progress=False)
    monkeypatch.setattr(builder, "PARALLEL_MIN", 1)
    monkeypatch.setattr(builder, "build_graph_arrays_many", _crashing(builder.build_graph_arrays_many))
    graphs, report = build_graph_list(structures, n_jobs=2, show_progress=False)
    reasons = dict(report.rejected)
    assert [i for i, _ in report.rejected] == sorted([40, 130, *killers])
    assert reasons[40].startswith("degenerate cell:") and reasons[130].startswith("degenerate cell:")
    og, ts = killers
    assert reasons[og] == f"{CRASH_REASON} (the process building its graph was killed by SIGFPE)"
    assert reasons[ts] == f"{CRASH_REASON} (the process building its graph exited with code 3)"
    # every other structure is built, identically to one process, in its place
    assert report.n_built == len(structures) - 4
    for i, (g, ref) in enumerate(zip(graphs, reference, strict=True)):
        if i in reasons:
            assert g is None
            continue
        assert g is not None and ref is not None
        for f in FIELDS:
            assert torch.equal(g[f], ref[f]), (i, f)
    # without the killers the one-process run built them (their elements have no crash there)
    assert dict(ref_report.rejected).keys() == {40, 130}


def test_guarded_cells_cannot_kill_either_path(mixed, monkeypatch) -> None:
    structures = mixed[0][:60]  # the long-axis cell at 40, killers inactive (no replacement)
    structures = [*structures, near_degenerate_cell()]
    one, rep_one = build_graph_list(structures, n_jobs=1, show_progress=False)
    monkeypatch.setattr(builder, "PARALLEL_MIN", 1)
    two, rep_two = build_graph_list(structures, n_jobs=2, show_progress=False)
    assert rep_one.rejected == rep_two.rejected
    assert [i for i, _ in rep_one.rejected] == [40, 60]
    assert all(r.startswith("degenerate cell:") for _, r in rep_one.rejected)
    assert all((a is None) == (b is None) for a, b in zip(one, two, strict=True))


def _sleeping(real):  # workers that would take a minute per chunk
    parent = os.getpid()

    def build(items, config):
        if os.getpid() != parent:
            time.sleep(60)
        return real(items, config)

    return build


def test_an_interrupt_stops_the_workers_at_once(mixed, monkeypatch) -> None:
    """Ctrl-C (or SIGTERM turned into KeyboardInterrupt by ``crystalgnn train``) during a parallel
    build ends it now, not after every queued chunk."""
    monkeypatch.setattr(builder, "PARALLEL_MIN", 1)
    monkeypatch.setattr(builder, "build_graph_arrays_many", _sleeping(builder.build_graph_arrays_many))

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            build_graph_list(mixed[0], n_jobs=2, show_progress=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - start < 20
