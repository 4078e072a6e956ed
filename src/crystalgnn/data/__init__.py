"""Crystal structures with labels, from any source, as a :class:`CrystalDataset`.

Start with :func:`load_dataset`. Layers (imports go one way only): ``dataset``,
``structure_checks`` -> ``p1_cif`` -> ``structure_io``, ``parsing``, ``textfiles`` -> ``tables`` -> ``catalog``, ``files``,
``id_prop`` -> ``readers``; ``targets`` and ``splits`` build on ``dataset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crystalgnn.data.dataset import CrystalDataset, DataError, Rejection
from crystalgnn.data.targets import default_targets


def load_dataset(source: Any, targets: Sequence[str] | None = None, **kw: Any) -> CrystalDataset:
    """Read crystal structures and their labels from ``source``.

    Accepted sources:

    * a structure file (CIF, POSCAR/CONTCAR, ``*.vasp``, extxyz, anything pymatgen or ASE read)
      or a folder of them;
    * a CGCNN folder (``id_prop.csv`` with ``id,value[,value...]`` rows and ``<id>.cif`` files,
      optionally ``atom_init.json``) or an ALIGNN folder (the first column names the file:
      ``POSCAR-JVASP-1.vasp,0.12``); without a header the single value column is named
      ``target`` (several: ``target_0``, ``target_1``, ...);
    * a table: CSV or JSON lines, optionally gzipped, with a structure column (CIF text or a
      ``Structure.as_dict()``; ``structure_column=`` names it when it is not detected), an id
      column and label columns; a Matbench/matminer JSON file;
    * a short name of a bundled dataset (``"perovskites"``, ``"mp-36k"``, ...; ``crystalgnn data
      list``), or the path of one of those files;
    * ``pymatgen`` ``Structure`` / ASE ``Atoms`` objects, or a list of any of the above.

    Labels: every numeric or true/false column becomes a graph-level label in
    ``ds.targets[name]`` (a float array, NaN where missing); columns with one value per site
    become per-site labels in ``ds.site_targets``. ``ds.units[name]`` gives the unit where it is
    known (bundled datasets, and their files under any path; a JSON-lines table with a ``units``
    column, as ``crystalgnn data fetch`` writes). ``targets=["a", ...]`` requires
    those labels (derived ones such as ``log10_X``, ``X_per_atom``, ``abs_X`` are computed);
    without it nothing is required, and :func:`default_targets` names the label to use when
    the source has exactly one.

    Rejections: nothing is dropped silently. Every entry that cannot be used (unreadable or
    disordered structure, NaN or overflowing lattice or coordinates, unknown element, missing
    file or broken symbolic link, duplicate id, a table line that is not a JSON object, an
    ``id_prop.csv`` row with extra values or a text label, the cut of a truncated file,
    missing/NaN label of a required target) is listed in ``ds.rejections`` as
    ``Rejection(id, source, reason)``; of several sources, one that cannot be read at all is a
    rejection naming it, and the others are kept;
    ``ds.rejection_counts()`` counts them by kind and ``ds.write_rejections("rejected.csv")``
    saves them. Problems found only when building graphs (isolated atoms, overlapping atoms,
    elements without atom features) are reported by
    :func:`crystalgnn.graphs.inspection.inspect_source`.

    Args:
        source: see above.
        targets: labels that must be present (entries without a finite value are rejected).
        **kw: ``structure_column``, ``end_member`` (battery electrodes: ``"discharged"`` or
            ``"charged"``), ``subset`` (read a seeded random sample of this many raw entries,
            drawn before parsing), ``subset_seed``, ``n_jobs``, ``show_progress``.

    Returns:
        a :class:`CrystalDataset` (``ids``, ``structures``, ``targets``, ``units``,
        ``site_targets``, ``metadata``, ``rejections``, ``notes`` on how the source was read,
        e.g. an ``id_prop.csv`` first line taken as a header; ``summary()`` for an overview).

    Raises:
        DataError: when the source cannot be used at all (no such file, empty, binary, truncated
            before its first row, no structures; a lone structure file whose structure is
            rejected), or none of several sources can.
        KeyError: for a required target the source does not have.

    Example::

        from crystalgnn.data import load_dataset

        ds = load_dataset("perovskites", targets=["heat_all"], subset=500)
        ds.units["heat_all"]  # 'eV/cell'
    """
    from crystalgnn.data.readers import load_source  # readers is the top reading layer

    return load_source(source, targets=targets, **kw)


__all__ = ["CrystalDataset", "DataError", "Rejection", "default_targets", "load_dataset"]
