"""Imports inside ``crystalgnn.data`` go one way (no cycle, not even through an import inside a
function): dataset/structure_io/parsing -> tables -> catalog -> readers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import crystalgnn.data

PACKAGE = Path(crystalgnn.data.__file__).parent


def data_imports() -> dict[str, set[str]]:
    """module -> the ``crystalgnn.data`` modules it imports, at module level or in a function."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        name = path.stem
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("crystalgnn.data."):
                    deps.add(node.module.split(".")[2])
                elif node.module == "crystalgnn.data":
                    deps.update(a.name for a in node.names if (PACKAGE / f"{a.name}.py").is_file())
            elif isinstance(node, ast.Import):
                deps.update(a.name.split(".")[2] for a in node.names if a.name.startswith("crystalgnn.data."))
        graph[name] = deps - {name}
    return graph


def test_no_import_cycle_in_the_data_package():
    graph = data_imports()
    # catalog is below readers: readers uses it, it never uses readers
    assert "catalog" in graph["readers"]
    assert "readers" not in graph["catalog"]
    assert "readers" not in graph["tables"] and "catalog" not in graph["tables"]
    # and the whole package is acyclic (``__init__`` re-exports and is allowed on top)
    graph.pop("__init__", None)
    state: dict[str, int] = {}

    def visit(mod: str, stack: list[str]) -> None:
        if state.get(mod) == 2:
            return
        assert state.get(mod) != 1, "import cycle: " + " -> ".join([*stack, mod])
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            visit(dep, [*stack, mod])
        state[mod] = 2

    for mod in sorted(graph):
        visit(mod, [])


def test_catalog_loads_without_the_readers():
    code = (
        "import sys, crystalgnn.data.catalog as c; "
        "assert 'crystalgnn.data.readers' not in sys.modules, sorted(m for m in sys.modules if 'crystalgnn' in m); "
        "print(c.catalog_key_for_file('x/castelli_perovskites_cdvae.jsonl.gz'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "perovskites"
