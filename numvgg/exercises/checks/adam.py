"""Checks for one Adam step (adam_update), against numvgg's Adam optimizer."""

from __future__ import annotations

from functools import partial

import numpy as np

from ...optimizers import Adam
from .. import functional
from ..grading import Check, CheckFailed, assert_close, call, expect_dtype, expect_tuple, linspace, random

# Adam's numbers are ~learning_rate in size; compare with an absolute floor well below that.
_TOL = {"rtol": 1e-6, "atol": 1e-9}
_NAMES = ("variable", "m", "v")


def _step(impl, w, g, m, v, t, **hyper):
    return expect_tuple(call(impl.adam_update, w, g, m, v, t, **hyper), 3, "adam_update", "(variable, m, v)")


def _compare_step(impl, w, g, m, v, t, tol=None, **hyper):
    got = _step(impl, w, g, m, v, t, **hyper)
    expected = functional.adam_update(w, g, m, v, t, **hyper)
    tol = tol or (_TOL if w.dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-7})
    details = []
    for name, a, e in zip(_NAMES, got, expected):
        if w.dtype == np.float32:
            expect_dtype(a, np.float32, name)
        hints = [_variant_hint(w, g, m, v, t, hyper)] if name == "variable" else ()
        details.append(
            assert_close(a, e, name, hints=hints, shape_hint=f"{name} keeps the weight's shape", **tol)
        )
    return details[0]


def _first_step_size(impl):
    """At t = 1 with m = v = 0 the corrected ratio m_hat / sqrt(v_hat) is g / |g| = +-1."""
    lr = 0.01
    w, g = random((5, 3), seed=1), random((5, 3), seed=2)
    zeros = np.zeros_like(w)
    new_w, _, _ = _step(impl, w, g, zeros, zeros, 1, learning_rate=lr)
    new_w = np.asarray(new_w, dtype=np.float64)
    ratio = float(np.median(np.abs(new_w - w)) / lr)
    if not abs(ratio - 1.0) < 1e-3:
        raise CheckFailed(
            f"the first step (t=1, m = v = 0) moved the weights by {ratio:.4g} x learning_rate; with bias "
            f"correction it is 1 x learning_rate (m_hat = g and v_hat = g*g, so m_hat / sqrt(v_hat) = +-1). "
            f"Did you forget the bias correction? alpha = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t), "
            f"with t starting at 1"
        )
    return f"step = {ratio:.6f} x learning_rate"


def _matches_optimizer(impl):
    """Five steps of adam_update reproduce numvgg.optimizers.Adam (float32, Keras' numbers)."""
    hyper = {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-7}
    w0 = random((3, 4, 2), seed=3, dtype=np.float32)
    grads = [random(w0.shape, seed=10 + k, dtype=np.float32) for k in range(5)]
    weight = w0.copy()
    optimizer = Adam(**hyper)
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t, g in enumerate(grads, start=1):
        optimizer.apply([g], [weight])
        w, m, v = _step(impl, w, g, m, v, t, **hyper)
        assert_close(w, weight, f"variable after step {t} vs numvgg.optimizers.Adam", rtol=1e-5, atol=1e-6)
    return "5 steps agree"


def _variant_hint(w, g, m, v, t, hyper):
    """Recognise the two classic variants: no bias correction, and the paper's epsilon."""
    lr, b1, b2, eps = (
        hyper.get(k, d)
        for k, d in (("learning_rate", 0.001), ("beta_1", 0.9), ("beta_2", 0.999), ("epsilon", 1e-7))
    )
    w, g, m, v = (np.asarray(a, dtype=np.float64) for a in (w, g, m, v))
    m1 = m + (g - m) * (1 - b1)
    v1 = v + (g * g - v) * (1 - b2)
    uncorrected = w - lr * m1 / (np.sqrt(v1) + eps)
    paper = w - lr * (m1 / (1 - b1**t)) / (np.sqrt(v1 / (1 - b2**t)) + eps)

    def hint(got, expected):
        if np.allclose(got, uncorrected, rtol=1e-6, atol=1e-12):
            return (
                "this is Adam WITHOUT bias correction: m and v start at 0, so early averages are too "
                "small by (1 - beta**t); use alpha = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)"
            )
        if np.allclose(got, paper, rtol=1e-6, atol=1e-12):
            return (
                "this is the paper's form m_hat / (sqrt(v_hat) + epsilon); Keras folds the bias "
                "correction into the rate and adds epsilon to sqrt(v) itself: "
                "w - alpha * m / (sqrt(v) + epsilon), alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)"
            )
        return None

    return hint


def _epsilon_case(impl):
    """With gradients as small as epsilon, where epsilon is added changes the step."""
    w, g = linspace((4, 3), -1.0, 1.0), random((4, 3), seed=4) * 1e-7
    zeros = np.zeros_like(w)
    hyper = {"learning_rate": 0.01}
    return _compare_step(impl, w, g, zeros, zeros, 1, **hyper)


def _pure(impl):
    w, g = random((3, 2), seed=5), random((3, 2), seed=6)
    m, v = random((3, 2), seed=7) * 0.1, np.abs(random((3, 2), seed=8)) * 0.1
    new = _step(impl, w, g, m, v, 4)  # ``call`` fails if an argument changed
    for name, arr, old in zip(_NAMES, new, (w, m, v)):
        if arr is old:
            raise CheckFailed(f"adam_update returned its argument `{name}` itself; return a new array")
    return "variable, m and v unchanged; new arrays returned"


def adam_step_checks():
    zeros = np.zeros((3, 4))
    return [
        Check(
            "known answer: np.linspace variable and gradient (3, 4), m = v = 0, t = 1, learning_rate 0.01",
            partial(
                _compare_step,
                w=linspace((3, 4)),
                g=linspace((3, 4), 0.5, -1.5),
                m=zeros,
                v=zeros,
                t=1,
                learning_rate=0.01,
            ),
        ),
        Check("bias correction: the first step moves each weight by learning_rate", _first_step_size),
        Check(
            "a later step: random (5, 2, 3) with m, v from earlier steps, t = 7, beta_1 0.8, beta_2 0.95",
            partial(
                _compare_step,
                w=random((5, 2, 3), 1),
                g=random((5, 2, 3), 2),
                m=random((5, 2, 3), 3) * 0.1,
                v=np.abs(random((5, 2, 3), 4)) * 0.2,
                t=7,
                learning_rate=0.002,
                beta_1=0.8,
                beta_2=0.95,
            ),
        ),
        Check("epsilon placement (Keras): gradients of size ~1e-7", _epsilon_case),
        Check("5 steps match numvgg.optimizers.Adam (float32)", _matches_optimizer),
        Check("pure function: returns new arrays, leaves variable, m and v unchanged", _pure),
        Check(
            "float32 in, float32 out",
            partial(
                _compare_step,
                w=random((4, 3), 5, np.float32),
                g=random((4, 3), 6, np.float32),
                m=np.zeros((4, 3), np.float32),
                v=np.zeros((4, 3), np.float32),
                t=1,
            ),
        ),
    ]
