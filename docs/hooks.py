"""mkdocs hook: ``::: module`` lines of modules that do not exist become a warning box.

During the redesign modules move; the API page (docs/api.md) must then be updated, but a stale
line should not fail the whole build (and CI). mkdocstrings would raise on it, so this hook
checks each ``::: crystalgnn.…`` line (module paths only) against the source tree first and replaces the lines it
cannot resolve with an admonition naming them. The build log gets an INFO line (a WARNING would
fail ``mkdocs build --strict``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.api")
SRC = Path(__file__).resolve().parents[1] / "src"
DIRECTIVE = re.compile(r"^:::[ \t]+(crystalgnn(?:\.[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*$", re.MULTILINE)


def _module_exists(name: str) -> bool:
    """``name`` is a module or package of the source tree (only module paths are listed)."""
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if _module_exists(name):
            return match.group(0)
        log.info("docs/%s: %s not found under src/, skipped", page.file.src_path, name)
        where = f"docs/{page.file.src_path}"
        return f'!!! warning "Not found: `{name}`"\n    Listed in `{where}` but not in `src/`; update the list.\n'

    return DIRECTIVE.sub(replace, markdown)
