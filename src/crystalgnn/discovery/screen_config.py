"""The options of a cathode screen (``crystalgnn screen``), saved as ``screen.yaml`` in its folder.

One :class:`ScreenConfig` holds every choice of the pipeline in
:mod:`~crystalgnn.discovery.screen`: the hosts and generators, the models that score, the
filters and the objective that rank. Its :meth:`~ScreenConfig.stage_key` fingerprints the
options (and host files) each stage depends on, so that a re-run of the same command reuses the
stages whose inputs did not change (the screen is resumable).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from crystalgnn.discovery.candidates import WORKING_IONS
from crystalgnn.discovery.prototypes import PROTOTYPES

PROTOTYPE_ALIASES: dict[str, str] = {"layered": "layered-O3", "o3": "layered-O3", "rocksalt": "rocksalt-ordered"}
"""Short names accepted for the prototypes of :data:`~crystalgnn.discovery.prototypes.PROTOTYPES`."""

OBJECTIVES: tuple[str, ...] = ("specific_energy", "lcb")
"""``specific_energy``: maximise the mean; ``lcb``: maximise ``mean - k std`` (lower confidence bound)."""

_GENERATION = (
    "hosts",
    "working_ion",
    "substitute",
    "prototypes",
    "metals",
    "anions",
    "hautier_threshold",
    "max_per_host",
    "keep_hosts",
    "rescale",
    "charged_fraction",
    "min_distance",
    "known_references",
)
_SCORING = ("formation_model", "voltage_model", "band_gap_model", "metal_model", "hull_reference")


def prototype_name(name: str) -> str:
    """The :data:`~crystalgnn.discovery.prototypes.PROTOTYPES` key of ``name`` (aliases allowed)."""
    key = PROTOTYPE_ALIASES.get(name.strip().lower(), name.strip())
    if key not in PROTOTYPES:
        known = ", ".join([*PROTOTYPES, *PROTOTYPE_ALIASES])
        raise ValueError(f"unknown prototype {name!r} (choose from {known})")
    return key


@dataclass
class ScreenConfig:
    """Every option of a screen.

    Attributes:
        hosts: host sources (files, folders, tables, data set names) for the generators.
        working_ion: the ion the cathode stores (one of ``WORKING_IONS``).
        substitute: explicit substitution rules (``"Co->Ni,Mn; P->Si"``), or ``None``.
        prototypes, metals, anions: prototype frameworks decorated with each metal and anion.
        hautier_threshold: probability threshold of Hautier-2011 substitutions (``None``: off).
        max_per_host: most probable substitutions kept per host.
        keep_hosts: the (valid) hosts themselves are candidates too.
        rescale: lattices of generated candidates rescaled to a predicted volume.
        charged_fraction: fraction of the working ion removed for the charged end member.
        min_distance: minimum interatomic distance of the validity filter (Angstrom).
        known_references: data sets whose structures flag candidates as known (``[]``: off).
        formation_model, voltage_model, band_gap_model, metal_model: checkpoints (shipped names,
            run or ensemble folders); ``None`` skips that property (formation energy is needed).
        hull_reference: reference formation energies of the convex hull (``None``: no hull).
        max_hull: filter, largest energy above hull of the discharged member (eV/atom).
        voltage_window: filter, lowest and highest average voltage (V).
        objective: one of :data:`OBJECTIVES`; ``lcb_k`` is ``k`` of ``mean - k std``.
        top: candidates written as CIFs and shown first.
    """

    hosts: list[str] = field(default_factory=list)
    working_ion: str = "Li"
    substitute: str | None = None
    prototypes: list[str] = field(default_factory=list)
    metals: list[str] = field(default_factory=list)
    anions: list[str] = field(default_factory=lambda: ["O"])
    hautier_threshold: float | None = None
    max_per_host: int = 20
    keep_hosts: bool = True
    rescale: bool = True
    charged_fraction: float = 1.0
    min_distance: float = 0.9
    known_references: list[str] = field(default_factory=lambda: ["electrodes", "mp-36k"])
    formation_model: str | None = "mp-formation-energy"
    voltage_model: str | None = "electrode-voltage"
    band_gap_model: str | None = "mp-band-gap"
    metal_model: str | None = "mp-metal-classifier"
    hull_reference: str | None = "mp-36k"
    max_hull: float = 0.1
    voltage_window: tuple[float, float] = (2.5, 4.5)
    objective: str = "specific_energy"
    lcb_k: float = 1.0
    top: int = 20

    def __post_init__(self) -> None:
        self.hosts = [str(h) for h in self.hosts]
        self.prototypes = [prototype_name(p) for p in self.prototypes]
        self.voltage_window = (float(self.voltage_window[0]), float(self.voltage_window[1]))

    def check(self) -> None:
        """Raise ``ValueError`` (one line) on an unusable combination of options."""
        if self.working_ion not in WORKING_IONS:
            raise ValueError(f"unsupported working ion {self.working_ion!r} (choose from {', '.join(WORKING_IONS)})")
        if not self.hosts and not self.prototypes:
            raise ValueError("nothing to screen: give host structures or --prototypes")
        if self.prototypes and not self.metals:
            raise ValueError("--prototypes needs --metals")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r} (choose from {', '.join(OBJECTIVES)})")
        lo, hi = self.voltage_window
        if not lo < hi:
            raise ValueError(f"voltage window {lo:g},{hi:g}: the first bound must be lower")
        if not 0 < self.charged_fraction <= 1:
            raise ValueError(f"charged fraction must be in (0, 1], got {self.charged_fraction}")
        if self.formation_model is None:
            raise ValueError("a formation-energy model is needed (hull and thermodynamic voltage)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["voltage_window"] = list(self.voltage_window)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScreenConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown screen options: {', '.join(unknown)}")
        return cls(**d)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return p

    @classmethod
    def load(cls, path: str | Path) -> ScreenConfig:
        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})

    def stage_key(self, stage: str) -> str:
        """Fingerprint of what ``stage`` (``"candidates"`` or ``"scores"``) depends on.

        Host files enter by path, size and modification time; scores depend on the candidates.
        """
        d = self.to_dict()
        keys: tuple[str, ...] = _GENERATION if stage == "candidates" else (*_GENERATION, *_SCORING)
        payload: dict[str, Any] = {k: d[k] for k in keys}
        payload["host_files"] = [_file_stamp(h) for h in self.hosts]
        payload["models"] = [_model_stamp(str(d[k])) for k in _SCORING if stage == "scores" and d[k]]
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _model_stamp(ref: str) -> list[Any]:
    """A model's file stamp: a shipped name by its resolved file, so that a model shipped (or
    replaced) after a run invalidates that run's scores; a missing model as missing.
    """
    from crystalgnn.training.resolve import resolve_model

    if Path(ref).exists():
        return _file_stamp(ref)
    try:
        return _file_stamp(str(resolve_model(ref)))
    except (FileNotFoundError, ValueError):
        return [ref, "unavailable"]


def _file_stamp(ref: str) -> list[Any]:
    p = Path(ref)
    if not p.exists():
        return [ref]
    items = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    return [ref, [(q.name, q.stat().st_size, int(q.stat().st_mtime)) for q in items[:2000]]]


def demo_config() -> ScreenConfig:
    """The small screen of ``crystalgnn demo``: the bundled cathodes as hosts, Co substituted by
    Ni, Mn, Fe, and layered / spinel / olivine prototypes of Co, Ni, Mn, Fe (a few seconds).
    Known structures are those of mp-36k (the electrode table adds many polymorphs of the same
    formulas, and with them most of the matching time).
    """
    from crystalgnn.data.examples import examples_dir

    return ScreenConfig(
        hosts=[str(examples_dir())],
        substitute="Co->Ni,Mn,Fe",
        prototypes=["layered", "spinel", "olivine"],
        metals=["Co", "Ni", "Mn", "Fe"],
        known_references=["mp-36k"],
        top=10,
    )
