"""Node labels of the crystal XGNN: periodic group (18 labels) or period (7 labels) of each atom.

The thesis behind crystalgnn adapted XGNN (Yuan et al., "XGNN: Towards Model-Level Explanations
of Graph Neural Networks", KDD 2020) to crystals by training a CGCNN classifier whose only atom
features are a one-hot label of the element: its group (1-18) or its period (1-7). The
generator then builds graphs of *labels*, which the classifier reads directly.

- :func:`element_label` / :func:`label_table`: the label of an element (pymatgen's
  ``Element.group`` and ``Element.row``; lanthanides and actinides are group 3, as pymatgen
  puts them) and the one-hot table indexed by Z.
- :func:`write_label_atom_init`: that table as a CGCNN ``atom_init.json``, for
  ``crystalgnn train ... --atom-init FILE``.
- :func:`detect_labels`: which labelling (if any) a trained model's atom-feature table is, so
  ``crystalgnn explain model RUN`` needs nothing but the run.
- :func:`representative_elements`: the atomic number fed to the classifier for each label (any
  element of a label has the same features; the most frequent one in the data is reported).
- :func:`METAL_GROUPS`: the groups counted as metals in the summaries (1-12: alkali, alkaline
  earth and transition metals; groups 13-15 mix metals and non-metals and are not counted).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np

LabelKind = Literal["group", "period"]

#: number of labels per labelling
N_LABELS: dict[str, int] = {"group": 18, "period": 7}

#: highest atomic number given a label (CGCNN's element range)
MAX_Z = 100

#: groups whose elements are all metals (alkali, alkaline-earth, transition metals, f-block)
METAL_GROUPS: frozenset[int] = frozenset(range(1, 13))


def check_kind(kind: str) -> LabelKind:
    """``kind`` if it is ``"group"`` or ``"period"``, else ``ValueError``."""
    if kind not in N_LABELS:
        raise ValueError(f"labels must be 'group' or 'period', got {kind!r}")
    return kind  # type: ignore[return-value]


@cache
def _element(z: int) -> tuple[int, int]:
    from pymatgen.core.periodic_table import Element

    el = Element.from_Z(z)
    return int(el.group), int(el.row)


def element_label(z: int, kind: str) -> int:
    """The 0-based label of element ``z``: ``group - 1`` or ``period - 1``."""
    group, period = _element(int(z))
    return (group if check_kind(kind) == "group" else period) - 1


def label_names(kind: str) -> list[str]:
    """``["group 1", ..., "group 18"]`` or ``["period 1", ..., "period 7"]``."""
    return [f"{check_kind(kind)} {i + 1}" for i in range(N_LABELS[kind])]


def label_table(kind: str, max_z: int = MAX_Z) -> np.ndarray:
    """(max_z + 1, n_labels) one-hot table indexed by Z (row 0 is NaN: no element)."""
    n = N_LABELS[check_kind(kind)]
    table = np.zeros((max_z + 1, n), dtype=np.float32)
    table[0] = np.nan
    for z in range(1, max_z + 1):
        table[z, element_label(z, kind)] = 1.0
    return table


def write_label_atom_init(kind: str, path: str | Path, max_z: int = MAX_Z) -> Path:
    """Write the one-hot label table as a CGCNN ``atom_init.json`` (``{"Z": [0/1, ...]}``)."""
    table = label_table(kind, max_z)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({str(z): [int(v) for v in table[z]] for z in range(1, max_z + 1)}))
    return path


def detect_labels(table: np.ndarray) -> LabelKind:
    """Which labelling a model's atom-feature table (max_Z + 1, F) is.

    The table must be the one-hot group (F = 18) or period (F = 7) table on every supported
    element (rows without NaN); any other table (CGCNN's 92 features, ...) raises ``ValueError``.
    """
    table = np.asarray(table, dtype=np.float32)
    rows = [z for z in range(1, min(table.shape[0], MAX_Z + 1)) if not np.isnan(table[z]).any()]
    for kind, n in N_LABELS.items():
        if table.shape[1] != n or not rows:
            continue
        ref = label_table(kind, max(rows))
        if np.array_equal(table[rows], ref[rows]):
            return kind  # type: ignore[return-value]
    raise ValueError(
        f"the model's atom features ({table.shape[1]} per element) are not one-hot group (18) or "
        "period (7) labels: train it with --atom-init from crystalgnn.explain.xgnn_labels.write_label_atom_init"
    )


def representative_elements(
    kind: str, elements: Iterable[int] = (), supported: Iterable[int] | None = None
) -> list[int]:
    """One atomic number per label, fed to the classifier for generated nodes of that label.

    Args:
        kind: ``"group"`` or ``"period"``.
        elements: atomic numbers seen in the data (with repeats); the most frequent element of
            each label is chosen, so the written explanations name a typical element.
        supported: the classifier's supported elements (default: Z = 1..100).

    Labels without any element seen fall back to the lightest supported element of the label.
    Every element of a label has the same one-hot features, so the choice never changes a
    prediction.
    """
    n = N_LABELS[check_kind(kind)]
    allowed = sorted(set(supported) if supported is not None else range(1, MAX_Z + 1))
    allowed = [z for z in allowed if 1 <= z <= MAX_Z]
    counts = Counter(int(z) for z in elements if 1 <= int(z) <= MAX_Z and int(z) in set(allowed))
    out = []
    for label in range(n):
        seen = [(c, -z) for z, c in counts.items() if element_label(z, kind) == label]
        if seen:
            out.append(-max(seen)[1])
            continue
        members = [z for z in allowed if element_label(z, kind) == label]
        if not members:
            raise ValueError(f"no supported element has {kind} {label + 1}")
        out.append(members[0])
    return out
