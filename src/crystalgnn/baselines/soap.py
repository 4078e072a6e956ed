"""SOAP descriptors (DScribe) for the descriptor baselines: SOAP -> SVR here, SOAP -> MLP later.

One fixed-length vector per structure: DScribe's ``SOAP`` with ``average="inner"`` averages the
density expansion coefficients over all atoms *before* forming the power spectrum, so a crystal
of any size gives ``n_features`` numbers. The vector is invariant to rotations, to the order of
the atoms and (with ``periodic=True``) to the choice of cell, including supercells (see
``tests/baselines/test_soap.py``).

DScribe version nuance: DScribe 2.x names the parameters ``r_cut``, ``n_max``, ``l_max`` (1.x used
``rcut``, ``nmax``, ``lmax``, which 2.x rejects) and has ``compression={"mode": "off"}`` where
1.x had ``crossover=True`` (both mean: keep all species pairs); the defaults used here are the 2.x
ones, checked with DScribe 2.1.2 (``sigma=1.0``, ``rbf="gto"``, no weighting, no compression).
2.x also needs ``species`` to cover every element it is asked to describe, so ``species``
defaults to the elements of the whole dataset (not only of the training part; the species list
is only the feature layout and carries no label information). The length of the vector is what
``SOAP.get_number_of_features()`` reports; with ``n_max=1`` it is
``S (S + 1) / 2 * (l_max + 1)`` for ``S`` species (4,788 for the 56 elements of the Castelli
perovskites with ``l_max=2``).

Features are computed in worker processes in chunks (with a progress bar) and cached on disk: one
``.npy`` per key, the BLAKE2 hash of every structure's lattice, atomic numbers and cartesian
coordinates, the :class:`SoapConfig`, the species list and the DScribe version. A second call
with the same input loads the array instead of computing it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crystalgnn.progress import progress

#: below this many structures SOAP is computed in the calling process (a pool costs ~1-2 s)
PARALLEL_MIN = 2000
#: structures per task sent to a worker
CHUNK = 256
#: bump when the way features are computed changes, so old cache files are not reused
SOAP_CODE_VERSION = 1


@dataclass(frozen=True)
class SoapConfig:
    """Parameters of DScribe's ``SOAP`` (2.x names).

    Attributes:
        r_cut: cutoff radius in Å.
        n_max: number of radial basis functions.
        l_max: maximum degree of the spherical harmonics.
        sigma: width of the Gaussians on the atoms in Å (DScribe default 1.0).
        average: ``"inner"`` (average coefficients, then power spectrum), ``"outer"`` (average
            the per-atom power spectra) -- one vector per structure either way.
        periodic: treat structures as periodic crystals.
        rbf: radial basis, ``"gto"`` (DScribe default) or ``"polynomial"``.
        species: element symbols (or numbers) to describe; ``None`` means the elements of the
            structures given to :func:`soap_features`.
    """

    r_cut: float = 5.0
    n_max: int = 1
    l_max: int = 2
    sigma: float = 1.0
    average: str = "inner"
    periodic: bool = True
    rbf: str = "gto"
    species: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.average not in ("inner", "outer"):
            raise ValueError(f"average must be 'inner' or 'outer' (one vector per structure), got {self.average!r}")
        if self.species is not None:
            object.__setattr__(self, "species", tuple(_symbols(self.species)))

    def dscribe_kwargs(self, species: Sequence[str]) -> dict[str, Any]:
        """Keyword arguments for ``dscribe.descriptors.SOAP`` (DScribe >= 2.0)."""
        return {
            "r_cut": float(self.r_cut),
            "n_max": int(self.n_max),
            "l_max": int(self.l_max),
            "sigma": float(self.sigma),
            "rbf": self.rbf,
            "average": self.average,
            "periodic": bool(self.periodic),
            "species": list(species),
            "sparse": False,
            "dtype": "float64",
        }


# --------------------------------------------------------------------------- helpers
def _symbols(species: Sequence[str | int]) -> list[str]:
    """Element symbols sorted by atomic number, without duplicates."""
    from ase.data import atomic_numbers, chemical_symbols

    zs = {int(s) if not isinstance(s, str) else atomic_numbers[s] for s in species}
    return [chemical_symbols[z] for z in sorted(zs)]


def dataset_species(structures: Sequence[Any]) -> list[str]:
    """The elements present in ``structures``, sorted by atomic number."""
    found: set[str] = set()
    for s in structures:
        found.update(el.symbol for el in s.composition.elements)
    return _symbols(sorted(found))


def default_cache_dir() -> Path:
    """``$CRYSTALGNN_CACHE_DIR/soap`` or ``~/.cache/crystalgnn/soap``."""
    return Path(os.environ.get("CRYSTALGNN_CACHE_DIR", Path.home() / ".cache" / "crystalgnn")) / "soap"


def _compact(structure: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(atomic numbers, cartesian coordinates, lattice matrix) of a pymatgen structure via ASE."""
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    return (
        np.asarray(atoms.numbers, dtype=np.int64),
        np.asarray(atoms.positions, dtype=np.float64),
        np.asarray(atoms.cell.array, dtype=np.float64),
    )


