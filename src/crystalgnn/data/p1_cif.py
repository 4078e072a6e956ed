"""A fast reader of P1 CIFs, the files written by pymatgen's ``CifWriter``.

pymatgen's general CIF parser handles every CIF dialect but runs at a few hundred structures
per second. Nearly all CIFs in crystal-property datasets are P1 files (one ``x, y, z`` symmetry
operation, one atom per ``_atom_site`` row). For those, :func:`parse_p1_cif` reads the cell and
the atom loop directly (about 20x faster) and builds the same ``Structure`` as pymatgen (same
lattice convention, same site order; tested side by side); it returns ``None`` for anything
else, which :func:`crystalgnn.data.structure_io.structure_from_cif_text` then hands to pymatgen.
"""

from __future__ import annotations

import functools
import re

import numpy as np
from pymatgen.core import Lattice, Structure

from crystalgnn.data.structure_checks import StructureParseError, coordinates_problem

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
