"""Progress bars for long work (tqdm on stderr; silent when disabled or not a terminal)."""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm


def progress(*, total: int | None = None, desc: str = "", disable: bool = False, **kwargs: Any) -> tqdm:
    """A tqdm bar; ``CRYSTALGNN_PROGRESS=0`` turns every bar off (tests, CI logs)."""
    off = disable or os.environ.get("CRYSTALGNN_PROGRESS", "1") == "0"
    return tqdm(total=total, desc=desc, disable=off, file=sys.stderr, leave=False, dynamic_ncols=True, **kwargs)
