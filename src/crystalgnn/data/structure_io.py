"""Turning text, files and foreign objects into pymatgen ``Structure`` objects.

pymatgen's general CIF parser handles every CIF dialect but runs at a few hundred structures
per second. Nearly all CIFs in crystal-property datasets are P1 files written by pymatgen's
``CifWriter`` (one ``x, y, z`` symmetry operation, one atom per ``_atom_site`` row). For those,
:func:`parse_p1_cif` reads the cell and atom loop directly (about 20x faster) and builds the same
``Structure`` (same lattice convention, same site order); anything else falls back to pymatgen,
then ASE.

This module is longer than 400 lines because the fast CIF path and the pymatgen path it falls
back to must parse identically and are kept side by side.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar", ".extxyz", ".xyz", ".xsf", ".cell", ".res", ".pdb")
STRUCTURE_STEMS = ("POSCAR", "CONTCAR")


class StructureParseError(ValueError):
    """A structure could not be read; the message says why."""


_NUM = re.compile(r"^([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?:\([0-9]+\))?$")
_PLAIN_SYMBOL = re.compile(r"^[A-Z][a-z]?$")
_NON_FINITE = ("nan", "inf", "infinity")
_CELL_KEYS = (
    "_cell_length_a",
    "_cell_length_b",
    "_cell_length_c",
    "_cell_angle_alpha",
    "_cell_angle_beta",
    "_cell_angle_gamma",
)


def _num(token: str) -> float:
    m = _NUM.match(token)
    if m is None:
        if token.strip().lower().lstrip("+-") in _NON_FINITE:
            return float(token)  # NaN / inf: parsed, then rejected as non-finite by the caller
        raise StructureParseError(f"unparsable CIF (not a number: {token[:40]!r})")
    return float(m.group(1))


def _nums(tokens: list[str]) -> np.ndarray:
    """Many CIF numbers at once; tokens with uncertainties (``0.25(3)``) take the slow path."""
    try:
        out = np.array([float(t) for t in tokens])
        if np.isfinite(out).all() and not any("_" in t for t in tokens):
            return out
    except ValueError:
        pass
    return np.array([_num(t) for t in tokens], dtype=float)


def parse_p1_cif(text: str) -> Structure | None:
    """Read a single-block P1 CIF quickly; ``None`` when the file needs the general parser.

    See :func:`p1_cif_arrays` for what takes the fast path.
    """
    arrays = p1_cif_arrays(text)
    if arrays is None:
        return None
    matrix, symbols, frac = arrays
    try:
        return Structure(Lattice(matrix), symbols, frac)
    except (ValueError, KeyError) as exc:
        raise StructureParseError(f"unknown element: {exc}") from exc


def p1_cif_arrays(text: str) -> tuple[np.ndarray, list[str], np.ndarray] | None:
    """The fast P1 path without building a ``Structure``: (lattice matrix, symbols, fractional
    coordinates) in pymatgen's site order, or ``None`` when the file needs the general parser.

    Returns ``None`` (so the caller falls back to pymatgen) for: several data blocks, symmetry
    operations other than the identity, a space group other than P 1, missing cell parameters or
    coordinates, quoted or multi-line values in the atom loop. Raises
    :class:`StructureParseError` for partial occupancy, because that is never a fast-path issue.
    """
    if text.count("data_") > 1:
        return None
    cell: dict[str, float] = {}
    lines = text.splitlines()
    n = len(lines)
    i = 0
    atom_cols: list[str] | None = None
    atom_rows: list[list[str]] = []
    while i < n:
        line = lines[i].strip()
        if not line or line.startswith("#"):
            i += 1
            continue
        if line.startswith("_cell_length") or line.startswith("_cell_angle"):
            parts = line.split()
            if len(parts) >= 2 and parts[0] in _CELL_KEYS:
                cell[parts[0]] = _num(parts[1])
        elif line.startswith("_symmetry_space_group_name_H-M") or line.startswith("_space_group_name_H-M_alt"):
            value = line.split(None, 1)[1].strip().strip("'\"").replace(" ", "") if " " in line else ""
            if value not in ("P1", ""):
                return None
        elif line.startswith("_symmetry_Int_Tables_number") or line.startswith("_space_group_IT_number"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].strip("'\"") not in ("1", "?", "."):
                return None
        elif line == "loop_":
            cols: list[str] = []
            i += 1
            while i < n and lines[i].strip().startswith("_"):
                cols.append(lines[i].strip().split()[0])
                i += 1
            rows: list[str] = []
            while i < n:
                s = lines[i].strip()
                if not s or s.startswith("_") or s == "loop_" or s.startswith("data_") or s.startswith("#"):
                    break
                rows.append(s)
                i += 1
            if any(c.startswith(("_symmetry_equiv_pos", "_space_group_symop")) for c in cols):
                split_rows = [r.split() for r in rows]
                ops = {" ".join(r[1:] if len(r) > 1 and r[0].isdigit() else r) for r in split_rows}
                ops = {o.strip("'\"").replace(" ", "").lower() for o in ops}
                if ops - {"x,y,z"}:
                    return None
            elif "_atom_site_fract_x" in cols:
                if atom_cols is not None:
                    return None
                # quoted values take the general parser (checked on the raw rows: cheaper)
                if any("'" in r or '"' in r or ";" in r for r in rows):
                    return None
                atom_cols, atom_rows = cols, [r.split() for r in rows]
            continue
        i += 1
    if len(cell) != 6 or atom_cols is None:
        return None
    width = len(atom_cols)
    if any(len(r) != width for r in atom_rows):
        return None
    col = {c: k for k, c in enumerate(atom_cols)}
    # Only plain element symbols take the fast path; labels such as ``Fe1``/``C1a``, oxidation
    # states (``Fe2+``) and isotopes (``D``) need pymatgen's symbol rules.
    sym_col = col.get("_atom_site_type_symbol")
    if sym_col is None or "_atom_site_fract_y" not in col or "_atom_site_fract_z" not in col:
        return None
    if not atom_rows:
        raise StructureParseError("CIF has no atoms")
    occ_col = col.get("_atom_site_occupancy")
    if occ_col is not None:
        tokens = [r[occ_col] for r in atom_rows]
        # ``not <=``: a NaN occupancy is not a full one
        if any(t != "1" for t in tokens) and not np.all(np.abs(_nums(tokens) - 1.0) <= 1e-6):
            raise StructureParseError("partial occupancy / disordered sites")
    symbols = [r[sym_col] for r in atom_rows]
    if any(_PLAIN_SYMBOL.match(s) is None or s in ("D", "T") for s in symbols):
        return None
    cx, cy, cz = col["_atom_site_fract_x"], col["_atom_site_fract_y"], col["_atom_site_fract_z"]
    xyz = _nums([t for r in atom_rows for t in (r[cx], r[cy], r[cz])]).reshape(-1, 3)
    problem = coordinates_problem(xyz, symbols)
    if problem:
        raise StructureParseError(problem)
    # Same conventions as pymatgen's CifParser: values within 1e-4 (relative) of 1/3 or 2/3 are
    # set to the exact fraction, then coordinates are wrapped into [0, 1).
    for frac in (1 / 3, 2 / 3):
        xyz = np.where(np.abs(xyz / frac - 1.0) <= 1e-4, frac, xyz)
    xyz = xyz - np.floor(xyz)
    matrix = _lattice_matrix(*(cell[k] for k in _CELL_KEYS))
    # pymatgen's parser returns ``get_sorted_structure()``: a stable sort by electronegativity,
    # then species string. Doing the same keeps site order (and per-site labels) identical.
    try:
        keys = [_site_order(sym) for sym in symbols]
        order = sorted(range(len(symbols)), key=keys.__getitem__)
    except ValueError as exc:
        raise StructureParseError(f"unknown element: {exc}") from exc
    if order != list(range(len(symbols))):
        symbols = [symbols[k] for k in order]
        xyz = xyz[order]
    return matrix, symbols, xyz


def _lattice_matrix(a: float, b: float, c: float, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Lattice vectors (rows) from cell lengths (Å) and angles (degrees), c along z and a in the
    xz plane: the convention of pymatgen's ``Lattice.from_parameters`` with the same floating
    point operations (so the same bits; tested), at a fraction of its cost.
    """
    angles = np.radians([alpha, beta, gamma])
    cos_a, cos_b, cos_g = np.cos(angles)
    sin_a, sin_b, _ = np.sin(angles)
    cos_g_star = (cos_a * cos_b - cos_g) / (sin_a * sin_b)
    g_star = np.arccos(min(max(cos_g_star, -1.0), 1.0))
    return np.array(
        [
            [a * sin_b, 0.0, a * cos_b],
            [-b * sin_a * np.cos(g_star), b * sin_a * np.sin(g_star), b * cos_a],
            [0.0, 0.0, float(c)],
        ],
        dtype=np.float64,
    )