def cache_key(
    compact: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], config: SoapConfig, species: Sequence[str]
) -> str:
    """Hex key for one feature matrix: structure contents (in order) + config + species + versions."""
    import dscribe

    h = hashlib.blake2b(digest_size=20)
    meta = {
        "config": asdict(config) | {"species": None},
        "species": list(species),
        "dscribe": getattr(dscribe, "__version__", "?"),
        "code": SOAP_CODE_VERSION,
        "n": len(compact),
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    for z, pos, cell in compact:
        h.update(np.int64(len(z)).tobytes())
        h.update(z.tobytes())
        h.update(pos.tobytes())
        h.update(cell.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- computing
_WORKER_SOAP: Any = None


def _make_soap(config: SoapConfig, species: Sequence[str]) -> Any:
    from dscribe.descriptors import SOAP

    return SOAP(**config.dscribe_kwargs(species))


def _worker_init(config: SoapConfig, species: list[str]) -> None:
    global _WORKER_SOAP
    _WORKER_SOAP = _make_soap(config, species)


def _soap_chunk(
    chunk: list[tuple[np.ndarray, np.ndarray, np.ndarray]], soap: Any = None, periodic: bool = True
) -> np.ndarray:
    from ase import Atoms

    soap = soap if soap is not None else _WORKER_SOAP
    out = np.empty((len(chunk), soap.get_number_of_features()), dtype=np.float32)
    for k, (z, pos, cell) in enumerate(chunk):
        atoms = Atoms(numbers=z, positions=pos, cell=cell, pbc=periodic)
        out[k] = np.asarray(soap.create(atoms), dtype=np.float64).reshape(-1)
    return out


def compute_soap(
    compact: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    config: SoapConfig,
    species: Sequence[str],
    n_jobs: int | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """SOAP vectors (float32, (n, n_features)) of compact structures, in parallel when large."""
    from crystalgnn.data.parsing import default_jobs

    species = list(species)
    n = len(compact)
    soap = _make_soap(config, species)
    n_features = soap.get_number_of_features()
    if n == 0:
        return np.zeros((0, n_features), dtype=np.float32)
    jobs = default_jobs() if n_jobs is None else max(1, int(n_jobs))
    chunks = [list(compact[i : i + CHUNK]) for i in range(0, n, CHUNK)]
    parts: list[np.ndarray] = []
    with progress(total=n, desc="SOAP", disable=not show_progress) as bar:
        if jobs == 1 or n < PARALLEL_MIN:
            for chunk in chunks:
                parts.append(_soap_chunk(chunk, soap, config.periodic))
                bar.update(len(chunk))
        else:
            with ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init, initargs=(config, species)) as pool:
                futures = [pool.submit(_soap_chunk, chunk, None, config.periodic) for chunk in chunks]
                for fut, chunk in zip(futures, chunks, strict=True):
                    parts.append(fut.result())
                    bar.update(len(chunk))
    return np.concatenate(parts, axis=0)


def soap_features(
    structures: Sequence[Any],
    config: SoapConfig | None = None,
    species: Sequence[str | int] | None = None,
    n_jobs: int | None = None,
    cache_dir: str | Path | bool | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """One SOAP vector per structure: float32 array of shape (n_structures, n_features).

    Args:
        structures: pymatgen ``Structure`` objects (converted with ``AseAtomsAdaptor``).
        config: SOAP parameters (default :class:`SoapConfig()`).
        species: elements to describe; overrides ``config.species``; when both are ``None``,
            the elements of ``structures``. Pass the dataset's species when featurising part of
            a dataset so that every part has the same columns.
        n_jobs: worker processes (default: all CPUs this process may use).
        cache_dir: folder of cached ``.npy`` files (default :func:`default_cache_dir`);
            ``False`` turns the cache off.
        show_progress: draw a progress bar while computing.
    """
    config = config or SoapConfig()
    if species is None:
        species = config.species
    species = _symbols(species) if species is not None else dataset_species(structures)
    present = set(dataset_species(structures))
    missing = sorted(present - set(species))
    if missing:
        raise ValueError(f"SOAP species {species} do not cover elements {missing} present in the structures")
    compact = [_compact(s) for s in structures]
    if cache_dir is False:
        return compute_soap(compact, config, species, n_jobs=n_jobs, show_progress=show_progress)
    folder = Path(cache_dir) if cache_dir is not None and cache_dir is not True else default_cache_dir()
    path = folder / f"{cache_key(compact, config, species)}.npy"
    if path.is_file():
        try:
            arr = np.load(path)
            if arr.shape[0] == len(compact) and arr.dtype == np.float32:
                return arr
        except (OSError, ValueError):
            pass  # unreadable or partial file: recompute and overwrite
    arr = compute_soap(compact, config, species, n_jobs=n_jobs, show_progress=show_progress)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return arr
