"""Checkpoints: reading them safely, checking them, rebuilding the task they hold, writing them.

Files are read with ``torch.load(weights_only=True)``: never an arbitrary pickle (a file that
holds another object is refused with the object's type named). Layouts of older releases are
brought up to date by :mod:`crystalgnn.training.migration`; a format newer than this release is
refused. Before the model is built, one validation step (:func:`validate_checkpoint`) checks the
hyper-parameters and compares the weights' shapes with those the hyper-parameters give, the
model being laid out without its large tensors (on the ``meta`` device): a small file declaring
huge dimensions is refused before anything is allocated. Every problem is a one-line
:class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from crystalgnn._version import __version__
from crystalgnn.training.migration import (
    FORMAT_VERSION,
    CheckpointError,
    check_format,
    format_version,
    migrate,
    state_mismatch,
    v1_graph_key,
)
from crystalgnn.training.task import CrystalTask

__all__ = ["CheckpointError", "check_resume_point", "check_state", "expected_shapes", "first_line", "format_version", "load_task", "migrate", "read_checkpoint",
           "save_task", "task_from_checkpoint", "v1_graph_key", "validate_checkpoint", "weights_only_error"]  # fmt: skip

#: hyper-parameters of a format-2 checkpoint (the arguments of CrystalTask but the atom table)
REQUIRED_HP = ("model_name", "model_config", "graph_config", "target")
OPTIONAL_HP = ("readout", "readout_options", "optim", "featurizer", "seed", "extra")
TABLE_KEY = "model.encoder.atom_features.table"


def weights_only_error(
    path: str | Path, exc: BaseException, what: str = "readable crystalgnn checkpoint"
) -> CheckpointError:
    """Torch's refusal to unpickle a file, as one line: the type of a pickled object it holds,
    or why it is not a checkpoint at all (never torch's advice to load it unsafely).
    """
    text = str(exc)
    m = re.search(r"(?:GLOBAL|unrecognized function) `?([\w.]+)", text)
    if m:
        return CheckpointError(
            f"{path}: the file contains a pickled object of type {m.group(1)}, which crystalgnn does not load "
            "(checkpoints hold tensors and plain data only)"
        )
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not re.search(r"weights_only|documentation|Weights only load failed", ln)]
    reason = (useful[0] if useful else type(exc).__name__)[:160]
    return CheckpointError(f"{path}: not a {what} ({reason})")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load`` restricted to tensors and plain containers, checked for a crystalgnn layout
    and for a format this release reads.
    """
    import pickle

    try:
        with warnings.catch_warnings():  # torch's note on a pickle protocol it may not read: the error says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise weights_only_error(path, exc) from exc
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable crystalgnn checkpoint ({msg})") from exc
    if not isinstance(ckpt, dict):
        what = "a bare state_dict (weights without hyper-parameters)" if _is_state(ckpt) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not a crystalgnn checkpoint (it holds {what})")
    if "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        if _is_state(ckpt):
            raise CheckpointError(
                f"{path}: not a crystalgnn checkpoint (a bare state_dict: weights without hyper-parameters)"
            )
        missing = " and ".join(k for k in ("state_dict", "hyper_parameters") if k not in ckpt)
        raise CheckpointError(f"{path}: not a crystalgnn checkpoint (no {missing})")
    check_format(ckpt, path)
    return ckpt


def _is_state(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _check_layout(ckpt: dict[str, Any], source: str | Path) -> None:
    """The containers: a dict of named tensors and a dict of hyper-parameters."""
    hp = ckpt.get("hyper_parameters")
    if not isinstance(hp, dict):
        raise CheckpointError(f"{source}: hyper_parameters is a {type(hp).__name__}, not a mapping")
    check_state(ckpt.get("state_dict"), source)


def check_state(state: Any, source: str | Path) -> None:
    """A non-empty mapping of names to tensors, each holding the data its shape declares."""
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{source}: state_dict is empty or not a mapping of named tensors")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: state_dict entries that are not named tensors: {', '.join(bad[:3])}")
    for k, v in state.items():  # a view declaring more data than it holds (an expanded tensor)
        if v.numel() and v.numel() * v.element_size() > v.untyped_storage().nbytes():
            raise CheckpointError(
                f"{source}: weight {k} declares shape {tuple(v.shape)} ({_mb(v.numel() * v.element_size())}) "
                f"but the file holds {_mb(v.untyped_storage().nbytes())} of data for it"
            )


def _check_hyper_parameters(hp: dict[str, Any], source: str | Path) -> None:
    missing = [k for k in REQUIRED_HP if k not in hp]
    if missing:
        raise CheckpointError(f"{source}: hyper-parameters missing: {', '.join(missing)}")
    unknown = sorted(str(k) for k in set(hp) - set(REQUIRED_HP) - set(OPTIONAL_HP))
    if unknown:
        raise CheckpointError(f"{source}: unknown hyper-parameters {', '.join(unknown)} (a newer crystalgnn?)")
    for k in ("model_config", "graph_config", "target"):
        if not isinstance(hp[k], dict):
            raise CheckpointError(f"{source}: hyper-parameter {k} is a {type(hp[k]).__name__}, not a mapping")
    from crystalgnn.models.registry import get_spec

    try:
        get_spec(str(hp["model_name"]))
    except KeyError as exc:
        raise CheckpointError(f"{source}: {exc.args[0]!s}") from exc


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.3g} MB"


# ----------------------------------------------------------------------------- shapes on the meta device
#: factory calls creating more elements than this go to the meta device (no memory); smaller ones
#: are real, so code that reads a value while building (``.item()``) still works
_REAL_LIMIT = 1 << 14
_SIZED = ("empty", "zeros", "ones", "rand", "randn", "full", "new_empty", "new_zeros", "new_ones", "new_full")


