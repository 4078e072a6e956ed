"""Turning text, files and foreign objects into pymatgen ``Structure`` objects.

CIF text goes through the fast P1 reader (:mod:`crystalgnn.data.p1_cif`) first and pymatgen's
general parser when that declines; files of other formats through pymatgen, then ASE. Parsed
structures are checked by :mod:`crystalgnn.data.structure_checks`.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from crystalgnn.data.p1_cif import parse_p1_cif
from crystalgnn.data.structure_checks import StructureParseError, coordinates_problem, lattice_problem

STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar", ".extxyz", ".xyz", ".xsf", ".cell", ".res", ".pdb")
STRUCTURE_STEMS = ("POSCAR", "CONTCAR")


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
