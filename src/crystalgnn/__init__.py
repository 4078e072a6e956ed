"""crystalgnn: graph neural networks for crystal properties and battery-cathode screening.

The public API (:mod:`crystalgnn.api`) is imported on first use, so ``import crystalgnn`` stays
light: ``crystalgnn.load_model``, ``crystalgnn.load_dataset``, ``crystalgnn.train``.
"""

from __future__ import annotations

from typing import Any

from crystalgnn._version import __version__

__all__ = ["__version__", "load_dataset", "load_model", "train"]


def __getattr__(name: str) -> Any:
    if name in ("load_model", "load_dataset", "train"):
        from crystalgnn import api

        return getattr(api, name)
    raise AttributeError(f"module 'crystalgnn' has no attribute {name!r}")
