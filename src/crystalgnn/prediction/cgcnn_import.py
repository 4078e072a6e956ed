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
from crystalgnn.training.checkpoints import save_task, v1_graph_key
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
    """Read an original ``.pth.tar`` safely (tensors, containers and numpy scalars only)."""
    with torch.serialization.safe_globals(_safe_numpy_globals()):
        try:
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"{path}: not a loadable CGCNN checkpoint ({type(exc).__name__}: {str(exc)[:160]})"
            ) from exc
    for key in ("state_dict", "args"):
        if key not in ckpt:
            raise ValueError(f"{path}: not an original CGCNN checkpoint (no {key!r})")
    return ckpt


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
    args = dict(ckpt["args"])
    state = ckpt["state_dict"]
    task_kind = str(args.get("task", "regression"))
    config = CGCNNConfig(
        atom_fea_len=int(args.get("atom_fea_len", 64)),
        h_fea_len=int(args.get("h_fea_len", 128)),
        n_conv=int(args.get("n_conv", 3)),
        n_h=int(args.get("n_h", 1)),
        radius=8.0,
        max_neighbors=12,
        step=0.2,
        pad_to_max_neighbors=True,
    )
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
        spec = TargetSpec([target], "graph", task_kind, {target: unit}, [float(norm["mean"])], [float(norm["std"])])
    else:
        spec = TargetSpec([target], "graph", task_kind, {target: unit})
    task = CrystalTask(
        model_name="cgcnn",
        model_config=config.to_dict(),
        graph_config=config.graph_config().to_dict(),
        target=spec.to_dict(),
        atom_table=torch.tensor(feat.matrix()),
        featurizer=str(init) if init else "cgcnn",
        extra={"imported_from": str(path), "original_args": {k: str(v) for k, v in args.items()}},
    )
    # the reference's layer names are format 1's: embedding/convs -> encoder, the head -> readout
    mapped = {v1_graph_key("cgcnn", f"model.{k}"): v for k, v in state.items()}
    missing, unexpected = task.load_state_dict(mapped, strict=False)
    missing = [
        m
        for m in missing
        if m not in ("model.encoder.atom_features.table", "model.encoder.expansion.centres", "y_mean", "y_std")
    ]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match CGCNN (missing {missing[:4]}, unexpected {unexpected[:4]})")
    return task.eval()


def save_imported(path: str | Path, out: str | Path, atom_init: str | Path | None = None) -> Path:
    """Convert an original checkpoint to a crystalgnn ``.ckpt`` (loadable by ``predict``)."""
    return save_task(import_cgcnn_task(path, atom_init), out)
