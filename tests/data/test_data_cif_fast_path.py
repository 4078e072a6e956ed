"""The fast P1 CIF path gives exactly what pymatgen's CIF parser gives; other CIFs fall back."""

from __future__ import annotations

import gzip
import itertools
import json
import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from crystalgnn.data import parsing
from crystalgnn.data.p1_cif import parse_p1_cif
from crystalgnn.data.parsing import parse_structures
from crystalgnn.data.structure_checks import StructureParseError
from crystalgnn.data.structure_io import structure_from_any, structure_from_cif_text


def pymatgen_cif(text: str) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_str(text, fmt="cif")


def assert_same(fast: Structure, ref: Structure, context: str = "") -> None:
    assert len(fast) == len(ref), context
    assert [s.species_string for s in fast] == [s.species_string for s in ref], context
    np.testing.assert_allclose(fast.lattice.matrix, ref.lattice.matrix, atol=1e-10, err_msg=context)
    np.testing.assert_allclose(fast.frac_coords, ref.frac_coords, atol=1e-10, err_msg=context)


def first_rows(path, n: int, column: str = "cif") -> list[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = (json.loads(line) for line in f)
        return [(r["id"], r[column]) for r in itertools.islice(rows, n)]


@pytest.mark.parametrize(
    ("file", "n"),
    [
        ("castelli_perovskites_cdvae.jsonl.gz", 300),
        ("mp_crysxpp_36k.jsonl.gz", 300),
        ("qmof_bandgap_persite_le100atoms.jsonl.gz", 100),
    ],
)
def test_fast_path_matches_pymatgen_on_real_cifs(shared_data, file, n):
    rows = first_rows(shared_data / file, n)
    assert len(rows) == n
    for entry_id, text in rows:
        assert parse_p1_cif(text) is not None, f"{entry_id} did not take the fast path"
        assert_same(structure_from_cif_text(text), pymatgen_cif(text), entry_id)


def test_qmof_per_site_labels_stay_aligned(shared_data):
    """QMOF per-site charges are aligned with pymatgen's site order; the fast path keeps it."""
    with gzip.open(shared_data / "qmof_bandgap_persite_le100atoms.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in itertools.islice(f, 40)]
    for r in rows:
        s = structure_from_cif_text(r["cif"])
        assert len(r["pbe_ddec_charge"]) == len(s) == r["nsites"]
        # Metals carry positive DDEC charges on average, O/N negative: a coarse alignment check
        q = np.array(r["pbe_ddec_charge"])
        oxygen = [i for i, site in enumerate(s) if site.specie.symbol == "O"]
        if oxygen:
            assert q[oxygen].mean() < 0, r["id"]


def test_unsorted_p1_cif_is_sorted_like_pymatgen():
    """Atom rows out of electronegativity order (and a noble gas without one) are sorted as
    pymatgen's parser sorts them, and 1/3, 2/3 coordinates are snapped as pymatgen does."""
    s = Structure(
        Lattice.hexagonal(3.1, 5.0),
        ["O", "Ar", "Li", "Fe", "O", "Li"],
        [
            [1 / 3, 2 / 3, 0.1],
            [0, 0, 0.5],
            [2 / 3, 1 / 3, 0.25],
            [0, 0, 0],
            [0.3333333, 0.6666667, 0.9],
            [1.0, 0.5, -0.2],
        ],
    )
    text = str(CifWriter(s))
    assert parse_p1_cif(text) is not None
    assert_same(structure_from_cif_text(text), pymatgen_cif(text))


def test_label_only_and_oxidation_state_cifs_fall_back_to_pymatgen():
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    text = str(CifWriter(s))
    label_only = (
        text.replace(" _atom_site_type_symbol\n", "").replace("  Na  Na0", "  Na0").replace("  Cl  Cl1", "  Cl1")
    )
    assert parse_p1_cif(label_only) is None
    assert [x.species_string for x in structure_from_cif_text(label_only)] == ["Na", "Cl"]
    charged = text.replace("  Na  Na0", "  Na+  Na0").replace("  Cl  Cl1", "  Cl-  Cl1")
    assert parse_p1_cif(charged) is None
    assert_same(structure_from_cif_text(charged), pymatgen_cif(charged))


ROCKSALT_FM3M = """data_NaCl
_symmetry_space_group_name_H-M   'F m -3 m'
_symmetry_Int_Tables_number   225
_cell_length_a   5.6402
_cell_length_b   5.6402
_cell_length_c   5.6402
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   90
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
  2  '-x, -y, -z'
  3  'x+1/2, y+1/2, z'
  4  'x+1/2, y, z+1/2'
  5  'x, y+1/2, z+1/2'
  6  '-x+1/2, -y+1/2, -z'
  7  '-x+1/2, -y, -z+1/2'
  8  '-x, -y+1/2, -z+1/2'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Na  Na1  0.0  0.0  0.0  1
  Cl  Cl1  0.5  0.5  0.5  1
"""


def test_non_p1_rocksalt_falls_back_to_pymatgen():
    assert parse_p1_cif(ROCKSALT_FM3M) is None
    s = structure_from_cif_text(ROCKSALT_FM3M)
    assert len(s) == 8
    assert s.composition.reduced_formula == "NaCl"
    assert s.composition["Na"] == 4
    assert np.isclose(s.lattice.a, 5.6402)


def test_symmetrized_cifwriter_output_falls_back_to_pymatgen():
    conventional = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert len(conventional) == 8
    text = str(CifWriter(conventional, symprec=0.1))
    assert "Fm-3m" in text
    assert parse_p1_cif(text) is None
    s = structure_from_cif_text(text)
    assert len(s) == 8 and s.composition.reduced_formula == "NaCl"
    assert_same(s, pymatgen_cif(text))


def test_space_group_number_without_operations_falls_back():
    """pymatgen builds the operations from ``_symmetry_Int_Tables_number`` alone."""
    text = "\n".join(
        line
        for line in ROCKSALT_FM3M.splitlines()
        if "H-M" not in line and "'" not in line and "_symmetry_equiv" not in line
    ).replace("loop_\nloop_", "loop_")
    assert "_symmetry_Int_Tables_number   225" in text and "x+1/2" not in text
    assert parse_p1_cif(text) is None
    assert len(structure_from_cif_text(text)) == len(pymatgen_cif(text)) == 8


def test_multi_block_cif_is_not_fast_pathed():
    one = str(CifWriter(Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])))
    assert parse_p1_cif(one + "\n" + one.replace("data_NaCl", "data_second")) is None


