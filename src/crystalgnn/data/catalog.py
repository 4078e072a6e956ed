"""Short names for the real DFT datasets kept beside the repository in ``../shared/data``.

``load_source("perovskites")`` reads ``castelli_perovskites_cdvae.jsonl.gz`` with its targets and
units as the data README describes. The folder is looked up in this order: the
``CRYSTALGNN_DATA_DIR`` environment variable, ``<repo>/../shared/data`` (resolved from this file),
``./shared/data`` and ``../shared/data`` from the working directory. The data are never copied
into the package. A path to one of these files (wherever it lies) is recognised by its file
name (:func:`catalog_key_for_file`) and read with the same labels and units.

This module reads through :mod:`crystalgnn.data.tables` and never imports
:mod:`crystalgnn.data.readers` (which imports it).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crystalgnn.data.dataset import CrystalDataset, DataError, Rejection
from crystalgnn.data.tables import (
    _pick,
    count_table_rows,
    iter_table_rows,
    read_table,
    sample_positions,
)


@dataclass(frozen=True)
class CatalogEntry:
    """One dataset file: where it is, which columns are labels, and their units."""

    file: str
    description: str
    units: dict[str, str]
    structure_column: str = "cif"
    site_units: dict[str, str] = field(default_factory=dict)
    row_filter: str | None = None  # a boolean column that must be true (e.g. moduli_ok)
    electrode: bool = False


#: the insertion-electrode labels of both MP electrode tables (``electrodes``, ``battery-legacy``)
ELECTRODE_UNITS = {
    "average_voltage": "V",
    "capacity_grav": "mAh/g",
    "capacity_vol": "mAh/cm^3",
    "energy_grav": "Wh/kg",
    "energy_vol": "Wh/L",
    "max_delta_volume": "",
}

CATALOG: dict[str, CatalogEntry] = {
    "perovskites": CatalogEntry(
        "castelli_perovskites_cdvae.jsonl.gz",
        "Castelli cubic perovskites (CGCNN paper / Matbench set), 8,596 ABX3 cells",
        {"heat_all": "eV/cell", "heat_ref": "eV/cell", "dir_gap": "eV", "ind_gap": "eV"},
    ),
    "mp-36k": CatalogEntry(
        "mp_crysxpp_36k.jsonl.gz",
        "Materials Project (legacy), 36,737 structures: formation energy, band gap, metal class",
        {
            "formation_energy_per_atom": "eV/atom",
            "band_gap": "eV",
            "is_metal": "class",
            "efermi": "eV",
            "volume": "Å^3",
            "total_magnetization": "μB",
        },
    ),
    "mp-elastic": CatalogEntry(
        "mp_elastic_crysxpp_3k.jsonl.gz",
        "MP elastic moduli (legacy CGCNN subset), 3,191 structures",
        {"bulk_modulus_vrh": "GPa", "shear_modulus_vrh": "GPa", "poisson_ratio": ""},
    ),
    "mp-elastic-api": CatalogEntry(
        "mp_elastic_mpapi_3k.jsonl.gz",
        "MP elastic subset re-queried from the current MP API (rows with moduli_ok)",
        {
            "energy_per_atom": "eV/atom",
            "formation_energy_per_atom": "eV/atom",
            "band_gap": "eV",
            "is_metal": "class",
            "efermi": "eV",
            "bulk_modulus_vrh": "GPa",
            "bulk_modulus_voigt": "GPa",
            "bulk_modulus_reuss": "GPa",
            "shear_modulus_vrh": "GPa",
            "shear_modulus_voigt": "GPa",
            "shear_modulus_reuss": "GPa",
            "homogeneous_poisson": "",
        },
        row_filter="moduli_ok",
    ),
    "mp-binary-elastic": CatalogEntry(
        "mp_binary_elasticity_matcalc.jsonl.gz",
        "MP binaries with elastic moduli (2025), 3,953 structures",
        {"bulk_modulus_vrh": "GPa", "shear_modulus_vrh": "GPa"},
    ),
    "mp20": CatalogEntry(
        "mp20_subset_cdvae.jsonl.gz",
        "Part of MP-20 (stable MP structures with <= 20 atoms), 1,355 structures",
        {"formation_energy_per_atom": "eV/atom", "band_gap": "eV", "is_metal": "class", "e_above_hull": "eV/atom"},
    ),
    "carbon24": CatalogEntry(
        "carbon24_cdvae.jsonl.gz", "AIRSS carbon structures at 10 GPa, 4,062", {"energy_per_atom": "eV/atom"}
    ),
    "wbm": CatalogEntry(
        "wbm_random_eform_matcalc.jsonl.gz",
        "WBM structures with MP2020-corrected formation energies, 972",
        {
            "energy": "eV/cell",
            "corrected_energy": "eV/cell",
            "formation_energy_per_atom": "eV/atom",
            "corrected_formation_energy_per_atom": "eV/atom",
        },
    ),
    "phonon-cv": CatalogEntry(
        "alexandria_binary_phonon_cv_matcalc.jsonl.gz",
        "Alexandria binaries: heat capacity at 300 K (per mole of cells), 1,170",
        {"heat_capacity": "J/(K·mol cells)"},
    ),
    "site-magmoms": CatalogEntry(
        "mp_site_magmoms_digimatchem.jsonl.gz",
        "MP magnetic structures with per-site magnetic moments, 1,868 (51,549 sites)",
        {"abs_magmom_sum": "μB/cell", "net_magmom": "μB/cell"},
        structure_column="structure",
        site_units={"magmom": "μB"},
    ),
    "qmof": CatalogEntry(
        "qmof_bandgap_persite_le100atoms.jsonl.gz",
        "QMOF MOFs (<= 100 atoms): PBE band gap and per-site DDEC6/CM5 charges, 10,869",
        {"band_gap_pbe": "eV"},
        site_units={
            "pbe_ddec_charge": "e",
            "pbe_cm5_charge": "e",
            "pbe_magmom": "μB",
            "pbe_ddec_spin_density": "μB",
        },
    ),
    "electrodes": CatalogEntry(
        "mp_insertion_electrodes_gatgnn.jsonl.gz",
        "MP insertion electrodes (GATGNN-VOLTAGE), 4,148; discharged end member by default",
        dict(ELECTRODE_UNITS),
        structure_column="cif_discharged",
        electrode=True,
    ),
    "battery-legacy": CatalogEntry(
        "mp_battery_legacy_2019.jsonl.gz",
        "MP battery API dump (2019), 5,133 rows; structures for about half",
        {
            "stability_charge": "eV/atom",
            "stability_discharge": "eV/atom",
            **ELECTRODE_UNITS,
        },
        structure_column="cif_discharged",
        electrode=True,
    ),
    "computed-entries": CatalogEntry(
        "mp_computed_entries_battery_systems.jsonl.gz",
        "MP ComputedStructureEntries of battery chemical systems, 473",
        {
            "uncorrected_energy": "eV/cell",
            "correction": "eV/cell",
            "energy": "eV/cell",
            "energy_per_atom": "eV/atom",
            "formation_energy_per_atom": "eV/atom",
            "e_above_hull": "eV/atom",
        },
    ),
}

ALIASES = {
    "castelli": "perovskites",
    "perovskite": "perovskites",
    "mp": "mp-36k",
    "mp36k": "mp-36k",
    "elastic": "mp-elastic",
    "magmoms": "site-magmoms",
    "electrode": "electrodes",
}


def catalog_names() -> list[str]:
    return list(CATALOG)


def is_catalog_name(name: str) -> bool:
    return name in CATALOG or name in ALIASES


def catalog_key_for_file(path: str | Path) -> str | None:
    """The catalog key whose file has the name of ``path`` (``None`` when no entry matches).

    Matching is by file name only, so a copy of ``castelli_perovskites_cdvae.jsonl.gz`` in
    another folder, or a relative path to it, is the ``perovskites`` dataset.
    """
    name = Path(path).name
    return next((key for key, entry in CATALOG.items() if entry.file == name), None)


def shared_data_dir() -> Path | None:
    """The ``shared/data`` folder beside the repository, or ``None`` when it cannot be found."""
    candidates = []
    if os.environ.get("CRYSTALGNN_DATA_DIR"):
        candidates.append(Path(os.environ["CRYSTALGNN_DATA_DIR"]))
    here = Path(__file__).resolve()
    candidates += [
        here.parents[3].parent / "shared" / "data",
        Path.cwd() / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
    ]
    for c in candidates:
        if (c / "README.md").is_file() or any(c.glob("*.jsonl.gz")):
            return c
    return None


def catalog_path(name: str) -> Path:
    """The file behind a short name; raises :class:`DataError` when the data folder is missing."""
    entry = CATALOG[ALIASES.get(name, name)]
    root = shared_data_dir()
    if root is None or not (root / entry.file).is_file():
        raise DataError(
            f"dataset {name!r} needs {entry.file} from the shared data folder; set CRYSTALGNN_DATA_DIR "
            "to the folder that holds it"
        )
    return root / entry.file


def load_catalog(
    name: str,
    *,
    path: str | Path | None = None,
    end_member: str = "discharged",
    max_rows: int | None = None,
    rows: Iterable[dict[str, Any]] | None = None,
    subset: int | None = None,
    subset_seed: int = 0,
    **kw: Any,
) -> CrystalDataset:
    """Load a short-named dataset with its labels and units.

    Args:
        name: a short name from :data:`CATALOG` (or an alias).
        path: read this file (a copy of the dataset's file) instead of the one in the shared
            data folder.
        end_member: for battery electrodes, ``"discharged"`` (default) or ``"charged"``.
        max_rows: read only the first ``max_rows`` rows of the file (quick looks, tests).
        rows: these rows of the dataset's file instead of all of them (reading in chunks).
        subset: a seeded random sample of this many rows (of the first ``max_rows`` when both
            are given), drawn before any structure is parsed; the row filter
            (``moduli_ok``) applies to the sampled rows.
        subset_seed: the seed of that sample.
        **kw: passed to :func:`~crystalgnn.data.tables.read_table` (``n_jobs``, ``show_progress``).
    """
    key = ALIASES.get(name, name)
    entry = CATALOG[key]
    path = catalog_path(key) if path is None else Path(path)
    scol = entry.structure_column
    if entry.electrode:
        if end_member not in ("charged", "discharged"):
            raise ValueError("end_member must be 'charged' or 'discharged'")
        scol = f"cif_{end_member}"
    labels = list(entry.units) + list(entry.site_units)
    if rows is None and max_rows is None and subset is not None:
        rows = iter_table_rows(path, sample_positions(count_table_rows(path), subset, subset_seed))
    else:
        rows = iter_table_rows(path) if rows is None else iter(rows)
        if max_rows is not None:
            rows = itertools.islice(rows, max(0, int(max_rows)))
        if subset is not None:
            rows = iter([r for _, r in _pick(list(rows), subset, subset_seed)])
    rejected_rows: list[dict[str, Any]] = []
    if entry.row_filter:
        flt = entry.row_filter
        all_rows = list(rows)
        rows = iter([r for r in all_rows if r.get(flt) is True or "__error__" in r])  # errors keep their reason
        rejected_rows = [r for r in all_rows if r.get(flt) is not True and "__error__" not in r]
    ds = read_table(
        path,
        structure_column=scol,
        label_columns=labels,
        units={**entry.units, **entry.site_units},
        name=key,
        rows=rows,
        **kw,
    )
    for r in rejected_rows:
        ds.rejections.append(Rejection(str(r.get("id")), str(path), f"row filter: {entry.row_filter} is not true"))
    ds.name = key if not entry.electrode else f"{key}[{end_member}]"
    return ds
