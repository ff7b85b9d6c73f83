"""Global switches, kept in one place.

``set_conv_algorithm('winograd')`` makes every 3x3, stride-1 ``Conv2D`` compute
its forward pass with Winograd's F(2x2, 3x3) (:mod:`numvgg.ops.winograd`):
2.25x fewer multiplications, results equal to im2col's up to float32 rounding.
Other convolutions, and every backward pass, use im2col whatever the setting.
``'im2col'`` is the default: it is the algorithm the docs and exercises teach.
"""
from __future__ import annotations

import contextlib

CONV_ALGORITHMS = ("im2col", "winograd")
_conv_algorithm = "im2col"


def conv_algorithm() -> str:
    """The algorithm ``Conv2D`` layers use when they were not given one."""
    return _conv_algorithm


def set_conv_algorithm(name: str) -> None:
    global _conv_algorithm
    if name not in CONV_ALGORITHMS:
        raise ValueError(f"Unknown conv algorithm {name!r}. Valid choices: {list(CONV_ALGORITHMS)}.")
    _conv_algorithm = name


@contextlib.contextmanager
def using_conv_algorithm(name: str):
    """``with using_conv_algorithm('winograd'): model.predict(x)``."""
    previous = conv_algorithm()
    set_conv_algorithm(name)
    try:
        yield
    finally:
        set_conv_algorithm(previous)
