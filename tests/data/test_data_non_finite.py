"""NaN and overflowing numbers (``1e400``) in lattices and coordinates are rejected by every
reader with a named reason ("non-finite coordinates" / "non-finite lattice"), never passed on
as NaN to the graph builder; the good entries beside them are kept.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalgnn.data.readers import load_source, read_objects


def _nacl() -> Structure:
    return Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _poscar(coord: str = "0.5", length: str = "5.6") -> str:
    return f"NaCl\n1.0\n{length} 0 0\n0 5.6 0\n0 0 5.6\nNa Cl\n1 1\ndirect\n0.0 0.0 0.0 Na\n{coord} 0.5 0.5 Cl\n"


def _cif(coord: str = "0.5", length: str = "5.6", symmetric: bool = False) -> str:
    ops = "  1  'x, y, z'\n" + ("  2  '-x, -y, -z'\n" if symmetric else "")
    return (
        f"data_NaCl\n_symmetry_space_group_name_H-M   {'P-1' if symmetric else 'P1'}\n"
        f"_cell_length_a   {length}\n_cell_length_b   5.6\n_cell_length_c   5.6\n"
        "_cell_angle_alpha   90\n_cell_angle_beta   90\n_cell_angle_gamma   90\n"
        "loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n" + ops + "loop_\n"
        " _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n _atom_site_fract_y\n"
        f" _atom_site_fract_z\n _atom_site_occupancy\n  Na  Na0  0.0  0.0  0.0  1\n  Cl  Cl1  {coord}  0.5  0.5  1\n"
    )


def _reasons(ds) -> dict[str, str]:
    return {r.id: r.reason for r in ds.rejections}


def test_poscar_and_cif_files_with_non_finite_numbers(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "good1.vasp").write_text(_poscar())
    (folder / "good2.cif").write_text(_cif())
    (folder / "nan.vasp").write_text(_poscar(coord="nan"))
    (folder / "overflow.vasp").write_text(_poscar(coord="1e400"))
    (folder / "lattice.vasp").write_text(_poscar(length="1e400"))
    (folder / "nan.cif").write_text(_cif(coord="nan"))
    (folder / "overflow.cif").write_text(_cif(coord="1e400"))
    (folder / "lattice.cif").write_text(_cif(length="nan"))
    (folder / "sym-overflow.cif").write_text(_cif(coord="1e400", symmetric=True))  # pymatgen's parser
    ds = load_source(folder, show_progress=False)
    assert ds.ids == ["good1", "good2"]
    reasons = {r.source.rsplit("/", 1)[-1]: r.reason for r in ds.rejections}
    for name in ("nan.vasp", "overflow.vasp", "nan.cif", "overflow.cif", "sym-overflow.cif"):
        assert reasons[name].startswith("non-finite coordinates"), (name, reasons[name])
    for name in ("lattice.vasp", "lattice.cif"):
        assert reasons[name].startswith("non-finite lattice"), (name, reasons[name])
    for s in ds.structures:
        assert np.isfinite(s.frac_coords).all() and np.isfinite(s.lattice.matrix).all()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_table_rows_with_non_finite_structure_dicts_and_cifs(tmp_path, suffix):
    d = _nacl().as_dict()
    d_nan = copy.deepcopy(d)
    d_nan["sites"][1]["abc"][0] = float("nan")
    d_nan["sites"][1].pop("xyz")
    d_inf = copy.deepcopy(d)
    d_inf["sites"][1]["abc"][0] = float("inf")
    d_inf["sites"][1]["xyz"][0] = float("inf")
    d_lat = copy.deepcopy(d)
    d_lat["lattice"]["matrix"][0][0] = float("nan")
    rows = [
        ("good", json.dumps(d)),
        ("good-cif", _cif()),
        ("dict-nan", json.dumps(d_nan)),
        ("dict-inf", json.dumps(d_inf)),
        ("dict-lattice", json.dumps(d_lat)),
        ("cif-overflow", _cif(coord="1e400")),
        ("cif-nan", _cif(coord="NaN")),
        ("cif-lattice", _cif(length="1e400")),
    ]
    path = tmp_path / f"table{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"id": i, "structure": s, "y": 1.0}) + "\n" for i, s in rows))
    else:
        import csv

        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "structure", "y"])
            w.writerows([i, s, 1.0] for i, s in rows)
    ds = load_source(path, show_progress=False)
    assert ds.ids == ["good", "good-cif"]
    reasons = _reasons(ds)
    for k in ("dict-nan", "dict-inf", "cif-overflow", "cif-nan"):
        assert reasons[k].startswith("non-finite coordinates (site 1, Cl"), reasons[k]
    for k in ("dict-lattice", "cif-lattice"):
        assert reasons[k].startswith("non-finite lattice"), reasons[k]


def test_in_memory_structures_and_atoms_with_non_finite_numbers():
    from ase import Atoms

    good = _nacl()
    bad = _nacl()
    bad.replace(1, "Cl", [np.nan, 0.5, 0.5])
    atoms = Atoms("NaCl", positions=[[0, 0, 0], [np.inf, 1, 1]], cell=np.eye(3) * 5.6, pbc=True)
    atoms_cell = Atoms("NaCl", positions=[[0, 0, 0], [1, 1, 1]], cell=np.diag([np.nan, 5.6, 5.6]), pbc=True)
    ds = read_objects([good, bad, atoms, atoms_cell], ids=["good", "bad", "atoms", "atoms-cell"])
    assert ds.ids == ["good"]
    reasons = _reasons(ds)
    assert reasons["bad"].startswith("non-finite coordinates")
    assert reasons["atoms"].startswith("non-finite coordinates (site 1, Cl: Cartesian (inf, 1, 1)")
    assert reasons["atoms-cell"].startswith("non-finite lattice")
