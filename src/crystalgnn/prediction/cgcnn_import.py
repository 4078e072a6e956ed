"""Import of the original CGCNN code's checkpoints (``txie-93/cgcnn``, ``*.pth.tar``).

The original ``state_dict`` names (``embedding``, ``convs.K.fc_full``/``bn1``/``bn2``,
``conv_to_fc``, ``fcs``, ``fc_out``) are those of :class:`~crystalgnn.models.cgcnn.CGCNN`, so
weights map one to one; the ``normalizer`` (mean, std) becomes the task's normaliser; the graph is
built as the original code built it (radius 8 Å, 12 neighbours, Gaussian step 0.2, zero padding
to 12 neighbours). The original models were trained with the 92-dim ``atom_init.json`` of the
CGCNN repository, which the checkpoints do not contain: pass it (``atom_init``), or it is looked
up beside the checkpoint and in the shared data folder; our own table (which differs for 19
elements, see :mod:`crystalgnn.graphs.atom_features`) is the last resort.

Files are read with ``torch.load(weights_only=True)``; the numpy scalar types some files store
are allow-listed explicitly, never by falling back to unrestricted unpickling.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crystalgnn.graphs.atom_features import AtomFeaturizer
from crystalgnn.models.cgcnn import CGCNNConfig
from crystalgnn.training.checkpoints import (
    CheckpointError,
    check_state,
    expected_shapes,
    save_task,
    task_from_checkpoint,
    v1_graph_key,
    weights_only_error,
)
from crystalgnn.training.checkpoints import (
    first_line as message_of,
)
from crystalgnn.training.migration import check_format, state_mismatch
from crystalgnn.training.targets import TargetSpec
from crystalgnn.training.task import CrystalTask

#: what each published file predicts (name -> (target, unit))
ORIGINAL_TARGETS = {
    "formation-energy-per-atom": ("formation_energy_per_atom", "eV/atom"),
    "final-energy-per-atom": ("energy_per_atom", "eV/atom"),
    "band-gap": ("band_gap", "eV"),
    "efermi": ("efermi", "eV"),
    "bulk-moduli": ("log10_bulk_modulus_vrh", "log10(GPa)"),
    "shear-moduli": ("log10_shear_modulus_vrh", "log10(GPa)"),
    "poisson-ratio": ("poisson_ratio", ""),
    "semi-metal-classification": ("is_metal", "class"),
}


def _safe_numpy_globals() -> list[Any]:
    import numpy.dtypes as npd

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    # files pickled under numpy 1 name the scalar constructor by its old module path
    return [
        scalar,
        (scalar, "numpy.core.multiarray.scalar"),
        np.dtype,
        *(getattr(npd, n) for n in dir(npd) if n.endswith("DType")),
    ]


def load_original_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an original ``.pth.tar`` safely (tensors, containers and numpy scalars only).

    A crystalgnn checkpoint under that name is returned as it is (its format checked).
    """
    import pickle

    with torch.serialization.safe_globals(_safe_numpy_globals()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        try:
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise weights_only_error(path, exc, "loadable CGCNN checkpoint") from exc
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise CheckpointError(f"{path}: not a loadable CGCNN checkpoint ({type(exc).__name__}: {first})") from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not an original CGCNN checkpoint (it holds a {type(ckpt).__name__})")
    if "hyper_parameters" in ckpt or "crystalgnn_format_version" in ckpt:
        check_format(ckpt, path)
        return ckpt
    for key in ("state_dict", "args"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: not an original CGCNN checkpoint (no {key!r})")
    if not isinstance(ckpt["args"], dict):
        raise CheckpointError(f"{path}: the checkpoint's args are a {type(ckpt['args']).__name__}, not a mapping")
    check_state(ckpt["state_dict"], path)
    return ckpt


def _original_config(args: dict[str, Any], path: Path) -> tuple[CGCNNConfig, str]:
    """The architecture and task the original ``args`` declare (one-line errors for bad values)."""
    sizes: dict[str, Any] = {}
    for key, default in (("atom_fea_len", 64), ("h_fea_len", 128), ("n_conv", 3), ("n_h", 1)):
        value = args.get(key, default)
        try:
            sizes[key] = int(value)
        except (TypeError, ValueError):
            sizes[key] = -1
        if sizes[key] < 1 or isinstance(value, bool) or sizes[key] != value:
            raise CheckpointError(f"{path}: args {key}={value!r} is not a positive whole number")
    task = str(args.get("task", "regression"))
    if task not in ("regression", "classification"):
        raise CheckpointError(f"{path}: args task={task!r} (regression or classification)")
    config = CGCNNConfig(**sizes, radius=8.0, max_neighbors=12, step=0.2, pad_to_max_neighbors=True)
    return config, task


def find_reference_atom_init(path: Path) -> Path | None:
    """The original ``atom_init.json`` beside the checkpoint or in the shared data folder."""
    from crystalgnn.data.catalog import shared_data_dir

    cands = [path.parent / "atom_init.json"]
    root = shared_data_dir()
    if root is not None:
        cands.append(root / "aux" / "cgcnn_atom_init.json")
    return next((c for c in cands if c.is_file()), None)


def import_cgcnn_task(path: str | Path, atom_init: str | Path | None = None) -> CrystalTask:
    """A :class:`CrystalTask` holding an original CGCNN checkpoint's weights and normaliser."""
    path = Path(path)
    ckpt = load_original_checkpoint(path)
    if "hyper_parameters" in ckpt or "crystalgnn_format_version" in ckpt:
        return task_from_checkpoint(ckpt, path)  # a crystalgnn checkpoint named .pth.tar
    args = dict(ckpt["args"])
    state = ckpt["state_dict"]
    config, task_kind = _original_config(args, path)
    init = Path(atom_init) if atom_init else find_reference_atom_init(path)
    if init is not None:
        feat = AtomFeaturizer.from_json(init)
    else:
        warnings.warn(
            "original atom_init.json not found; using crystalgnn's own CGCNN table (differs for 19 elements)",
            stacklevel=2,
        )
        feat = AtomFeaturizer.cgcnn()
    stem = path.name.removesuffix(".pth.tar")
    target, unit = ORIGINAL_TARGETS.get(stem, ("target", ""))
    norm = ckpt.get("normalizer") or {"mean": 0.0, "std": 1.0}
    if task_kind == "regression":
        try:
            mean, std = float(norm["mean"]), float(norm["std"])
        except (TypeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: the normalizer is not a mean and a standard deviation") from exc
        spec = TargetSpec([target], "graph", task_kind, {target: unit}, [mean], [std])
    else:
        spec = TargetSpec([target], "graph", task_kind, {target: unit})
    hp: dict[str, Any] = {
        "model_name": "cgcnn",
        "model_config": config.to_dict(),
        "graph_config": config.graph_config().to_dict(),
        "target": spec.to_dict(),
        "featurizer": str(init) if init else "cgcnn",
        "extra": {"imported_from": str(path), "original_args": {k: str(v) for k, v in args.items()}},
    }
    table = torch.tensor(feat.matrix())
    # the reference's layer names are format 1's: embedding/convs -> encoder, the head -> readout
    mapped = {v1_graph_key("cgcnn", f"model.{k}"): v for k, v in state.items()}
    # the shapes the args give, checked before the model is built (laid out on the meta device)
    try:
        shapes = expected_shapes(hp, table, 4 * len(state) + 256)
    except Exception as exc:
        raise CheckpointError(f"{path}: the checkpoint's args do not build a CGCNN ({message_of(exc)})") from exc
    # batch-norm counters (num_batches_tracked) are optional: old PyTorch did not write them
    expected = {k: v for k, v in shapes.items() if k not in _FILLED_IN and not k.endswith(".num_batches_tracked")}
    problem = state_mismatch(expected, {k: v for k, v in mapped.items() if not k.endswith(".num_batches_tracked")})
    if problem:
        raise CheckpointError(f"{path}: the weights do not fit the checkpoint's args: {problem}")
    task = CrystalTask(**hp, atom_table=table)
    task.load_state_dict(mapped, strict=False)
    return task.eval()


#: tensors an original checkpoint does not hold (the atom table, the Gaussian centres, the normaliser)
_FILLED_IN = ("model.encoder.atom_features.table", "model.encoder.expansion.centres", "y_mean", "y_std")


def save_imported(path: str | Path, out: str | Path, atom_init: str | Path | None = None) -> Path:
    """Convert an original checkpoint to a crystalgnn ``.ckpt`` (loadable by ``predict``)."""
    return save_task(import_cgcnn_task(path, atom_init), out)
