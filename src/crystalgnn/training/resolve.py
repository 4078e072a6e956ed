"""Where a model reference points: a run folder, a checkpoint file, or a shipped model name."""

from __future__ import annotations

from pathlib import Path


def shipped_models_dir() -> Path:
    """The package's ``pretrained/`` folder."""
    return Path(__file__).resolve().parents[1] / "pretrained"


def resolve_model(ref: str | Path) -> Path:
    """Find the checkpoint behind a run folder, a file, or a shipped model name."""
    p = Path(ref)
    if p.is_dir():
        for cand in (p / "checkpoints" / "best.ckpt", p / "model.ckpt", p / "checkpoints" / "last.ckpt"):
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"{p}: run folder without checkpoints/best.ckpt")
    if p.is_file():
        return p
    shipped = shipped_models_dir() / f"{ref}.ckpt"
    if shipped.is_file():
        return shipped
    names = sorted(f.stem for f in shipped_models_dir().glob("*.ckpt"))
    raise FileNotFoundError(f"{ref}: not a file, run folder or shipped model (shipped: {', '.join(names) or 'none'})")
