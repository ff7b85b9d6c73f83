"""A teacher-made exercise: LeakyReLU forward and backward.

The format of an exercise folder (see docs/teaching.md):

* ``exercise.py`` (this file): ``SUMMARY``, ``FUNCTIONS``, the reference
  implementation of each function in ``FUNCTIONS``, and ``checks()``, the list
  of :class:`numvgg.exercises.grading.Check` the grader runs;
* ``text.md`` (and ``text.zh.md``): the handout;
* ``skeleton.py``: what ``numvgg exercises start leaky_relu DIR`` hands out.

Each check is ``run(impl)``: it calls the student's functions (``impl.name``)
and compares them with the reference below using numvgg's check toolkit. The
student's code runs in a process of its own; the comparison happens in the
grader, with these reference functions.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from numvgg.exercises.grading import (
    Check,
    assert_close,
    call,
    expect_dtype,
    expect_tuple,
    gradient_check,
    linspace,
    random,
)

SUMMARY = "LeakyReLU forward and backward: x where x > 0, negative_slope * x elsewhere"
FUNCTIONS = ("leaky_relu_forward", "leaky_relu_backward")


def leaky_relu_forward(x, negative_slope=0.3):
    """``out = x`` where ``x > 0``, ``negative_slope * x`` elsewhere (Keras' default slope is 0.3).

    Returns ``(out, cache)``; ``out`` has the shape and dtype of ``x``.
    """
    positive = x > 0                                                  # the mask backward needs
    out = np.where(positive, x, x * x.dtype.type(negative_slope))
    return out, (positive, negative_slope)


def leaky_relu_backward(dout, cache):
    """``dx = dout`` where the input was positive, ``negative_slope * dout`` elsewhere."""
    positive, negative_slope = cache
    return np.where(positive, dout, dout * dout.dtype.type(negative_slope))


# -- the checks ---------------------------------------------------------------------------------

def _forward(impl, x, **kwargs):
    return expect_tuple(call(impl.leaky_relu_forward, x, **kwargs), 2, "leaky_relu_forward", "(out, cache)")


def _slope_hint(got, expected):
    if np.allclose(got, np.maximum(expected, 0)):
        return "negative inputs must give negative_slope * x, not 0 (that is ReLU)"
    return None


def _forward_case(impl, x, **kwargs):
    out, _ = _forward(impl, x, **kwargs)
    if x.dtype == np.float32:
        expect_dtype(out, np.float32, "out")
    return assert_close(out, leaky_relu_forward(x, **kwargs)[0], "out", hints=[_slope_hint])


def _backward_case(impl, x, dout):
    _, cache = _forward(impl, x)
    dx = call(impl.leaky_relu_backward, dout, cache)
    return assert_close(dx, leaky_relu_backward(dout, leaky_relu_forward(x)[1]), "dx",
                        shape_hint="dx has the shape of dout")


def _gradcheck(impl):
    x = random((2, 4, 3), seed=1)
    x = np.where(np.abs(x) < 0.05, x + 0.1, x)        # off the kink, where differences are meaningless
    _, cache = _forward(impl, x)
    dout = random(x.shape, seed=2)
    dx = call(impl.leaky_relu_backward, dout, cache)
    return gradient_check("dx", dx, lambda _: leaky_relu_forward(x)[0], x, dout)


def checks():
    return [
        Check("forward, known answer: np.linspace x (2, 3, 4)", partial(_forward_case, x=linspace((2, 3, 4)))),
        Check("forward, negative_slope=0.1", partial(_forward_case, x=random((3, 5), seed=3), negative_slope=0.1)),
        Check("backward, known answer: np.linspace x and dout (2, 3, 4)",
              partial(_backward_case, x=linspace((2, 3, 4)), dout=linspace((2, 3, 4), 2.0, -1.0))),
        Check("backward, gradient check (float64): x (2, 4, 3)", _gradcheck, points=2),
        Check("float32 in, float32 out", partial(_forward_case, x=random((2, 3), seed=4, dtype=np.float32))),
    ]
