"""Generate an exercise's skeleton from numvgg's own source.

The library carries no exercise markers. A skeleton is made by reading each
reference function with :func:`inspect.getsource`, keeping its signature and
docstring, and replacing the body with one ``raise NotImplementedError``. So
the skeleton always has the library's current signature and documentation,
and a passing solution can replace the library function one for one.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections import defaultdict
from typing import TYPE_CHECKING

from .dotted import resolve

if TYPE_CHECKING:
    from .catalog import Exercise


def blank_function(func) -> str:
    """The source of ``func`` with its body replaced by ``raise NotImplementedError``.

    Signature, decorators and docstring are kept verbatim (comments inside the
    body, which would give the answer away, are dropped with it).

    Raises:
        ValueError: if ``func``'s source does not parse as one function.
    """
    source = textwrap.dedent(inspect.getsource(func))
    tree = ast.parse(source)
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise ValueError(f"the source of {func.__qualname__} is not a single function definition")
    node = tree.body[0]
    first = node.body[0]
    has_docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    lines = source.splitlines()
    if has_docstring:
        head = lines[: first.end_lineno]  # through the docstring's last line
    else:
        head = lines[: first.lineno - 1]  # the signature only
        if first.lineno == node.lineno:
            raise ValueError(f"{func.__qualname__} is a one-line function; it cannot be blanked")
    indent = " " * first.col_offset
    head.append(f'{indent}raise NotImplementedError("exercise: implement {func.__name__}")')
    return "\n".join(head) + "\n"


def _import_lines(dotted_names) -> list[str]:
    """``from module import a, b`` lines, one per module, in first-seen order."""
    by_module: dict[str, list[str]] = defaultdict(list)
    for dotted in dotted_names:
        module, _, name = dotted.partition(":")
        by_module[module].append(name)
    return [f"from {module} import {', '.join(names)}" for module, names in by_module.items()]


def make_skeleton(exercise: Exercise) -> str:
    """The text of ``<name>.py`` for ``exercise``: a header, the imports, the blanked functions."""
    modules = sorted({f.partition(":")[0] for f in exercise.functions})
    functions = ", ".join(f"{n}()" for n in exercise.function_names)
    # A no-break space keeps ``raise NotImplementedError`` on one line through fill().
    todo = textwrap.fill(
        f"Read {exercise.name}.md (next to this file), then replace each "
        f"``raise\u00a0NotImplementedError`` below with your code: {functions}. "
        f"Check your work with",
        width=79,
    ).replace("\u00a0", " ")
    header = textwrap.dedent(f'''\
        """Exercise {exercise.name}: {exercise.summary}.

        {{todo}}

            python -m numvgg.exercises check {exercise.name} {exercise.name}.py

        The signatures and docstrings are numvgg's own (from {", ".join(modules)}),
        so a solution that passes can stand in for the library's function.
        """
        from __future__ import annotations

        import numpy as np
        ''').replace("{todo}", todo)
    parts = [header]
    if exercise.helpers:
        parts.append(
            "# Given: numvgg's helpers, so you can focus on the exercise.\n"
            + "\n".join(_import_lines(exercise.helpers))
            + "\n"
        )
    for dotted in exercise.functions:
        parts.append("\n" + blank_function(resolve(dotted)))
    return "\n".join(parts)
