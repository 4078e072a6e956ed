"""Architecture rules for ``src/crystalgnn``, checked on the source (nothing is imported).

Every module's syntax tree is read and every import of a crystalgnn module is collected: at
module level, inside functions and classes, under ``if TYPE_CHECKING:`` (a type-only import is
still a dependency), ``import crystalgnn.x``, ``from crystalgnn.x import y`` (``y`` counts as the
module ``crystalgnn.x.y`` when that module exists), relative imports, and
``importlib.import_module("crystalgnn.x")`` / ``__import__("crystalgnn.x")`` with a literal name.

The rules:

(a) no import cycles between modules (a module importing itself, or a group of modules that
    reach each other through imports);
(b) layers only import downward (see ``LAYERS``);
(c) a module is at most ``MAX_LINES`` lines long, unless its module docstring says why with the
    phrase ``ALLOW_LONG_PHRASE``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "crystalgnn"
SRC = Path(__file__).resolve().parents[1] / "src" / PACKAGE

LAYERS: tuple[tuple[str, ...], ...] = (
    ("<base>",),
    ("data",),
    ("graphs",),
    ("models",),
    ("training",),
    ("prediction",),
    ("baselines",),
    ("evaluation",),
    ("experiments",),
    ("explain",),
    ("discovery",),
    ("pretrained",),
    ("cli",),
    ("<top>",),
)
"""The layers of crystalgnn, lowest first; a module may import its own layer and the layers
below it, never a layer above.

Each entry names the parts of one layer: ``"data"`` is the subpackage ``crystalgnn.data`` (or a
module ``crystalgnn/data.py``) with everything in it. Two special parts:

- ``"<base>"``: the plain modules directly under ``crystalgnn`` (``crystalgnn.progress``,
  ``crystalgnn.gc_pause``, ``crystalgnn.metrics``, ``crystalgnn._version``, ...): small helpers
  that everything may use and that import no other layer;
- ``"<top>"``: the package itself (``crystalgnn/__init__.py``), ``crystalgnn.api`` and
  ``crystalgnn.__main__``: the public face, which may use every layer. The package
  ``__init__`` may re-export lazily from any layer through a module-level ``__getattr__``; the
  imports inside its functions are therefore not counted as edges for the cycle check (a module
  that does ``from crystalgnn import __version__`` does not import the whole API).

A layer whose package does not exist yet simply has no modules. A new subpackage must be added
here (the test fails naming it).
"""

TOP_MODULES = frozenset({PACKAGE, f"{PACKAGE}.api", f"{PACKAGE}.__main__"})

MAX_LINES = 400
ALLOW_LONG_PHRASE = "longer than 400 lines because"


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported crystalgnn module (or package)
    line: int
    in_function: bool  # inside a def / lambda (executed lazily)


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _literal_import_call(node: ast.Call) -> str | None:
    """``importlib.import_module("x")`` / ``import_module("x")`` / ``__import__("x")``."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in {"import_module", "__import__"} or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None


def collect_imports(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if _is_package(path) else name.rpartition(".")[0]
    found: list[Import] = []

    def add(target: str, line: int, in_function: bool) -> None:
        if target == PACKAGE or target.startswith(PACKAGE + "."):
            # the longest prefix that is a module of the package (``crystalgnn.x.y.Class`` -> ``crystalgnn.x.y``)
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            found.append(Import(name, target, line, in_function))

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, in_function)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in modules else base, node.lineno, in_function)
        elif isinstance(node, ast.Call):
            literal = _literal_import_call(node)
            if literal is not None:
                add(literal, node.lineno, in_function)
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def import_graph() -> tuple[dict[str, Path], list[Import]]:
    modules = find_modules()
    edges = [imp for name, path in modules.items() for imp in collect_imports(name, path, modules)]
    return modules, edges


def layer_of(module: str) -> int | None:
    """Index in ``LAYERS``; ``None`` for a subpackage no layer names."""
    if module in TOP_MODULES:
        part = "<top>"
    else:
        first = module.split(".")[1]
        is_plain_module = module.count(".") == 1 and not (SRC / first).is_dir()
        named = any(first in layer for layer in LAYERS)
        part = first if named or not is_plain_module else "<base>"
    for i, layer in enumerate(LAYERS):
        if part in layer:
            return i
    return None


