"""The training configuration: one dataclass that defines every training option.

Each field carries its CLI flag and help text in ``metadata`` (:func:`~crystalgnn.training.options.option`); the ``train``
command's flags are generated from these fields, YAML files use the field names as keys, and
:meth:`TrainConfig.validate` checks the values without importing torch. Per-model training
recipes (the published optimiser, schedule, batch size and epoch budget of MEGNet, SchNet and
ALIGNN) live in ``crystalgnn/training/recipes/<model>.yaml``; :meth:`TrainConfig.resolve`
layers them: dataclass defaults < model recipe < ``--config`` file < flags.

Importable without torch, Lightning, pandas or pymatgen (the CLI builds ``--help`` from it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from crystalgnn.training.options import (
    ACCELERATORS,
    END_MEMBERS,
    LOSSES,
    MODELS,
    OPTIMIZERS,
    READOUTS,
    SCHEDULERS,
    TASKS,
    option,
)


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``config.yaml`` in the run folder.

    Defaults follow the original CGCNN ``main.py`` (SGD lr 0.01, momentum 0.9, batch 256,
    30 epochs, MultiStepLR milestone 100) with the thesis' 0.8/0.1/0.1 split; other models
    start from their recipe (:meth:`resolve`).
    """

    source: str = option("", "file, folder or dataset short name", cli=False)
    targets: list[str] = option(  # noqa: RUF009
        help="repeatable (default: the source's only label)", flags=("--target", "-t"), factory=list, metavar="NAME"
    )
    site_target: str | None = option(
        None, "per-site target (e.g. magmom, abs_magmom): train a per-site model", metavar="NAME"
    )
    model: str = option("cgcnn", "the model; its recipe sets the training defaults marked 'recipes'", choices=MODELS)
    model_options: dict[str, Any] = option(  # noqa: RUF009
        help="model hyper-parameter (repeatable)", flags=("--model-option", "-m"), factory=dict, metavar="KEY=VALUE"
    )
    readout: str = option(
        "graph",
        "graph (the model's published pooling and head) | site (one prediction per atom; with --site-target) "
        "| site-linear (a per-atom scalar whose mean/sum is the prediction)",
        choices=READOUTS,
    )
    init_from: str | None = option(
        None, "start from this checkpoint's weights (matching names and shapes)", metavar="CHECKPOINT"
    )
    new_head: bool = option(False, "with --init-from: a freshly initialised readout even for the checkpoint's target")
    freeze_encoder_epochs: int = option(0, "fine-tuning: no encoder updates for the first N epochs", metavar="N")
    encoder_lr_factor: float = option(1.0, "fine-tuning: the encoder's learning rate is this x --lr", metavar="F")
    task: str = option("auto", "auto: classification for 0/1 'class' targets, else regression", choices=TASKS)
    subset: int | None = option(None, "train on a seeded random subset of this many structures")
    subset_seed: int = option(0, "seed of --subset")
    split: str = option("0.8,0.1,0.1", "train,val,test ratios", metavar="TRAIN,VAL,TEST")
    split_by: str | None = option(
        None,
        "keep entries with equal values of this column on one side of the split (e.g. high_formula)",
        metavar="COLUMN",
    )
    split_file: str | None = option(None, "JSON with train/val/test id lists (instead of --split)", metavar="FILE")
    skip_missing_split_ids: bool = option(False, "train without split-file ids that are not in the dataset (listed)")
    seed: int = option(0, "seed of the split, initialisation and batching")
    ensemble: int = option(
        1, "train N members (seeds seed..seed+N-1, one split): predictions are their mean +- std", metavar="N"
    )
    ensemble_jobs: int = option(1, "train J members at once, a process each (threads: CPUs / J)", metavar="J")
    epochs: int = option(30, "maximum number of epochs")
    batch_size: int = option(256, "structures per batch")
    optimizer: str = option("sgd", "optimiser", choices=OPTIMIZERS)
    lr: float = option(0.01, "learning rate")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(0.0, "L2 weight decay")
    loss: str = option("mse", "regression loss", choices=LOSSES)
    scheduler: str = option("multistep", "learning-rate schedule", choices=SCHEDULERS)
    lr_milestones: list[int] = option(  # noqa: RUF009
        help="epochs at which multistep divides the learning rate by 10", factory=lambda: [100], metavar="E1,E2,..."
    )
    early_stopping_patience: int | None = option(
        None,
        "stop after this many epochs without a better validation metric",
        flags=("--early-stopping",),
        metavar="EPOCHS",
    )
    out: str = option(
        "runs/run", "run folder (default: runs/SOURCE-TARGET-MODEL-sSEED)", flags=("--out", "-o"), show_default=False
    )
    atom_init: str | None = option(None, "CGCNN atom_init.json to use as atom features", metavar="FILE")
    structure_column: str | None = option(None, "table column holding the structures (default: detected)")
    end_member: str = option("discharged", "electrode sets: charged or discharged structure", choices=END_MEMBERS)
    n_jobs: int | None = option(
        None, "worker processes for parsing and graphs (default: all CPUs)", flags=("--jobs", "-j")
    )
    cache_dir: str | None = option(None, "graph cache folder (default ~/.cache/crystalgnn)", metavar="DIR")
    use_cache: bool = option(True, "build graphs without reading or writing the cache", flags=("--no-cache",))
    graphs_on_disk: bool = option(
        False, "keep graphs in the LMDB cache and read them per batch (datasets larger than RAM)"
    )
    accelerator: str = option("cpu", "Lightning accelerator", choices=ACCELERATORS)
    devices: Any = option(1, "devices per node: a number or auto")  # noqa: RUF009
    num_nodes: int = option(1, "nodes (multi-node training)")
    strategy: str = option("auto", "Lightning strategy (auto, ddp, ...)")
    num_threads: int | None = option(None, "torch threads (default: torch's choice)", flags=("--threads",))
    max_time_minutes: float | None = option(
        None,
        "training-time budget: stop at the epoch end before it runs out (resumable; cosine and onecycle "
        "schedules anneal over it)",
        flags=("--time-budget", "--max-time-minutes"),
        metavar="MINUTES",
    )
    compile_model: bool = option(False, "torch.compile the model for training (faster steps after a compile of "
                                 "seconds to a minute; equal to float round-off)", flags=("--compile",))  # fmt: skip
    progress: bool = option(True, "no progress bars", flags=("--no-progress",))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def check_keys(cls, d: dict[str, Any], where: str = "config") -> None:
        """Raise :class:`ConfigKeyError` (one line) for keys that are not fields."""
        names = cls.field_names()
        unknown = sorted(set(d) - set(names))
        if unknown:
            s = "s" if len(unknown) > 1 else ""
            raise ConfigKeyError(f"{where}: unknown key{s} {', '.join(unknown)}; valid keys: {', '.join(names)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        cls.check_keys(d)
        d = dict(d)
        if isinstance(d.get("targets"), str):
            d["targets"] = [t for t in d["targets"].split(",") if t]
        if isinstance(d.get("devices"), str) and d["devices"].strip().isdigit():
            d["devices"] = int(d["devices"])
        if isinstance(d.get("lr_milestones"), (str, int)):
            d["lr_milestones"] = parse_int_list(d["lr_milestones"], "lr_milestones")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_yaml_options(path))

    @classmethod
    def resolve(cls, flags: dict[str, Any] | None = None, config_file: str | Path | None = None) -> TrainConfig:
        """Defaults < the model's recipe < ``config_file`` < ``flags`` (options given explicitly).

        ``model_options`` are merged key by key. Unknown keys in the file raise
        :class:`ConfigKeyError`, an unknown model ``ValueError``; values are not checked here
        (:meth:`validate`).
        """
        flags = dict(flags or {})
        cls.check_keys(flags, "options")
        file = read_yaml_options(config_file) if config_file is not None else {}
        model = flags.get("model") or file.get("model") or cls.model_default()
        if model not in MODELS:
            raise ValueError(f"--model must be one of {', '.join(MODELS)} (got {model!r})")
        merged: dict[str, Any] = {**load_recipe(model), **file, **flags}
        options: dict[str, Any] = {}
        for layer in (file, flags):
            mo = layer.get("model_options")
            if mo is not None and not isinstance(mo, dict):
                raise ValueError(f"model_options must be a mapping of option: value (got {mo!r})")
            options.update(mo or {})
        merged["model_options"] = options
        return cls.from_dict(merged)

    @classmethod
    def model_default(cls) -> str:
        return str(_FIELDS()["model"].default)

    def validate(self) -> TrainConfig:
        """Check every value; raise ``ValueError`` with a one-line message naming the flag.

        Pure Python (no torch): run it before any data is read. Also requires a source (without
        a target, training takes the source's only label). Returns ``self``.
        """
        fields = _FIELDS()
        for name, f in fields.items():
            _check_type(name, getattr(self, name), str(f.type))
            choices = f.metadata.get("choices")
            if choices and getattr(self, name) not in choices:
                raise ValueError(f"{flag_of(name)} must be one of {', '.join(choices)} (got {getattr(self, name)!r})")
        minimum = {"epochs": 1, "batch_size": 1, "subset": 1, "num_nodes": 1, "num_threads": 1, "n_jobs": 1,
                   "early_stopping_patience": 1, "freeze_encoder_epochs": 0, "momentum": 0, "weight_decay": 0,
                   "ensemble": 1, "ensemble_jobs": 1}  # fmt: skip
        for name, lo in minimum.items():
            v = getattr(self, name)
            if v is not None and v < lo:
                raise ValueError(f"{flag_of(name)} must be >= {lo} (got {v})")
        for name, unit in (("lr", ""), ("encoder_lr_factor", ""), ("max_time_minutes", " minutes")):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{flag_of(name)} must be > 0{unit} (got {v})")
        if self.split_file is None:
            parse_split(self.split)
        elif self.split_by:
            raise ValueError("give --split-by or --split-file, not both")
        if not (
            self.devices == "auto"
            or (isinstance(self.devices, int) and not isinstance(self.devices, bool) and self.devices >= 1)
        ):
            raise ValueError(f"--devices must be a number >= 1 or auto (got {self.devices!r})")
        if self.readout == "site" and not self.site_target:
            raise ValueError("--readout site needs --site-target NAME")
        if self.site_target and self.targets:
            raise ValueError(
                "give either graph-level targets (--target) or one per-site target (--site-target), not both"
            )
        if self.site_target and self.task not in ("auto", "regression"):
            raise ValueError("per-site training is regression only")
        if self.site_target and self.graphs_on_disk:
            raise ValueError("--graphs-on-disk is for graph-level targets; per-site runs keep their graphs in memory")
        for k in self.model_options:
            if not isinstance(k, str) or not k:
                raise ValueError(f"--model-option keys must be names (got {k!r})")
        if not self.source:
            raise ValueError("no SOURCE given (argument or 'source:' in the config)")
        return self

    def check_accelerator(self) -> None:
        """For an accelerator other than cpu/auto, check that the backend exists (imports torch).

        Raises ``RuntimeError`` with a one-line message.
        """
        acc = self.accelerator
        if acc in ("cpu", "auto"):
            return
        import torch

        if acc in ("gpu", "cuda"):
            ok = torch.cuda.is_available() or (acc == "gpu" and torch.backends.mps.is_available())
        elif acc == "mps":
            ok = torch.backends.mps.is_available()
        else:  # tpu
            import importlib.util

            ok = importlib.util.find_spec("torch_xla") is not None
        if not ok:
            what = {"gpu": "GPU", "cuda": "CUDA", "mps": "MPS", "tpu": "TPU (torch_xla)"}[acc]
            raise RuntimeError(f"--accelerator {acc}: no {what} backend available on this machine")

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    def optim_dict(self) -> dict[str, Any]:
        keys = ("optimizer", "lr", "momentum", "weight_decay", "scheduler", "lr_milestones", "epochs", "loss",
                "freeze_encoder_epochs", "encoder_lr_factor")  # fmt: skip
        return {k: getattr(self, k) for k in keys}

    # options that may differ when a run is resumed without changing its result
    RESUME_FREE = ("epochs", "progress", "n_jobs", "cache_dir", "use_cache", "num_threads", "max_time_minutes",
                   "graphs_on_disk", "skip_missing_split_ids", "ensemble_jobs", "compile_model")  # fmt: skip

    def resume_key(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k not in self.RESUME_FREE}


