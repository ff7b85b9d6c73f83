"""Hint levels of an exercise text, and the languages texts exist in.

A text marks the parts that depend on the hint level with HTML comments (they
do not show when the Markdown is rendered)::

    <!-- hints: some full -->
    ... shown at levels "some" and "full" ...
    <!-- end hints -->

The three levels, from ``numvgg exercises start NAME DIR --hints LEVEL``:

* ``none``: the task, the shapes, the rules and how it is checked;
* ``some`` (the default): plus the maths and the hints, in words and formulas
  -- never the finished code;
* ``full``: plus worked code, for self-study or after the deadline.
"""

from __future__ import annotations

import re

HINT_LEVELS = ("none", "some", "full")
DEFAULT_HINTS = "some"
LANGUAGES = ("en", "zh")

_OPEN = re.compile(r"^<!-- hints: ([a-z ]+) -->\s*$")
_CLOSE = re.compile(r"^<!-- end hints -->\s*$")


def select_hints(text: str, level: str) -> str:
    """``text`` with the blocks that are not for ``level`` removed (and the markers)."""
    if level not in HINT_LEVELS:
        raise ValueError(f"hint level {level!r} does not exist; choose one of {', '.join(HINT_LEVELS)}")
    kept, showing, inside = [], True, False
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        opened, closed = _OPEN.match(line), _CLOSE.match(line)
        if opened:
            levels = opened.group(1).split()
            if inside or not set(levels) <= set(HINT_LEVELS):
                raise ValueError(
                    f"line {number}: {line.strip()!r}: a hints block inside another one, "
                    f"or a level not among {', '.join(HINT_LEVELS)}"
                )
            inside, showing = True, level in levels
        elif closed:
            if not inside:
                raise ValueError(f"line {number}: '<!-- end hints -->' without an opening marker")
            inside, showing = False, True
        elif showing:
            kept.append(line)
    if inside:
        raise ValueError("a '<!-- hints: ... -->' block is never closed")
    return re.sub(r"\n{3,}", "\n\n", "".join(kept))
