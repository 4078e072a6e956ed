"""Raw element properties behind the CGCNN atom features (group, period, electronegativity,
covalent radius, valence electrons, first ionisation energy, electron affinity, block, atomic
volume) for Z = 1..100, from mendeleev and pymatgen, computed once per installation and kept
as JSON in the cache folder (see :mod:`crystalgnn.graphs.atom_features` for how they become the
92-dim one-hot vectors).
"""

from __future__ import annotations

import functools
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

#: Largest atomic number covered (the CGCNN reference covers 1..100).
CGCNN_MAX_Z = 100
_ROOM_TEMPERATURE_K = 298.15
_F_SERIES = frozenset(range(57, 71)) | frozenset(range(89, 103))  # La-Yb, Ac-No


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


#: bump when :func:`_compute_raw_properties` changes (invalidates the on-disk copies)
RAW_PROPERTIES_VERSION = 1


def _raw_properties_cache_path() -> Path:
    """Where the computed element properties are kept, named by the versions they depend on."""
    from importlib.metadata import PackageNotFoundError, version

    from crystalgnn.graphs.cache import default_cache_dir

    try:
        libs = f"mendeleev{version('mendeleev')}-pymatgen{version('pymatgen')}"
    except PackageNotFoundError:  # pragma: no cover - depends on the environment
        libs = "unknown"
    return default_cache_dir() / "atom_features" / f"cgcnn-raw-v{RAW_PROPERTIES_VERSION}-{libs}.json"


@functools.lru_cache(maxsize=1)
def raw_properties() -> dict[int, dict[str, Any]]:
    """Raw element properties for Z = 1..CGCNN_MAX_Z (see cgcnn_raw_properties).

    Computed once per installation and kept as JSON in the cache folder (importing mendeleev
    alone takes 2-4 s, longer than building the graphs of a dataset); the file name carries
    the mendeleev and pymatgen versions, so other element data are never read.
    """
    path = _raw_properties_cache_path()
    try:
        return {int(z): p for z, p in json.loads(path.read_text()).items()}
    except (OSError, ValueError):
        pass
    props = _compute_raw_properties()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(props))
        tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError:
        pass  # a read-only cache folder: compute again next time
    return props


def _compute_raw_properties() -> dict[int, dict[str, Any]]:
    """The element properties from mendeleev and pymatgen (uncached)."""
    try:
        from mendeleev.fetch import fetch_table
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "AtomFeaturizer.cgcnn() needs the 'mendeleev' package (Pauling electronegativity, "
            "Pyykko covalent radius, electron affinity, density): pip install mendeleev"
        ) from exc
    from pymatgen.core.periodic_table import Element

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = fetch_table("elements")
    table = table.set_index("atomic_number")

    props: dict[int, dict[str, Any]] = {}
    for z in range(1, CGCNN_MAX_Z + 1):
        row = table.loc[z]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about missing data for heavy elements
            el = Element.from_Z(z)
            pmg_group = int(el.group)
            period = int(el.row)
            ionization = _float_or_none(el.ionization_energy)
            melting = _float_or_none(el.melting_point)
            pmg_molar_volume = _float_or_none(el.molar_volume)

        f_series = z in _F_SERIES
        group = 0 if f_series else pmg_group
        if f_series:
            valence, block = 2, "f"
        elif group <= 2 or z == 2:
            valence, block = (2 if z == 2 else group), "s"
        elif group <= 12:
            valence, block = group, "d"
        else:
            valence, block = group - 10, "p"

        mass = _float_or_none(row["atomic_weight"])
        density = _float_or_none(row["density"])
        if melting is not None and melting < _ROOM_TEMPERATURE_K:
            volume = pmg_molar_volume  # gas/liquid at room temperature: condensed-phase volume
        elif mass is not None and density:
            volume = mass / density
        else:
            volume = None

        props[z] = {
            "symbol": el.symbol,
            "group": group,
            "period": period,
            "electronegativity": _float_or_none(row["en_pauling"]),
            "covalent_radius": _float_or_none(row["covalent_radius_pyykko"]),
            "valence_electrons": valence,
            "first_ionization_energy": ionization,
            "electron_affinity": _float_or_none(row["electron_affinity"]),
            "block": block,
            "atomic_volume": volume,
        }
    return props


def cgcnn_raw_properties() -> dict[int, dict[str, Any]]:
    """The element properties behind the CGCNN vectors, Z -> {property: value}.

    Units: covalent radius in pm, ionization energy and electron affinity in eV, atomic volume in
    cm^3/mol; ``group`` is 0 for the f-series; missing values are None.

    Returns:
        A fresh dict (safe to modify) for Z = 1..:data:`CGCNN_MAX_Z`.
    """
    return {z: dict(p) for z, p in raw_properties().items()}
