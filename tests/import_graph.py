"""The import graph of a package, read with ``ast`` (nothing is imported), and its cycles.

Used by tests/test_import_cycles.py. An edge ``A -> B`` means: running module
``A`` makes Python run module ``B`` (``B`` may be a package's ``__init__``).

* ``import a.b.c`` / ``from a.b import c``: an edge to the module named, and to
  every package on the way (Python runs ``a/__init__``, ``a/b/__init__`` first),
  except the importer's own ancestors: they are already running when the
  importer runs, which is how packages work, not a cycle.
* ``from .. import name`` where ``name`` is not a submodule reads a name from
  the package's ``__init__``: that is an edge even to an ancestor (the
  ``from .. import __version__`` trap: the ancestor is half-initialised).
* Module-level imports only by default (also inside ``try``/``if``/class
  bodies, which run at import time), not ``if TYPE_CHECKING:`` blocks.
  ``lazy=True`` adds the imports inside functions too: no error at import
  time, but still two modules that need each other.
"""

from __future__ import annotations

import ast
from pathlib import Path


def package_modules(root: Path, package: str) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file under ``root``
    (the package folder, whose own name is ``package``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module, lazy: bool):
    """The Import/ImportFrom nodes that run when the module runs (plus those in
    function bodies when ``lazy``)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if lazy:
                todo.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(root: Path, package: str, lazy: bool = False) -> dict[str, set[str]]:
    """``{module: modules it makes Python run}``, restricted to ``package``."""
    modules = package_modules(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]  # the package `from .` means
        own_ancestors = _ancestors(name) | ({name} if is_package else set())
        for node in _import_nodes(ast.parse(path.read_text(), str(path)), lazy):
            if isinstance(node, ast.Import):
                targets = [(alias.name, True) for alias in node.names]
            else:
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base_name = ".".join(base + ([node.module] if node.module else []))
                else:
                    base_name = node.module or ""
                targets = []
                for alias in node.names:
                    sub = f"{base_name}.{alias.name}"
                    if sub in modules:
                        targets.append((sub, True))  # a submodule
                    else:
                        targets.append((base_name, False))  # a name read from base's __init__
            for target, implicit_parents in targets:
                if target not in modules:
                    continue  # outside the package
                wanted = {target}
                if implicit_parents:
                    wanted |= _ancestors(target) - own_ancestors
                elif target in own_ancestors:
                    wanted = {target}  # explicit read from an ancestor
                wanted &= modules.keys()
                graph[name] |= wanted - {name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module
    (Tarjan's algorithm), each as a closed path ``[a, b, ..., a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_closed_path(graph, set(c)) for c in components]


def _closed_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A readable cycle inside ``component``: breadth-first from its first module back to it."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]  # v, parent of v, ..., start
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(component)
