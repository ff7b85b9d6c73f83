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


# -- floatx: the default float type of new layers (Keras' keras.config.floatx) ----------------
FLOATX_CHOICES = ("float16", "float32", "float64")
_floatx = "float32"


def floatx() -> str:
    """The dtype new layers, and so new models, get when none is given: ``'float32'``."""
    return _floatx


def set_floatx(value: str) -> None:
    """Like ``keras.config.set_floatx``: layers made *after* this call compute in ``value``.

    ``set_floatx('float64')`` then ``VGG16(...)`` gives a float64 VGG16 -- what a
    gradient check or a parity study wants (numvgg in float64 against Keras in
    float64 agrees to ~1e-12). Layers made before keep their dtype.
    """
    global _floatx
    value = str(value)
    if value not in FLOATX_CHOICES:
        raise ValueError(f"Unknown floatx {value!r}. Valid choices: {list(FLOATX_CHOICES)}.")
    _floatx = value