def _where(imp: Import, modules: dict[str, Path]) -> str:
    return f"{modules[imp.source].relative_to(SRC.parents[1])}:{imp.line}"


def _strongly_connected(nodes: list[str], succ: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(succ[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _cycle_edges(edges: list[Import]) -> list[Import]:
    """The edges that take part in cycles (the package ``__init__``'s lazy imports excluded)."""
    return [e for e in edges if not (e.source == PACKAGE and e.in_function)]


# ------------------------------------------------------------------------------------------


def test_import_graph_is_found():
    """Guard against a silently empty graph (a moved ``src`` folder, a broken parser)."""
    modules, edges = import_graph()
    assert len(modules) > 10, f"only {sorted(modules)} found under {SRC}"
    assert len(edges) > len(modules) / 2, f"only {len(edges)} imports found in {len(modules)} modules"
    unknown = sorted({e.target for e in edges if e.target not in modules})
    assert not unknown, f"imports of crystalgnn modules that do not exist: {unknown}"


def test_every_module_has_a_layer():
    modules, _ = import_graph()
    missing = sorted(m for m in modules if layer_of(m) is None)
    if missing:
        pytest.fail(
            "modules in a subpackage that no layer names; add the subpackage to LAYERS in "
            f"tests/test_architecture.py: {missing}",
            pytrace=False,
        )


def test_no_import_cycles():
    modules, edges = import_graph()
    edges = _cycle_edges(edges)
    succ: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        succ[e.source].add(e.target)
    problems: list[str] = []
    for e in edges:
        if e.source == e.target:
            problems.append(f"{e.source} imports itself ({_where(e, modules)})")
    for component in _strongly_connected(sorted(modules), succ):
        if len(component) < 2:
            continue
        members = set(component)
        inside = sorted(
            {
                (e.source, e.target, e.line, _where(e, modules))
                for e in edges
                if e.source in members and e.target in members and e.source != e.target
            }
        )
        lines = "\n".join(f"      {s} -> {t}  ({w})" for s, t, _, w in inside)
        problems.append(f"cycle between {len(component)} modules: {' <-> '.join(component)}\n{lines}")
    if problems:
        pytest.fail(f"{len(problems)} import cycle(s):\n  " + "\n  ".join(problems), pytrace=False)


def test_layers_import_downward():
    modules, edges = import_graph()
    problems: dict[tuple[str, str, int], str] = {}
    for e in edges:
        if e.source == PACKAGE and e.in_function:
            continue  # the package __init__'s lazy re-exports
        src_layer, dst_layer = layer_of(e.source), layer_of(e.target)
        if src_layer is None or dst_layer is None:
            continue  # reported by test_every_module_has_a_layer
        if dst_layer > src_layer:
            problems[(e.source, e.target, e.line)] = (
                f"{e.source} ({'/'.join(LAYERS[src_layer])}) -> {e.target} ({'/'.join(LAYERS[dst_layer])})"
                f"  ({_where(e, modules)}{', inside a function' if e.in_function else ''})"
            )
    if problems:
        pytest.fail(
            f"{len(problems)} import(s) of a higher layer (layers, lowest first: "
            f"{' < '.join('/'.join(layer) for layer in LAYERS)}):\n  "
            + "\n  ".join(problems[k] for k in sorted(problems)),
            pytrace=False,
        )


def test_modules_are_short():
    modules = find_modules()
    offenders = []
    for name, path in modules.items():
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if ALLOW_LONG_PHRASE not in " ".join(doc.split()):
            offenders.append(f"{path.relative_to(SRC.parents[1])}: {n} lines ({name})")
    if offenders:
        pytest.fail(
            f"{len(offenders)} module(s) over {MAX_LINES} lines; split them, or say why in the module "
            f"docstring with the phrase {ALLOW_LONG_PHRASE!r}:\n  " + "\n  ".join(sorted(offenders)),
            pytrace=False,
        )