@functools.lru_cache(maxsize=256)
def _electronegativity(symbol: str) -> float:
    import warnings

    from pymatgen.core import Element

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(Element(symbol).X)


@functools.lru_cache(maxsize=256)
def _site_order(symbol: str) -> _SiteOrder:
    return _SiteOrder(symbol)


class _SiteOrder:
    """Sort key with the comparison of pymatgen's ``Site.__lt__`` (electronegativity, symbol)."""

    __slots__ = ("symbol", "x")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.x = _electronegativity(symbol)

    def __lt__(self, other: _SiteOrder) -> bool:
        if self.x < other.x:
            return True
        if self.x > other.x:
            return False
        return self.symbol < other.symbol


def structure_from_cif_text(text: str) -> Structure:
    """Parse CIF text (fast P1 path, then pymatgen). Raises :class:`StructureParseError`."""
    if not text or not text.strip():
        raise StructureParseError("empty CIF")
    fast = parse_p1_cif(text)
    if fast is not None:
        return fast
    return _pymatgen_cif(text)


def _pymatgen_cif(text: str) -> Structure:
    import warnings

    from pymatgen.io.cif import CifParser

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parser = CifParser.from_str(text, occupancy_tolerance=1.0)
            structures = parser.parse_structures(primitive=False, on_error="raise")
    except Exception as exc:  # pymatgen raises many exception types for bad CIFs
        raise StructureParseError(_non_finite_cif(text) or f"unparsable CIF ({type(exc).__name__}: {exc})") from exc
    if not structures:
        raise StructureParseError("unparsable CIF (no structure found)")
    return structures[0]


