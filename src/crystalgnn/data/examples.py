"""Bundled example structures: well-known cathode materials built from their published
space group, lattice parameters and Wyckoff positions (experimental structures).

* LiCoO2, R-3m, a 2.8156 c 14.0542 Å, O z 0.2396 (Akimoto et al., J. Solid State Chem. 1998)
* LiNiO2, R-3m, a 2.878 c 14.19 Å, O z 0.2412 (Hirano et al., Solid State Ionics 1995)
* LiFePO4, Pnma, a 10.332 b 6.010 c 4.692 Å (Streltsov et al., Acta Cryst. B 1993)
* LiMnPO4, Pnma, a 10.446 b 6.104 c 4.744 Å (Geller & Durand, Acta Cryst. 1960)
* LiMn2O4, Fd-3m (origin choice 1), a 8.248 Å, O x 0.3881 (Akimoto et al., J. Solid State Chem. 1998)

The CIF files in ``crystalgnn/examples/cathodes`` are these structures (primitive cells),
written with :func:`write_examples`.
"""

from __future__ import annotations

from pathlib import Path

from pymatgen.core import Lattice, Structure

_SPECS: dict[str, tuple[str, Lattice, list[str], list[list[float]]]] = {
    "LiCoO2": ("R-3m", Lattice.hexagonal(2.8156, 14.0542), ["Li", "Co", "O"], [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.2396]]),
    "LiNiO2": ("R-3m", Lattice.hexagonal(2.878, 14.19), ["Li", "Ni", "O"], [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.2412]]),
    "LiFePO4": (
        "Pnma",
        Lattice.orthorhombic(10.332, 6.010, 4.692),
        ["Li", "Fe", "P", "O", "O", "O"],
        [
            [0, 0, 0],
            [0.2822, 0.25, 0.9747],
            [0.0950, 0.25, 0.4182],
            [0.0968, 0.25, 0.7428],
            [0.4571, 0.25, 0.2060],
            [0.1656, 0.0465, 0.2848],
        ],
    ),
    "LiMnPO4": (
        "Pnma",
        Lattice.orthorhombic(10.446, 6.104, 4.744),
        ["Li", "Mn", "P", "O", "O", "O"],
        [
            [0, 0, 0],
            [0.2820, 0.25, 0.9720],
            [0.0930, 0.25, 0.4090],
            [0.0970, 0.25, 0.7340],
            [0.4560, 0.25, 0.2050],
            [0.1630, 0.0490, 0.2780],
        ],
    ),
    "LiMn2O4": (
        "Fd-3m",
        Lattice.cubic(8.248),
        ["Li", "Mn", "O"],
        [[0, 0, 0], [0.625, 0.625, 0.625], [0.3881, 0.3881, 0.3881]],
    ),
}


def cathode_examples() -> dict[str, Structure]:
    """Name -> primitive cell of each bundled cathode material."""
    return {
        name: Structure.from_spacegroup(sg, lat, sp, coords).get_primitive_structure()
        for name, (sg, lat, sp, coords) in _SPECS.items()
    }


def examples_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "examples" / "cathodes"


def write_examples(folder: str | Path | None = None) -> list[Path]:
    """Write the example structures as CIF files (the package ships them in ``examples_dir()``)."""
    from pymatgen.io.cif import CifWriter

    folder = Path(folder) if folder else examples_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, s in cathode_examples().items():
        p = folder / f"{name}.cif"
        CifWriter(s).write_file(str(p))
        out.append(p)
    return out