class ConfigKeyError(KeyError, ValueError):
    """An unknown option name (in a YAML file or a dict); ``str()`` is the plain message."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _FIELDS() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def flag_of(name: str) -> str:
    """The CLI flag of a field (``n_jobs`` -> ``--jobs``)."""
    f = _FIELDS().get(name)
    flags = f.metadata.get("flags") if f is not None else None
    return flags[0] if flags else "--" + name.replace("_", "-")


def _check_type(name: str, value: Any, annotation: str) -> None:
    """YAML values of the wrong type (``epochs: abc``) fail with the flag's name."""
    optional = "None" in annotation
    if value is None:
        if optional:
            return
        raise ValueError(f"{flag_of(name)} needs a value")
    base = annotation.replace("| None", "").strip()
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "list[int]": isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        "dict[str, Any]": isinstance(value, dict),
    }.get(base, True)
    if not ok:
        kind = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
                "list[str]": "a list of names", "list[int]": "a list of integers",
                "dict[str, Any]": "a mapping"}[base]  # fmt: skip
        raise ValueError(f"{flag_of(name)} must be {kind} (got {value!r})")


def parse_split(text: Any) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` -> (0.8, 0.1, 0.1): three positive numbers summing to 1."""
    msg = f"--split takes three ratios train,val,test summing to 1, e.g. 0.8,0.1,0.1 (got {text!r})"
    try:
        parts = [float(x) for x in (text.split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError):
        raise ValueError(msg) from None
    if len(parts) != 3 or not all(math.isfinite(p) and p >= 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
        raise ValueError(msg)
    if min(parts) <= 0:
        raise ValueError(f"--split {text}: every part needs at least one entry (train, val and test ratios > 0)")
    return parts[0], parts[1], parts[2]


def parse_int_list(text: Any, name: str = "lr_milestones") -> list[int]:
    """``"100,150"`` or ``100`` -> ``[100, 150]``."""
    try:
        return [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{flag_of(name)} takes comma-separated integers (got {text!r})") from None


def read_yaml_options(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of option: value (``-`` in keys read as ``_``); unknown keys raise."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ValueError(f"{path}: not valid YAML{f' (line {line + 1})' if line is not None else ''}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must be a mapping of option: value")
    out: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    aliases = flag_aliases()
    for key, value in data.items():
        name = str(key).replace("-", "_")
        name = aliases.get(name, name)
        if name in out:
            raise ValueError(f"{path}: {name} is given twice (as {given_as[name]} and as {key})")
        out[name], given_as[name] = value, str(key)
    TrainConfig.check_keys(out, str(path))
    return out


@functools.lru_cache(maxsize=1)
def flag_aliases() -> dict[str, str]:
    """Flag names that differ from their field (``jobs`` -> ``n_jobs``), accepted as YAML keys."""
    out = {}
    for f in dataclasses.fields(TrainConfig):
        for flag in f.metadata.get("flags", ()):
            name = flag.lstrip("-").replace("-", "_")
            if flag.startswith("--") and name != f.name and str(f.type) != "bool":
                out[name] = f.name
    return out


@functools.lru_cache(maxsize=1)
def recipe_names() -> list[str]:
    """Models with a packaged training recipe."""
    root = resources.files("crystalgnn.training") / "recipes"
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_recipe(model: str) -> dict[str, Any]:
    """The packaged training settings of ``model`` (``{}`` when it has none)."""
    return dict(_recipe(model))


@functools.cache
def _recipe(model: str) -> dict[str, Any]:
    res = resources.files("crystalgnn.training") / "recipes" / f"{model}.yaml"
    if not res.is_file():
        return {}
    data = yaml.safe_load(res.read_text()) or {}
    TrainConfig.check_keys(data, f"recipe {model}")
    return data