def _non_finite_cif(text: str) -> str | None:
    """Why pymatgen failed on a CIF holding a NaN or infinite number (``nan``, ``1e400``):
    ``"non-finite lattice (...)"`` for a cell parameter, ``"non-finite coordinates (...)"``
    otherwise; ``None`` when every number is finite.
    """
    for line in text.splitlines():
        for token in line.split():
            try:
                value = float(token.split("(")[0])
            except ValueError:
                continue
            if not np.isfinite(value):
                kind = "lattice" if line.lstrip().startswith("_cell_") else "coordinates"
                return f"non-finite {kind} (CIF value {token[:40]!r} in {line.strip()[:80]!r})"
    return None


def structure_from_any(obj: Any) -> Structure:
    """Accept a Structure, an ASE Atoms, a Structure dict, or CIF/POSCAR text."""
    if isinstance(obj, Structure):
        return obj
    if isinstance(obj, dict):
        try:
            return Structure.from_dict(obj)
        except Exception as exc:
            raise StructureParseError(f"invalid structure dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, str):
        text = obj.lstrip()
        if text.startswith("{"):
            return structure_from_any(json.loads(text))
        if "_cell_length_a" in text or text.startswith("data_"):
            return structure_from_cif_text(obj)
        try:
            return Structure.from_str(obj, fmt="poscar")
        except Exception as exc:
            raise StructureParseError(f"unparsable structure text ({type(exc).__name__})") from exc
    try:
        from ase import Atoms
    except ImportError:  # pragma: no cover - ase is a dependency
        pass
    else:
        if isinstance(obj, Atoms):
            return structure_from_atoms(obj)
    raise StructureParseError(f"cannot turn a {type(obj).__name__} into a Structure")


def structure_from_atoms(atoms: Any) -> Structure:
    """An ASE ``Atoms`` as a ``Structure``; molecules without a 3D cell are a clear error."""
    from pymatgen.io.ase import AseAtomsAdaptor

    cell = np.asarray(atoms.cell, dtype=float)
    problem = None if np.isfinite(cell).all() else lattice_problem(cell)
    problem = problem or coordinates_problem(atoms.get_positions(), atoms.get_chemical_symbols(), "Cartesian ")
    if problem:
        raise StructureParseError(problem)
    if atoms.cell.rank < 3:
        raise StructureParseError("not a periodic crystal (no three-dimensional cell)")
    return AseAtomsAdaptor.get_structure(atoms)


def broken_link_reason(path: Path) -> str:
    """Why a symbolic link cannot be followed: ``"symbolic link loop"`` or ``"dangling symbolic
    link (to <target>)"`` (also the answer for a link that is not broken: call it on broken ones).
    """
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"symbolic link loop (to {target})"
    return f"dangling symbolic link (to {target})"


def is_structure_file(path: Path) -> bool:
    """Whether ``path`` looks like a single-structure file by name."""
    name = path.name
    return path.suffix.lower() in STRUCTURE_SUFFIXES or any(name.startswith(stem) for stem in STRUCTURE_STEMS)


def file_id(path: str | Path) -> str:
    """The entry id of a structure file: the name without a structure suffix.

    ``a.cif`` -> ``a``, ``POSCAR-JVASP-1.vasp`` -> ``POSCAR-JVASP-1``, ``POSCAR`` -> ``POSCAR``,
    ``POSCAR.mp-1`` -> ``POSCAR.mp-1`` (the part after the dot is not a format suffix).
    """
    path = Path(path)
    if path.suffix.lower() in STRUCTURE_SUFFIXES + (".json",):
        return path.stem
    return path.name


def read_structure_file(path: str | Path) -> list[tuple[str, Structure]]:
    """Read every structure in a file; returns (id, Structure) pairs.

    The id is the file stem (with ``#k`` appended for the k-th frame of a multi-frame file).
    Raises :class:`StructureParseError` for empty or unreadable files.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise StructureParseError("empty file")
    stem = file_id(path)
    suffix = path.suffix.lower()
    if suffix == ".cif":
        text = path.read_text(errors="replace")
        if text.count("data_") > 1:
            return _read_with_ase_or_pymatgen(path, stem)
        return [(stem, structure_from_cif_text(text))]
    if suffix == ".json":
        return [(stem, structure_from_any(json.loads(path.read_text())))]
    return _read_with_ase_or_pymatgen(path, stem)


def _read_with_ase_or_pymatgen(path: Path, stem: str) -> list[tuple[str, Structure]]:
    import warnings

    errors = []
    if (
        path.suffix.lower() in (".cif",)
        or path.name.startswith(STRUCTURE_STEMS)
        or path.suffix.lower()
        in (
            ".vasp",
            ".poscar",
        )
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if path.suffix.lower() == ".cif":
                    from pymatgen.io.cif import CifParser

                    structs = CifParser(str(path)).parse_structures(primitive=False, on_error="raise")
                else:
                    structs = [Structure.from_file(str(path))]
            if len(structs) == 1:
                return [(stem, structs[0])]
            return [(f"{stem}#{k}", s) for k, s in enumerate(structs)]
        except Exception as exc:
            errors.append(f"pymatgen: {type(exc).__name__}: {exc}")
    try:
        import ase.io

        frames = ase.io.read(str(path), index=":")
        if not frames:
            raise StructureParseError("no frames")
        if all(a.cell.rank < 3 for a in frames):
            raise StructureParseError("not a periodic crystal (no three-dimensional cell)")
        structs = [structure_from_atoms(a) for a in frames]
        if len(structs) == 1:
            return [(stem, structs[0])]
        return [(f"{stem}#{k}", s) for k, s in enumerate(structs)]
    except StructureParseError:
        raise
    except Exception as exc:
        errors.append(f"ase: {type(exc).__name__}: {exc}")
    raise StructureParseError("unreadable structure file (" + "; ".join(errors) + ")")


def structure_problem(structure: Structure) -> str | None:
    """Why a parsed structure cannot be used as a crystal graph input, or ``None``.

    Checks: no sites, a non-finite lattice or non-finite coordinates (NaN, or numbers such as
    ``1e400`` that overflow to infinity), partial occupancy / disorder, species that are not
    chemical elements (dummy species such as ``X``), and a degenerate (zero-volume) lattice.
    """
    if len(structure) == 0:
        return "empty structure (no sites)"
    matrix = structure.lattice.matrix
    if not np.all(np.isfinite(matrix)):
        return lattice_problem(matrix)
    frac = structure.frac_coords
    if not np.isfinite(frac).all():
        return coordinates_problem(frac, [site.species_string for site in structure])
    if not structure.is_ordered:
        return "partial occupancy / disordered sites"
    for site in structure:
        sp = site.specie
        if not hasattr(sp, "Z") or getattr(sp, "Z", 0) <= 0 or type(sp).__name__.startswith("Dummy"):
            return f"unknown element: {sp}"
    return lattice_problem(structure.lattice.matrix)


def lattice_problem(matrix: np.ndarray) -> str | None:
    """``"non-finite lattice ..."`` for a cell with NaN or infinite numbers, ``"degenerate
    lattice ..."`` for a zero-volume one, else ``None``.
    """
    matrix = np.asarray(matrix, dtype=float)
    if not np.all(np.isfinite(matrix)):
        return f"non-finite lattice (lattice vectors {_show(matrix)})"
    if abs(np.linalg.det(matrix)) <= 1e-6:
        return "degenerate lattice (zero volume)"
    return None


def coordinates_problem(coords: Any, symbols: Any = None, kind: str = "fractional ") -> str | None:
    """``"non-finite coordinates (site k ...)"`` naming the first site whose coordinates are NaN or
    infinite (``1e400`` overflows to infinity), else ``None``.
    """
    xyz = np.asarray(coords, dtype=float).reshape(-1, 3)
    bad = np.flatnonzero(~np.isfinite(xyz).all(axis=1))
    if len(bad) == 0:
        return None
    k = int(bad[0])
    label = f", {symbols[k]}" if symbols is not None and k < len(symbols) else ""
    more = f"; {len(bad) - 1} more sites" if len(bad) > 1 else ""
    return f"non-finite coordinates (site {k}{label}: {kind}{_show(xyz[k])}{more})"


def _show(values: np.ndarray) -> str:
    """A short text of a vector or matrix of floats, ``(nan, 0.5, 0.5)`` (no square brackets: a
    terminal printing the reason with rich markup would take them for a style).
    """
    a = np.asarray(values, dtype=float)
    if a.ndim > 1:
        return "(" + ", ".join(_show(row) for row in a) + ")"
    return "(" + ", ".join(f"{v:.6g}" for v in a) + ")"
