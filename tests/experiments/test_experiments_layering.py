"""Layering of crystalgnn.experiments: public names across modules, nothing below imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import crystalgnn

SRC = Path(crystalgnn.__file__).parent
#: the compatibility re-exports at the old paths (removed once callers moved)
SHIMS = {SRC / "evaluation" / "benchmark.py", SRC / "evaluation" / "learning_curve.py"}


def _imports(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out += [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names]
    return out


def test_experiments_import_only_public_names() -> None:
    for path in sorted((SRC / "experiments").glob("*.py")):
        private = [f"{m}.{n}" for m, n in _imports(path) if m.startswith("crystalgnn") and n.startswith("_")]
        assert not private, f"{path.name} imports private names {private}"


def test_nothing_below_imports_experiments() -> None:
    for path in sorted(SRC.rglob("*.py")):
        if (
            "experiments" in path.relative_to(SRC).parts
            or path in SHIMS
            or path.name == "cli.py"
            or "cli" in path.relative_to(SRC).parts
        ):
            continue
        bad = [m for m, _ in _imports(path) if m.startswith("crystalgnn.experiments")]
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"
