"""Global switches, kept in one place.

The convolution algorithm (:mod:`numvgg.ops.conv` says which path runs when):

* ``'im2col'``: im2col + one matrix product, forward and backward: the
  algorithm the docs and the exercises teach. A student stepping through
  calls ``set_conv_algorithm('im2col')`` (or ``Conv2D(algorithm='im2col')``).
* ``'kernel_rows'``: stride-1 convolutions as ``KH`` products over kernel-row
  patches (a third of im2col's copying).
* ``'winograd2'``: Winograd F(2x2, 3x3), 2.25x fewer multiplications.
* ``'winograd4'``: Winograd F(4x4, 3x3), 4x fewer multiplications.
* ``'winograd'``: an alias of ``'winograd4'``.
* ``'auto'`` (the default): per layer shape, the fastest of ``'im2col'``,
  ``'kernel_rows'`` and ``'winograd2'``, the paths that round like im2col
  (measured on a 2-core AVX-512 EPYC; :func:`numvgg.ops.conv.auto_path`).
  docs/performance.md says why it is the default and shows every
  algorithm's float32 error against Keras, layer by layer.

The Winograd sizes apply to 3x3, stride-1 convolutions; others fall back
(:func:`numvgg.ops.conv.conv_path`).

``set_num_threads(n)``: threads for the NumPy work around BLAS (copies,
transforms, ReLU, pooling; :mod:`numvgg.ops.parallel`). The default is one
per usable core; ``1`` runs everything in the calling thread. Results are
bit-identical for every setting.
"""

from __future__ import annotations

import contextlib
import os

CONV_ALGORITHMS = ("auto", "im2col", "kernel_rows", "winograd2", "winograd4", "winograd")
CONV_ALIASES = {"winograd": "winograd4"}
DEFAULT_CONV_ALGORITHM = "auto"
_conv_algorithm = DEFAULT_CONV_ALGORITHM


def resolve_conv_algorithm(name, who: str = "conv algorithm") -> str:
    """Check ``name`` and resolve aliases: ``'winograd'`` -> ``'winograd4'``."""
    if name not in CONV_ALGORITHMS:
        raise ValueError(f"Unknown {who} {name!r}. Valid choices: {list(CONV_ALGORITHMS)}.")
    return CONV_ALIASES.get(name, name)


def conv_algorithm() -> str:
    """The algorithm ``Conv2D`` layers use when they were not given one."""
    return _conv_algorithm


def set_conv_algorithm(name: str) -> None:
    """``set_conv_algorithm('im2col')``: every ``Conv2D`` without its own
    ``algorithm=`` runs plain im2col from now on."""
    global _conv_algorithm
    resolve_conv_algorithm(name)
    _conv_algorithm = name


@contextlib.contextmanager
def using_conv_algorithm(name: str):
    """``with using_conv_algorithm('winograd4'): model.predict(x)``."""
    previous = conv_algorithm()
    set_conv_algorithm(name)
    try:
        yield
    finally:
        set_conv_algorithm(previous)


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_num_threads = _usable_cores()


def num_threads() -> int:
    """Threads numvgg uses for the work around BLAS (:mod:`numvgg.ops.parallel`)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    global _num_threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    _num_threads = n


@contextlib.contextmanager
def using_num_threads(n: int):
    """``with using_num_threads(1): ...`` runs the block single-threaded."""
    previous = num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


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
