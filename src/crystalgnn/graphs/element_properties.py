"""Raw element properties behind the CGCNN atom features (group, period, electronegativity,
covalent radius, valence electrons, first ionisation energy, electron affinity, block, atomic
volume) for Z = 1..100, from mendeleev and pymatgen, computed once per installation and kept
as JSON in the cache folder (see :mod:`crystalgnn.graphs.atom_features` for how they become the
92-dim one-hot vectors).

The cache folder is the one the command's graph cache uses: opening a
:class:`~crystalgnn.graphs.cache.GraphCache` calls :func:`set_cache_dir` with its parent folder
(``--cache-dir``); before that, and without a graph cache, it is ``$CRYSTALGNN_CACHE_DIR`` or
``~/.cache/crystalgnn``. A table computed before any folder was named (no ``set_cache_dir``, no
``$CRYSTALGNN_CACHE_DIR``) is written when the graph cache opens, or at exit to the default
folder, so a command given ``--cache-dir`` writes nothing elsewhere. The file holds the table's
SHA-256: an empty, truncated or altered file is detected, computed again and replaced, never
used.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import logging
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


#: bump when :func:`_compute_raw_properties` changes (invalidates the on-disk copies); 2: with a checksum
RAW_PROPERTIES_VERSION = 2
_PROPERTY_NAMES = frozenset(
    ("symbol", "group", "period", "electronegativity", "covalent_radius", "valence_electrons")
    + ("first_ionization_energy", "electron_affinity", "block", "atomic_volume")
)
_log = logging.getLogger("crystalgnn.graphs.cache")
_cache_dir: Path | None = None  # set_cache_dir's folder
_unsaved: dict[int, dict[str, Any]] | None = None  # computed before any cache folder was named


def set_cache_dir(folder: str | Path | None) -> None:
    """Keep the element table in ``folder/atom_features`` from now on (``None``: back to
    ``$CRYSTALGNN_CACHE_DIR`` or ``~/.cache/crystalgnn``). :class:`~crystalgnn.graphs.cache.GraphCache`
    calls it with its parent folder. A table computed and not yet written is written there.
    """
    global _cache_dir, _unsaved
    _cache_dir = None if folder is None else Path(folder)
    if _unsaved is not None and _cache_dir is not None:
        _write_table(_raw_properties_cache_path(), _unsaved)
        _unsaved = None


def _folder_named() -> bool:
    return _cache_dir is not None or "CRYSTALGNN_CACHE_DIR" in os.environ


def _raw_properties_cache_path() -> Path:
    """Where the computed element properties are kept, named by the versions they depend on."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        libs = f"mendeleev{version('mendeleev')}-pymatgen{version('pymatgen')}"
    except PackageNotFoundError:  # pragma: no cover - depends on the environment
        libs = "unknown"
    # crystalgnn.graphs.cache.default_cache_dir (which imports this module)
    default = Path(os.environ.get("CRYSTALGNN_CACHE_DIR", Path.home() / ".cache" / "crystalgnn"))
    folder = _cache_dir if _cache_dir is not None else default
    return folder / "atom_features" / f"cgcnn-raw-v{RAW_PROPERTIES_VERSION}-{libs}.json"


def _digest(elements: dict[str, Any]) -> str:
    """SHA-256 of the table with string keys, in canonical JSON (what is written is what is hashed)."""
    return hashlib.sha256(json.dumps(elements, sort_keys=True).encode()).hexdigest()


def _read_table(path: Path) -> dict[int, dict[str, Any]] | None:
    """The table kept at ``path``; ``None`` when absent, or damaged (with a one-line warning)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        text = ""
    try:
        doc = json.loads(text)
        elements = doc["elements"]
        ok = (
            doc["sha256"] == _digest(elements)
            and set(elements) == {str(z) for z in range(1, CGCNN_MAX_Z + 1)}
            and all(set(p) == _PROPERTY_NAMES for p in elements.values())
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        _log.warning("warning: element data cache %s is damaged; computing it again", path)
        return None
    return {int(z): p for z, p in elements.items()}


def _write_table(path: Path, props: dict[int, dict[str, Any]]) -> None:
    elements = {str(z): p for z, p in props.items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"sha256": _digest(elements), "elements": elements}))
        tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
    except OSError:
        pass  # a read-only cache folder: compute again next time


def _write_unsaved() -> None:
    """At exit: a table no graph cache took is written to the default cache folder."""
    global _unsaved
    if _unsaved is not None:
        _write_table(_raw_properties_cache_path(), _unsaved)
        _unsaved = None


@functools.lru_cache(maxsize=1)
def raw_properties() -> dict[int, dict[str, Any]]:
    """Raw element properties for Z = 1..CGCNN_MAX_Z (see cgcnn_raw_properties).

    Computed once per installation and kept as JSON in the cache folder (importing mendeleev
    alone takes 2-4 s, longer than building the graphs of a dataset); the file name carries
    the mendeleev and pymatgen versions, so other element data are never read, and the file
    holds the table's checksum, so a damaged copy is never used (module docstring).
    """
    global _unsaved
    path = _raw_properties_cache_path()
    props = _read_table(path)
    if props is not None:
        return props
    props = _compute_raw_properties()
    if _folder_named():
        _write_table(path, props)
    else:  # the command's cache folder may be named later (its graph cache opens after the atom table)
        if _unsaved is None:
            atexit.register(_write_unsaved)
        _unsaved = props
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
