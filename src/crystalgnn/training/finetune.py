"""Fine-tuning: a run that starts from another checkpoint's encoder (and, for the same target,
its readout).

Transfer learning for crystal graphs as TL-CGCNN (Lee & Asahi, Comput. Mater. Sci. 190,
110314, 2021): pretrain on a large property, then fine-tune every layer on a scarce one. The
training options that go with it live in :class:`~crystalgnn.training.config.TrainConfig`
(``--init-from``, ``--new-head``, ``--freeze-encoder-epochs``: the encoder gets no updates for
the first N epochs, :class:`~crystalgnn.training.task.CrystalTask`; ``--encoder-lr-factor``:
discriminative learning rates, :func:`~crystalgnn.training.optim.param_groups`). The checkpoint
may be a run folder, a ``.ckpt`` file, a shipped model name, an imported original CGCNN
``.pth.tar`` or a Crystal Twins encoder (:mod:`crystalgnn.training.pretrain`).
"""

from __future__ import annotations

from pathlib import Path

from crystalgnn.training.checkpoints import load_task
from crystalgnn.training.resolve import resolve_model
from crystalgnn.training.task import CrystalTask


def init_weights(module: CrystalTask, ref: str | Path, *, new_head: bool = False) -> dict[str, int]:
    """Start from a checkpoint's weights (fine-tuning, as TL-CGCNN: Lee & Asahi, Comput. Mater.
    Sci. 190, 110314, 2021).

    - The encoder is copied whole: every encoder tensor (including the atom-feature table and
      batch-norm statistics) must exist in the checkpoint with the same shape, else a
      ``ValueError`` names the first that does not (another architecture or size).
    - The readout is copied only when the checkpoint was trained on the same targets (same
      names, in the same order) and ``new_head`` is false, tensor by tensor where the shapes
      match; for another target (or with ``new_head``) the run keeps its freshly initialised
      head, since the old head predicts another quantity in another normalisation.
    - The target normaliser is always the run's own (fitted on its training split).

    Returns the number of tensors copied: ``{"encoder": n, "readout": m}``.
    """
    source = load_task(resolve_model(ref))
    src = source.state_dict()
    own = module.state_dict()
    enc = [k for k in own if k.startswith("model.encoder.")]
    misfit = [k for k in enc if k not in src or src[k].shape != own[k].shape]
    if misfit:
        k = misfit[0]
        got = tuple(src[k].shape) if k in src else "missing"
        raise ValueError(
            f"{ref}: no encoder weight fits this model ({k}: {got} in the checkpoint, {tuple(own[k].shape)} here; "
            "another architecture or size?)"
        )
    same_target = list(source.spec.names) == list(module.spec.names) and source.spec.kind == module.spec.kind
    head = []
    if same_target and not new_head:
        head = [k for k in own if k.startswith("model.readout.") and k in src and src[k].shape == own[k].shape]
    own.update({k: src[k] for k in enc + head})
    module.load_state_dict(own)
    return {"encoder": len(enc), "readout": len(head)}


__all__ = ["init_weights"]
