"""Tiny real datasets for the graph/model/training/CLI tests.

The rows are read straight from the shared JSON-lines files (only the first lines, so this is
fast) and written into a test's temporary folder as a JSON-lines table or a folder of CIF files.
``tests/`` is on ``sys.path`` (pytest's rootdir conftest), so test modules import this by name.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from pymatgen.core import Lattice, Structure

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"
PEROVSKITES = SHARED_DATA / "castelli_perovskites_cdvae.jsonl.gz"
MP_ELASTIC = SHARED_DATA / "mp_elastic_crysxpp_3k.jsonl.gz"
CGCNN_PRETRAINED = SHARED / "cgcnn_pretrained"

#: a cell whose two atoms are 0.2 Å apart (rejected as overlapping by the graph builder)
OVERLAP_CIF = """data_overlap
_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na 0.0 0.0 0.0
Cl 0.05 0.0 0.0
"""


def read_rows(path: Path, n: int | None = None, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The first ``n`` rows of a shared JSON-lines file (or the rows with the given ids)."""
    if not path.is_file():
        pytest.skip(f"shared data file not found: {path}")
    wanted = set(ids) if ids is not None else None
    rows = []
    with gzip.open(path, "rt") as f:
        for line in f:
            row = json.loads(line)
            if wanted is None or row["id"] in wanted:
                rows.append(row)
            if n is not None and len(rows) >= n:
                break
    return rows


def perovskite_rows(n: int) -> list[dict[str, Any]]:
    return read_rows(PEROVSKITES, n)


def write_jsonl(
    path: Path,
    rows: list[dict[str, Any]],
    columns: Iterable[str] = ("id", "cif", "heat_all"),
    extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Path:
    """A JSON-lines table with ``columns`` of each row (plus ``extra(row)``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for r in rows:
            out = {c: r[c] for c in columns}
            if extra is not None:
                out.update(extra(r))
            f.write(json.dumps(out) + "\n")
    return path


def write_cif_folder(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """One ``<id>.cif`` per row."""
    folder.mkdir(parents=True, exist_ok=True)
    for r in rows:
        (folder / f"{r['id']}.cif").write_text(r["cif"])
    return folder


def structures_of(rows: list[dict[str, Any]]) -> list[Any]:
    from pymatgen.core import Structure

    return [Structure.from_str(r["cif"], fmt="cif") for r in rows]


def small_structures() -> dict[str, Structure]:
    """Small ordered crystals with distinct element sets (site order as given)."""
    return {
        "nacl": Structure(Lattice.cubic(2.82), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "si": Structure(
            Lattice.from_parameters(3.84, 3.84, 3.84, 60, 60, 60), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]]
        ),
        "srtio3": Structure(
            Lattice.cubic(3.905),
            ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        ),
        "lifeo2": Structure(
            Lattice.from_parameters(2.9, 2.9, 14.2, 90, 90, 120),
            ["Li", "Fe", "O", "O"],
            [[0, 0, 0.5], [0, 0, 0], [1 / 3, 2 / 3, 0.26], [2 / 3, 1 / 3, 0.74]],
        ),
    }


def read_predictions(path: Path) -> Any:
    """A written ``predictions.csv`` with its unit-named headers (``<t> (<unit>)``,
    ``predicted <t> (<unit>)``) back as ``target`` / ``prediction`` (``_<t>`` for several)."""
    import pandas as pd

    df = pd.read_csv(path)
    predicted = [c for c in df.columns if str(c).startswith("predicted ")]
    mapping = {}
    for c in predicted:
        label = c[len("predicted ") :]
        sfx = "" if len(predicted) == 1 else "_" + label.split(" (")[0]
        mapping[c] = "prediction" + sfx
        if label in df.columns:
            mapping[label] = "target" + sfx
    return df.rename(columns=mapping)


def low_symmetry_cells(nacl_atoms: int = 4) -> list[Structure]:
    """Three low-symmetry cells (5, 4 and ``nacl_atoms`` = 2 or 4 atoms) with no ties at the 12th
    neighbour, so permutation, rotation and batching invariances hold exactly."""
    from pymatgen.core import Lattice, Structure

    nacl = (
        Structure(
            Lattice.from_parameters(3.9, 4.0, 4.2, 84, 87, 91),
            ["Na", "Cl", "Na", "Cl"],
            [[0, 0, 0], [0.52, 0.49, 0.5], [0.5, 0.03, 0.48], [0.01, 0.51, 0.02]],
        )
        if nacl_atoms == 4
        else Structure(Lattice.from_parameters(3.9, 4.0, 4.2, 84, 87, 91), ["Na", "Cl"], [[0, 0, 0], [0.52, 0.49, 0.5]])
    )
    return [
        Structure(
            Lattice.from_parameters(4.1, 4.5, 5.2, 80, 95, 100),
            ["Sr", "Ti", "O", "O", "O"],
            [[0, 0, 0], [0.5, 0.45, 0.52], [0.5, 0.5, 0], [0.1, 0.5, 0.5], [0.5, 0.0, 0.55]],
        ),
        Structure(
            Lattice.from_parameters(3.1, 3.3, 6.9, 88, 93, 117),
            ["Li", "Fe", "O", "O"],
            [[0, 0, 0.5], [0.02, 0.01, 0.0], [0.35, 0.66, 0.26], [0.66, 0.31, 0.74]],
        ),
        nacl,
    ]


def strained_crystals(n: int, seed: int = 0) -> list[Structure]:
    """``n`` distinct cells: :func:`low_symmetry_cells` (4-atom NaCl) in turn, isotropically
    strained (volume x 0.85-1.2) and with atoms displaced (0.06 Å normal), seeded."""
    import numpy as np
    from pymatgen.core import Structure

    rng = np.random.default_rng(seed)
    out = []
    bases = low_symmetry_cells(4)
    for k in range(n):
        s = bases[k % len(bases)].copy()
        s.scale_lattice(s.volume * float(rng.uniform(0.85, 1.2)))
        cart = s.cart_coords + rng.normal(scale=0.06, size=(len(s), 3))
        out.append(Structure(s.lattice, s.species, cart, coords_are_cartesian=True))
    return out


def small_config(table: Path, out: Path, **kw: Any) -> Any:
    """A :class:`TrainConfig` for a 2-epoch tiny CGCNN on ``table`` (``heat_all``; ``kw`` overrides)."""
    from crystalgnn.training.config import TrainConfig

    base = dict(
        source=str(table), targets=["heat_all"], model_options={"atom_fea_len": 16, "h_fea_len": 16, "n_conv": 1}, epochs=2, batch_size=4,
        optimizer="adam", lr=0.003, split="0.5,0.4,0.1", out=str(out), progress=False, n_jobs=1, num_threads=1,
        use_cache=False,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)
