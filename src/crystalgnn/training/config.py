"""The training configuration: one dataclass that mirrors the CLI flags and the YAML files."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``config.yaml`` in the run folder.

    Defaults follow the original CGCNN ``main.py`` (SGD lr 0.01, momentum 0.9, batch 256,
    30 epochs, MultiStepLR milestone 100) with the thesis' 0.8/0.1/0.1 split.
    """

    source: str = ""
    targets: list[str] = field(default_factory=list)
    site_target: str | None = None
    model: str = "cgcnn"
    model_options: dict[str, Any] = field(default_factory=dict)
    readout: str = "graph"  # graph | site | site-linear (crystalgnn.models.readouts)
    init_from: str | None = None  # start from this checkpoint's weights (matching names and shapes)
    task: str = "auto"  # regression | classification | auto (classification for 0/1 'class' targets)
    subset: int | None = None  # train on a seeded random subset of this many structures
    subset_seed: int = 0
    split: str = "0.8,0.1,0.1"
    split_file: str | None = None
    seed: int = 0
    epochs: int = 30
    batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    loss: str = "mse"  # regression loss: mse | l1 | huber (crystalgnn.training.losses)
    scheduler: str = "multistep"
    lr_milestones: list[int] = field(default_factory=lambda: [100])
    early_stopping_patience: int | None = None
    out: str = "runs/run"
    atom_init: str | None = None
    structure_column: str | None = None
    end_member: str = "discharged"
    n_jobs: int | None = None
    cache_dir: str | None = None
    use_cache: bool = True
    graphs_on_disk: bool = False  # train from the LMDB cache, graphs read per batch (datasets larger than RAM)
    accelerator: str = "cpu"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    num_threads: int | None = None
    max_time_minutes: float | None = None
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise KeyError(f"unknown config key(s) {unknown}; valid keys: {sorted(names)}")
        d = dict(d)
        if isinstance(d.get("targets"), str):
            d["targets"] = [t for t in d["targets"].split(",") if t]
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a config file must be a mapping of option: value")
        return cls.from_dict({k.replace("-", "_"): v for k, v in data.items()})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    def optim_dict(self) -> dict[str, Any]:
        keys = ("optimizer", "lr", "momentum", "weight_decay", "scheduler", "lr_milestones", "epochs", "loss")
        return {k: getattr(self, k) for k in keys}

    # options that may differ when a run is resumed without changing its result
    RESUME_FREE = ("epochs", "progress", "n_jobs", "cache_dir", "use_cache", "num_threads", "max_time_minutes", "graphs_on_disk")

    def resume_key(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k not in self.RESUME_FREE}
