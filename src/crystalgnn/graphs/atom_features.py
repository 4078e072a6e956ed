"""Atom feature vectors: a lookup table from atomic number to a fixed vector.

:class:`AtomFeaturizer` wraps any ``{Z: vector}`` table. :meth:`AtomFeaturizer.cgcnn` builds the
92-dimensional one-hot encoding of Xie & Grossman, *Phys. Rev. Lett.* 120, 145301 (2018),
Supplementary Table, **computed here from element data** (pymatgen and mendeleev), not copied.
The layout was reverse-engineered from the CGCNN ``atom_init.json`` released with the paper.

Layout (nine one-hot segments, 92 positions in total)
-----------------------------------------------------

=====  ==========================  =====  ============================================  ============
cols   property                    slots  categories / bins                             source
=====  ==========================  =====  ============================================  ============
0-18   group                       19     slot 0: f-series (La-Yb, Ac-No); slot g:      pymatgen
                                          group g = 1..18 (Lu, Lr are group 3)
19-25  period                      7      period 1..7                                   pymatgen
26-35  electronegativity           10     Pauling, linear 0.5 .. 4.0                    mendeleev
36-45  covalent radius             10     Pyykko single-bond radius, pm, linear 25..250 mendeleev
46-57  valence electrons           12     1..12 (rule below)                            derived
58-67  first ionization energy     10     ln(IE / eV), linear 1.3 .. 3.3                pymatgen
68-77  electron affinity           10     eV, linear -3.0 .. 3.7                        mendeleev
78-81  block                       4      s, p, d, f (rule below)                       derived
82-91  atomic volume               10     ln(V / cm^3 mol^-1), linear 1.5 .. 4.3        see below
=====  ==========================  =====  ============================================  ============

Binning of the continuous properties: with ``x`` the (log-transformed) value, the bin index is
``floor((x - lo) / (hi - lo) * 10)``, evaluated in exactly that floating-point order (values that
sit on a bin edge, such as Pauling electronegativities 1.2 and 1.9, land where the reference puts
them only with this order); ``x == hi`` goes into the last bin. A value outside ``[lo, hi]``
(e.g. mendeleev's theoretical electron affinities of He, -19.7 eV, and Ar, -11.5 eV) and a missing
value both leave the whole segment zero, as the reference does.

Derived categories:

* valence electrons: the group number for groups 1-12, group - 10 for groups 13-18 (He: 2), and
  2 (the outer ns^2 pair) for the f-series.
* block: f for the f-series; s for groups 1-2 and He; d for groups 3-12; p for groups 13-18.
* atomic volume: molar mass / density (mendeleev) for elements that are solid at 298.15 K; for
  elements that melt below 298.15 K (pymatgen melting point) mendeleev's density is that of the
  gas or liquid, so pymatgen's condensed-phase "molar volume" is used instead.

Coverage: Z = 1..100 (:data:`CGCNN_MAX_Z`), as in the reference file.

Agreement with the reference
----------------------------

81 of the 100 reference vectors are reproduced exactly. The 19 that differ
(:data:`CGCNN_REFERENCE_EXCEPTIONS`), each in a single segment:

* valence electrons, Pd: the reference puts Pd in category 12; Pd is [Kr]4d10 (group 10), so the
  rule gives 10. The reference value looks like a data error (4d10 5s2) and is not reproduced.
* atomic volume, H, He, N, F, Ne, Cl, Ar, Kr, Xe: the reference used liquid volumes at the boiling
  point (H 14.1, He 31.8, N 17.3 cm^3/mol, ...); the only condensed-phase volumes available here
  are pymatgen's solid-state molar volumes (H 11.42, He 21.0, N 13.54, ...), which fall one bin
  lower. (O agrees: 17.36 vs 14.0 share a bin.)
* atomic volume, Pm, At, Rn, Pu, Bk, Cf, Es, Fm: the reference has no volume for them; current
  data (mendeleev densities; pymatgen for Rn) give one, so our vector has one extra bit set.
* atomic volume, Np: the reference value lies in bin 5 (18.2-24.0 cm^3/mol, presumably an old
  tabulated 21.1); mendeleev's density (20.2 g/cm^3) gives 11.7 cm^3/mol, bin 3.

Out-of-range values that the reference also leaves empty (and so match): Fr's atomic volume
(119 cm^3/mol > e^4.3 = 73.7) and the He/Ar electron affinities above.

Example::

    featurizer = AtomFeaturizer.cgcnn()
    x = featurizer(np.array([8, 26, 8]))  # (3, 92) float32

This module is longer than 400 lines because its docstring is the reference for the 92 feature
columns (the layout table and the elements that differ from the released file).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crystalgnn.graphs.element_properties import CGCNN_MAX_Z, cgcnn_raw_properties, raw_properties

__all__ = [
    "CGCNN_MAX_Z",
    "CGCNN_REFERENCE_EXCEPTIONS",
    "CGCNN_SEGMENTS",
    "AtomFeaturizer",
    "FeatureSegment",
    "cgcnn_feature_table",
    "cgcnn_raw_properties",
]


#: Atomic numbers whose computed CGCNN vector differs from the released ``atom_init.json``
#: (see the module docstring for why), mapped to the segment that differs.
CGCNN_REFERENCE_EXCEPTIONS: dict[int, str] = {
    46: "valence_electrons",  # Pd
    **{z: "atomic_volume" for z in (1, 2, 7, 9, 10, 17, 18, 36, 54)},  # gases: solid vs liquid
    **{z: "atomic_volume" for z in (61, 85, 86, 94, 97, 98, 99, 100)},  # no volume in reference
    93: "atomic_volume",  # Np
}


@dataclass(frozen=True)
class FeatureSegment:
    """One one-hot segment of the CGCNN vector.

    Attributes:
        name: property name (a key of :func:`cgcnn_raw_properties` rows).
        start: first column of the segment.
        size: number of categories.
        kind: ``"category"`` (value is the category index), ``"linear"`` or ``"log"`` (value is
            binned into ``size`` equal bins over ``[lo, hi]``, after ``ln`` for ``"log"``).
        lo: lower end of the binned range (continuous kinds only).
        hi: upper end of the binned range (continuous kinds only).
    """

    name: str
    start: int
    size: int
    kind: Literal["category", "linear", "log"]
    lo: float = 0.0
    hi: float = 0.0

    @property
    def stop(self) -> int:
        """One past the last column of the segment."""
        return self.start + self.size

    def index(self, value: float | int | None) -> int | None:
        """Category index (0-based, within the segment) of ``value``, or None for no category.

        Args:
            value: the raw property value; for ``"category"`` segments already the 0-based index.

        Returns:
            The index in ``range(size)``, or None when the value is missing or out of range.
        """
        if value is None:
            return None
        if self.kind == "category":
            i = int(value)
            return i if 0 <= i < self.size else None
        x = float(value)
        if math.isnan(x):
            return None
        if self.kind == "log":
            if x <= 0.0:
                return None
            x = math.log(x)
        if x < self.lo or x > self.hi:
            return None
        # Same float evaluation order as the reference (matters for values on a bin edge).
        return min(math.floor((x - self.lo) / (self.hi - self.lo) * self.size), self.size - 1)


def _build_segments() -> tuple[FeatureSegment, ...]:
    spec: list[tuple[str, int, Literal["category", "linear", "log"], float, float]] = [
        ("group", 19, "category", 0.0, 0.0),
        ("period", 7, "category", 0.0, 0.0),
        ("electronegativity", 10, "linear", 0.5, 4.0),
        ("covalent_radius", 10, "linear", 25.0, 250.0),
        ("valence_electrons", 12, "category", 0.0, 0.0),
        ("first_ionization_energy", 10, "log", 1.3, 3.3),
        ("electron_affinity", 10, "linear", -3.0, 3.7),
        ("block", 4, "category", 0.0, 0.0),
        ("atomic_volume", 10, "log", 1.5, 4.3),
    ]
    segments = []
    start = 0
    for name, size, kind, lo, hi in spec:
        segments.append(FeatureSegment(name, start, size, kind, lo, hi))
        start += size
    return tuple(segments)


#: The nine segments of the CGCNN vector, in column order (sizes sum to 92).
CGCNN_SEGMENTS: tuple[FeatureSegment, ...] = _build_segments()
_CGCNN_N_FEATURES = CGCNN_SEGMENTS[-1].stop  # 92

_BLOCKS = ("s", "p", "d", "f")


def _category_index(segment: FeatureSegment, value: Any) -> int | None:
    """Map a raw property value to its 0-based position within ``segment``."""
    if segment.name == "group":
        return segment.index(value)
    if segment.name == "period" or segment.name == "valence_electrons":
        return segment.index(value - 1)
    if segment.name == "block":
        return _BLOCKS.index(value)
    return segment.index(value)


@functools.lru_cache(maxsize=1)
def _cgcnn_table() -> dict[int, np.ndarray]:
    table: dict[int, np.ndarray] = {}
    for z, props in raw_properties().items():
        vec = np.zeros(_CGCNN_N_FEATURES, dtype=np.float32)
        for seg in CGCNN_SEGMENTS:
            i = _category_index(seg, props[seg.name])
            if i is not None:
                vec[seg.start + i] = 1.0
        vec.setflags(write=False)
        table[z] = vec
    return table


def cgcnn_feature_table() -> dict[int, np.ndarray]:
    """The 92-dimensional CGCNN atom feature table computed from element data.

    Returns:
        ``{Z: float32 vector of length 92}`` for Z = 1..:data:`CGCNN_MAX_Z` (fresh copies).
    """
    return {z: v.copy() for z, v in _cgcnn_table().items()}


def _symbol(z: int) -> str:
    try:
        from pymatgen.core.periodic_table import Element

        return f"{Element.from_Z(int(z)).symbol} (Z={int(z)})"
    except Exception:
        return f"Z={int(z)}"


class AtomFeaturizer:
    """Maps atomic numbers to fixed feature vectors (a lookup table).

    Args:
        table: ``{Z: vector}``; all vectors must have the same length.
        name: a label stored with the table (e.g. in checkpoints).

    Raises:
        ValueError: if the table is empty, a key is not a positive integer, or the vectors are
            not all one-dimensional and of the same length.
    """

    def __init__(self, table: Mapping[int, np.ndarray], name: str = "custom") -> None:
        if not table:
            raise ValueError("AtomFeaturizer: empty feature table")
        converted: dict[int, np.ndarray] = {}
        length: int | None = None
        for key, value in table.items():
            if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or int(key) < 1:
                raise ValueError(f"AtomFeaturizer: atomic numbers must be positive ints, got {key!r}")
            vec = np.asarray(value, dtype=np.float32)
            if vec.ndim != 1:
                raise ValueError(f"AtomFeaturizer: vector for Z={key} is not one-dimensional")
            if length is None:
                length = vec.shape[0]
            elif vec.shape[0] != length:
                raise ValueError(
                    f"AtomFeaturizer: vector for Z={key} has length {vec.shape[0]}, "
                    f"expected {length} (all vectors must have the same length)"
                )
            vec = vec.copy()
            vec.setflags(write=False)
            converted[int(key)] = vec
        self._table = dict(sorted(converted.items()))
        self.name = name
        self._matrix: np.ndarray | None = None
        self._supported: np.ndarray | None = None

    @classmethod
    def cgcnn(cls) -> AtomFeaturizer:
        """The 92-dimensional CGCNN featurizer built from element data (Z = 1..100).

        Returns:
            An AtomFeaturizer named ``"cgcnn"``.
        """
        return cls(_cgcnn_table(), name="cgcnn")

    @classmethod
    def from_json(cls, path: str | Path) -> AtomFeaturizer:
        """Load a table in the CGCNN ``atom_init.json`` format ``{"Z": [floats]}``.

        Args:
            path: the JSON file.

        Returns:
            An AtomFeaturizer named ``"json:<file name>"``.

        Raises:
            ValueError: if the file is not a JSON object of integer keys mapping to equal-length
                lists of numbers (the message names the file).
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict) or not data:
            raise ValueError(f"{path}: expected a non-empty JSON object {{'Z': [floats]}}")
        table: dict[int, np.ndarray] = {}
        length: int | None = None
        for key, value in data.items():
            try:
                z = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"{path}: key {key!r} is not an integer atomic number") from None
            if z < 1 or str(z) != str(key).strip():
                raise ValueError(f"{path}: key {key!r} is not a positive integer atomic number")
            if not isinstance(value, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            ):
                raise ValueError(f"{path}: value for Z={z} is not a list of numbers")
            if length is None:
                length = len(value)
            elif len(value) != length:
                raise ValueError(
                    f"{path}: vector for Z={z} has length {len(value)}, expected {length} "
                    "(all vectors must have the same length)"
                )
            table[z] = np.asarray(value, dtype=np.float32)
        if length == 0:
            raise ValueError(f"{path}: feature vectors are empty")
        return cls(table, name=f"json:{path.name}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AtomFeaturizer:
        """Inverse of :meth:`to_dict`.

        Args:
            d: ``{"name": str, "n_features": int, "table": {"Z": [floats]}}``.

        Returns:
            The reconstructed AtomFeaturizer.

        Raises:
            ValueError: if ``d`` is malformed or ``n_features`` disagrees with the table.
        """
        if not isinstance(d, dict) or not isinstance(d.get("table"), dict):
            raise ValueError("AtomFeaturizer.from_dict: expected a dict with a 'table' dict")
        try:
            table = {int(k): np.asarray(v, dtype=np.float32) for k, v in d["table"].items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"AtomFeaturizer.from_dict: malformed table ({exc})") from exc
        featurizer = cls(table, name=str(d.get("name", "custom")))
        n = d.get("n_features")
        if n is not None and int(n) != featurizer.n_features:
            raise ValueError(
                f"AtomFeaturizer.from_dict: n_features={n} but vectors have length {featurizer.n_features}"
            )
        return featurizer

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (for checkpoints).

        Returns:
            ``{"name": str, "n_features": int, "table": {"Z": [floats]}}``.
        """
        return {
            "name": self.name,
            "n_features": self.n_features,
            "table": {str(z): [float(x) for x in v] for z, v in self._table.items()},
        }

    @property
    def n_features(self) -> int:
        """Length of each feature vector."""
        return int(next(iter(self._table.values())).shape[0])

    @property
    def elements(self) -> frozenset[int]:
        """The supported atomic numbers."""
        return frozenset(self._table)

    def supports(self, z: int) -> bool:
        """Whether atomic number ``z`` has a feature vector.

        Args:
            z: atomic number.

        Returns:
            True if ``z`` is in the table.
        """
        try:
            return int(z) in self._table
        except (TypeError, ValueError):
            return False

    def matrix(self) -> np.ndarray:
        """The table as a dense array indexed by atomic number.

        Returns:
            float32 array of shape ``(max_Z + 1, n_features)``; rows of unsupported atomic numbers
            (including row 0) are NaN. The array is read-only and shared between calls.
        """
        if self._matrix is None:
            max_z = max(self._table)
            mat = np.full((max_z + 1, self.n_features), np.nan, dtype=np.float32)
            for z, v in self._table.items():
                mat[z] = v
            mat.setflags(write=False)
            supported = np.zeros(max_z + 1, dtype=bool)
            supported[list(self._table)] = True
            self._matrix, self._supported = mat, supported
        return self._matrix

    def __call__(self, atomic_numbers: np.ndarray) -> np.ndarray:
        """Feature vectors for a list of atomic numbers.

        Args:
            atomic_numbers: (n,) integer array-like of atomic numbers.

        Returns:
            float32 array of shape ``(n, n_features)`` (a new array).

        Raises:
            KeyError: naming the unsupported element(s) if any atomic number has no vector.
        """
        z = np.asarray(atomic_numbers)
        if z.ndim != 1:
            z = z.reshape(-1)
        if z.size and not np.issubdtype(z.dtype, np.integer):
            zi = z.astype(np.int64)
            if not np.array_equal(zi, z):
                raise KeyError(f"{self.name} atom features: non-integer atomic numbers {z!r}")
            z = zi
        z = z.astype(np.int64, copy=False)
        mat = self.matrix()
        assert self._supported is not None
        in_range = (z >= 0) & (z < mat.shape[0])
        ok = in_range.copy()
        ok[in_range] = self._supported[z[in_range]]
        if not ok.all():
            bad = sorted({int(x) for x in z[~ok]})
            names = ", ".join(_symbol(x) for x in bad)
            raise KeyError(f"{self.name} atom features: unsupported element(s) {names}")
        rows: np.ndarray = mat[z].copy()
        return rows

    def __len__(self) -> int:
        """Number of supported elements."""
        return len(self._table)

    def __repr__(self) -> str:
        return f"AtomFeaturizer(name={self.name!r}, n_features={self.n_features}, n_elements={len(self._table)})"