def test_fast_path_errors():
    with pytest.raises(StructureParseError, match="empty CIF"):
        structure_from_cif_text("  \n")
    with pytest.raises(StructureParseError, match="unparsable CIF"):
        structure_from_cif_text("data_x\n_cell_length_a 4\n")
    with pytest.raises(StructureParseError, match="cannot turn"):
        structure_from_any(42)


def test_parallel_parse_matches_serial(shared_data, monkeypatch):
    texts = [t for _, t in first_rows(shared_data / "mp_crysxpp_36k.jsonl.gz", 60)]
    texts.insert(7, "not a structure")
    serial = parse_structures(texts, n_jobs=1, show_progress=False)
    monkeypatch.setattr(parsing, "PARALLEL_MIN", 10)
    parallel = parse_structures(texts, n_jobs=2, show_progress=False)
    assert len(parallel) == len(serial) == 61
    assert isinstance(parallel[7], str) and "unparsable" in parallel[7]
    for a, b in zip(serial, parallel, strict=True):
        if isinstance(a, str):
            assert a == b
        else:
            assert_same(b, a)


def test_lattice_matrix_has_the_bits_of_pymatgen() -> None:
    """The fast path's lattice is bit for bit pymatgen's ``Lattice.from_parameters`` (cache keys
    hash the float64 bytes), for random cells and the extremes of the angle range."""
    from crystalgnn.data.p1_cif import _lattice_matrix

    rng = np.random.default_rng(0)
    params = [(*rng.uniform(2.0, 30.0, 3), *rng.uniform(45.0, 135.0, 3)) for _ in range(2000)] + [
        (4.0, 4.0, 4.0, 90.0, 90.0, 90.0),
        (3.1, 3.1, 5.0, 90.0, 90.0, 120.0),
        (5.0, 5.0, 5.0, 60.0, 60.0, 60.0),
    ]
    for p in params:
        assert np.array_equal(_lattice_matrix(*p), Lattice.from_parameters(*p).matrix), p