def _numel(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    """Elements a factory call creates (None: not a factory call)."""
    if name in _SIZED:
        a = args[1:] if name.startswith("new_") else args
        size = kwargs.get("size", a[0] if a else ())
        if not isinstance(size, (tuple, list, torch.Size)):
            size = [size] if name.endswith("full") else [x for x in a if isinstance(x, int)]
        return math.prod(int(s) for s in size)
    if name in ("linspace", "logspace"):
        return int(kwargs.get("steps", args[2] if len(args) > 2 else 0))
    if name == "arange":
        nums = [float(x) for x in args if isinstance(x, (int, float))]
        start, end, step = (0.0, nums[0], 1.0) if len(nums) == 1 else (*nums, 1.0)[:3]
        return max(0, math.ceil((end - start) / step)) if step else 0
    if name == "eye":
        return int(args[0]) * int(args[1] if len(args) > 1 and isinstance(args[1], int) else args[0])
    return None


class _LayoutOnly(TorchFunctionMode):
    """Large tensors created on the meta device; at most ``max_tensors`` tensors created."""

    def __init__(self, max_tensors: int) -> None:
        super().__init__()
        self.created = 0
        self.max_tensors = max_tensors

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        n = _numel(getattr(func, "__name__", ""), args, kwargs)
        if n is not None:
            self.created += 1
            if self.created > self.max_tensors:
                raise CheckpointError(f"the settings build more than {self.max_tensors} tensors")
            if n > _REAL_LIMIT and kwargs.get("device") is None:
                kwargs["device"] = "meta"
        return func(*args, **kwargs)


def expected_shapes(hp: dict[str, Any], table: torch.Tensor, max_tensors: int = 100_000) -> dict[str, tuple[int, ...]]:
    """The ``state_dict`` shapes of the task that ``hp`` describes, without allocating its weights."""
    with _LayoutOnly(max_tensors):
        task = CrystalTask(**hp, atom_table=table)
    return {k: tuple(v.shape) for k, v in task.state_dict().items()}


def first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text.strip().splitlines()[0][:240] if text.strip() else type(exc).__name__


def validate_checkpoint(ckpt: dict[str, Any], source: str | Path = "checkpoint") -> dict[str, Any]:
    """The one validation step before a model is built; returns the checkpoint in this release's format.

    Checks the layout (named tensors, a mapping of hyper-parameters), the format version, the
    hyper-parameters (complete, a known model), and that every weight has the shape the
    hyper-parameters give (laid out on the meta device, so huge declared dimensions cost nothing).

    Raises:
        CheckpointError: one line naming ``source`` and the problem.
    """
    _check_layout(ckpt, source)
    check_format(ckpt, source)
    try:
        ckpt = migrate(ckpt)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: format-1 settings that cannot be read ({first_line(exc)})") from exc
    hp, state = ckpt["hyper_parameters"], ckpt["state_dict"]
    _check_hyper_parameters(hp, source)
    table = state.get(TABLE_KEY)
    if table is None or table.dim() != 2 or not table.is_floating_point():
        raise CheckpointError(f"{source}: no atom-feature table in the weights (not a crystalgnn model)")
    try:
        shapes = expected_shapes(hp, table, max_tensors=4 * len(state) + 256)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: settings do not fit the weights ({exc}; the file has {len(state)})") from exc
    except Exception as exc:
        raise CheckpointError(f"{source}: settings that do not build a model ({first_line(exc)})") from exc
    problem = state_mismatch(shapes, state)
    if problem:
        raise CheckpointError(f"{source}: the weights do not fit the settings: {problem}")
    return ckpt


def task_from_checkpoint(ckpt: dict[str, Any], source: str | Path = "checkpoint") -> CrystalTask:
    """Rebuild a :class:`~crystalgnn.training.task.CrystalTask` (any format) after
    :func:`validate_checkpoint`, with strict weight loading.
    """
    ckpt = validate_checkpoint(ckpt, source)
    hp, state = ckpt["hyper_parameters"], ckpt["state_dict"]
    try:
        task = CrystalTask(**hp, atom_table=state[TABLE_KEY])
        task.load_state_dict(state, strict=True)
    except (TypeError, KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{source}: weights or settings do not fit the model ({first_line(exc)})") from exc
    return task.eval()


def check_resume_point(path: str | Path, task: CrystalTask) -> None:
    """Before Lightning resumes from ``path``: read it safely (:func:`read_checkpoint`: tensors and
    plain data, a format this release reads) and check that its weights fit ``task``.
    """
    ckpt = read_checkpoint(path)
    check_state(ckpt["state_dict"], path)
    try:
        state = migrate(ckpt)["state_dict"]
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: format-1 settings that cannot be read ({first_line(exc)})") from exc
    problem = state_mismatch({k: tuple(v.shape) for k, v in task.state_dict().items()}, state)
    if problem:
        raise CheckpointError(f"{path}: the checkpoint to resume from does not fit this run's model: {problem}")


def load_task(path: str | Path) -> CrystalTask:
    """:func:`read_checkpoint` then :func:`task_from_checkpoint`."""
    return task_from_checkpoint(read_checkpoint(path), source=path)


def save_task(task: CrystalTask, path: str | Path) -> Path:
    """Write the weights and hyper-parameters (no optimiser state) in this release's format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": task.state_dict(),
            "hyper_parameters": dict(task.hparams),
            "crystalgnn_format_version": FORMAT_VERSION,
            "crystalgnn_version": __version__,
        },
        str(path),
    )
    return path
