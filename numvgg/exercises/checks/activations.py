"""Checks for relu_backward / sigmoid_backward and the fused softmax cross-entropy.

The activation backwards get the caches of numvgg's own forwards (the ReLU
mask ``x > 0`` and the sigmoid output ``s``); the softmax cross-entropy is a
pair, its backward fed the student's own forward cache.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ...losses import CategoricalCrossentropy
from ...ops import activations
from .. import functional
from ..grading import (
    Check,
    assert_close,
    call,
    expect_array,
    expect_dtype,
    expect_tuple,
    gradient_check,
    linspace,
    random,
)


def _tolerances(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {}


# -- relu / sigmoid -------------------------------------------------------------------------------


def _away_from_zero(x):
    """Move entries off the ReLU kink, where finite differences are meaningless."""
    return np.where(np.abs(x) < 0.05, x + 0.1, x)


def _relu_case(impl, x, dout):
    _, mask = activations.relu_forward(x)
    dx = call(impl.relu_backward, dout, mask)
    if x.dtype == np.float32:
        expect_dtype(dx, np.float32, "dx")
    return assert_close(
        dx,
        activations.relu_backward(dout, mask),
        "dx",
        **_tolerances(x.dtype),
        shape_hint="dx has the shape of dout",
    )


def _relu_gradcheck(impl):
    x = _away_from_zero(random((2, 5, 3), seed=1))
    _, mask = activations.relu_forward(x)
    dout = random(x.shape, seed=2)
    dx = call(impl.relu_backward, dout, mask)
    return gradient_check("dx", dx, lambda _: activations.relu_forward(x)[0], x, dout)


def _relu_leaves_dout(impl):
    x, dout = random((3, 4), seed=3), random((3, 4), seed=4)
    _, mask = activations.relu_forward(x)
    call(impl.relu_backward, dout, mask)  # ``call`` fails if dout changed
    return "dout unchanged"


def _sigmoid_hints(dout, s):
    def hint(got, expected):
        sig_of_s = activations.sigmoid_forward(s)[0]
        if np.allclose(got, dout * sig_of_s * (1 - sig_of_s), rtol=1e-6, atol=1e-12):
            return (
                "the cache holds the sigmoid OUTPUT s = sigmoid(x), not x: the derivative is "
                "s * (1 - s) directly, without applying sigmoid again"
            )
        if np.allclose(got, s * (1 - s), rtol=1e-6, atol=1e-12):
            return "multiply by dout (chain rule): dx = dout * s * (1 - s)"
        return None

    return hint


def _sigmoid_case(impl, x, dout):
    _, s = activations.sigmoid_forward(x)
    dx = call(impl.sigmoid_backward, dout, s)
    if x.dtype == np.float32:
        expect_dtype(dx, np.float32, "dx")
    return assert_close(
        dx,
        activations.sigmoid_backward(dout, s),
        "dx",
        hints=[_sigmoid_hints(dout, s)],
        shape_hint="dx has the shape of dout",
        **_tolerances(x.dtype),
    )


def _sigmoid_gradcheck(impl):
    x = random((3, 4, 5), seed=5) * 2
    _, s = activations.sigmoid_forward(x)
    dout = random(x.shape, seed=6)
    dx = call(impl.sigmoid_backward, dout, s)
    return gradient_check("dx", dx, lambda _: activations.sigmoid_forward(x)[0], x, dout)


def relu_sigmoid_backward_checks():
    return [
        Check(
            "relu_backward, known answer: np.linspace x (3, 3, 3) (its middle entry is exactly 0)",
            partial(_relu_case, x=linspace((3, 3, 3)), dout=linspace((3, 3, 3), -0.5, 2.0)),
        ),
        Check("relu_backward, gradient check (float64): x (2, 5, 3)", _relu_gradcheck),
        Check("relu_backward leaves dout unchanged (no in-place masking)", _relu_leaves_dout),
        Check(
            "sigmoid_backward, known answer: np.linspace x (2, 3, 4) in [-4, 4]",
            partial(_sigmoid_case, x=linspace((2, 3, 4), -4.0, 4.0), dout=linspace((2, 3, 4), 1.0, -1.0)),
        ),
        Check("sigmoid_backward, gradient check (float64): x (3, 4, 5)", _sigmoid_gradcheck),
        Check(
            "float32 in, float32 out: relu_backward",
            partial(_relu_case, x=random((2, 3, 4), 7, np.float32), dout=random((2, 3, 4), 8, np.float32)),
        ),
        Check(
            "float32 in, float32 out: sigmoid_backward",
            partial(
                _sigmoid_case, x=random((2, 3, 4), 9, np.float32), dout=random((2, 3, 4), 10, np.float32)
            ),
        ),
    ]


# -- softmax cross-entropy ---------------------------------------------------------------------------


def _one_hot(labels, classes):
    return np.eye(classes)[labels]


def _targets(n, c, seed, smoothing=0.0):
    labels = np.random.default_rng(seed).integers(0, c, size=n)
    t = _one_hot(labels, c)
    return t * (1 - smoothing) + smoothing / c


_OVERFLOW_HINT = (
    "exp overflows for logits above ~709 in float64 (~88 in float32) and underflows to 0 "
    "far below: subtract each row's max before exp -- softmax(z) == softmax(z - max(z)) -- "
    "and compute log-softmax as (z - max) - log(sum(exp(z - max)))"
)


def _overflow_hint(got, expected):
    return None if np.all(np.isfinite(got)) else _OVERFLOW_HINT


def _sce_forward(impl, logits, y):
    return expect_tuple(
        call(impl.softmax_cross_entropy_forward, logits, y),
        2,
        "softmax_cross_entropy_forward",
        "(loss, cache)",
    )


def _sce_forward_case(impl, logits, y):
    loss, _ = _sce_forward(impl, logits, y)
    expected, _ = functional.softmax_cross_entropy_forward(logits, y)
    return assert_close(
        loss,
        expected,
        "loss",
        hints=[_overflow_hint],
        shape_hint="the loss is one number, the mean over the batch",
    )


def _mean_hint(n):
    def hint(got, expected):
        if np.allclose(got, expected * n, rtol=1e-6, atol=1e-12):
            return (
                f"the loss is the MEAN over the N = {n} samples, so its gradient carries a 1/N: divide by {n}"
            )
        return None

    return hint


def _sce_backward_case(impl, logits, y, dloss=1.0):
    _, cache = _sce_forward(impl, logits, y)
    dlogits = call(impl.softmax_cross_entropy_backward, dloss, cache)
    _, ref_cache = functional.softmax_cross_entropy_forward(logits, y)
    expected = functional.softmax_cross_entropy_backward(dloss, ref_cache)
    return assert_close(
        dlogits,
        expected,
        "dlogits",
        hints=[_mean_hint(logits.shape[0]), _overflow_hint],
        shape_hint="dlogits has the shape of logits, (N, C)",
    )


def _sce_gradcheck(impl):
    logits, y = random((4, 5), seed=3) * 2, _targets(4, 5, seed=4)
    loss, cache = _sce_forward(impl, logits, y)
    expect_array(loss, "loss", ())
    dloss = float(random((), seed=5))  # a random upstream gradient, not 1
    dlogits = call(impl.softmax_cross_entropy_backward, dloss, cache)
    return gradient_check(
        "dlogits",
        dlogits,
        lambda _: np.asarray(impl.softmax_cross_entropy_forward(logits, y)[0]),
        logits,
        np.asarray(dloss),
    )


def _sce_matches_keras_loss(impl):
    """numvgg's CategoricalCrossentropy(from_logits=True) is the float32 reference the model trains with."""
    logits = random((6, 5), seed=8, dtype=np.float32) * 3
    y = _targets(6, 5, seed=9).astype(np.float32)
    loss_e, grad_e = CategoricalCrossentropy(from_logits=True).value_and_grad(y, logits)
    loss, cache = _sce_forward(impl, logits, y)
    dlogits = call(impl.softmax_cross_entropy_backward, np.float32(1.0), cache)
    assert_close(
        loss, np.float32(loss_e), "loss vs CategoricalCrossentropy(from_logits=True)", rtol=1e-5, atol=1e-6
    )
    return assert_close(
        dlogits,
        grad_e,
        "dlogits vs CategoricalCrossentropy(from_logits=True)",
        rtol=1e-5,
        atol=1e-7,
        hints=[_mean_hint(6)],
    )


def _large_logits():
    base = linspace((4, 5), -3.0, 3.0)
    return base + np.array([[1000.0], [-1000.0], [500.0], [0.0]])  # rows far from 0: exp must not see them


def _wide_row_logits(dtype=np.float64):
    """Rows whose OWN entries lie far apart: shifting by the max keeps exp finite, but softmax of
    the smallest entry underflows to 0, so log(softmax(z - max)) is -inf and the loss NaN or inf."""
    spread = 800.0 if dtype == np.float64 else 110.0  # exp(-110) is 0 in float32 already
    return np.array([[0.0, -spread, 5.0], [1.0, 2.0, -spread], [-spread, 3.0, 0.5]], dtype=dtype)


_LOG_SOFTMAX_HINT = (
    "softmax of an entry far below its row's max is 0 in floating point, so "
    "log(softmax(z)) is -inf: compute log-softmax directly as "
    "(z - max) - log(sum(exp(z - max))), never as the log of a probability"
)


def _log_of_softmax_hint(got, expected):
    return None if np.all(np.isfinite(got)) else _LOG_SOFTMAX_HINT


def _sce_wide_rows(impl, dtype):
    logits = _wide_row_logits(dtype)
    y = _one_hot([1, 2, 0], 3).astype(dtype)  # the target is the far-below entry
    loss, _ = _sce_forward(impl, logits, y)
    expected, _ = functional.softmax_cross_entropy_forward(logits, y)
    tol = {"rtol": 1e-6, "atol": 1e-4} if dtype == np.float32 else {}
    return assert_close(
        loss,
        expected,
        "loss",
        hints=[_log_of_softmax_hint],
        **tol,
        shape_hint="the loss is one number, the mean over the batch",
    )


def softmax_cross_entropy_checks():
    return [
        Check(
            "forward, known answer: np.linspace logits (3, 4), one-hot targets",
            partial(_sce_forward_case, logits=linspace((3, 4), -2.0, 2.0), y=_one_hot([0, 3, 1], 4)),
        ),
        Check(
            "forward, random logits (5, 7), one-hot targets",
            partial(_sce_forward_case, logits=random((5, 7), seed=1) * 3, y=_targets(5, 7, seed=2)),
        ),
        Check(
            "forward, smoothed targets (label smoothing 0.1), logits (4, 6)",
            partial(
                _sce_forward_case, logits=random((4, 6), seed=3), y=_targets(4, 6, seed=4, smoothing=0.1)
            ),
        ),
        Check(
            "forward, large logits (+1000, -1000, 500): no overflow",
            partial(_sce_forward_case, logits=_large_logits(), y=_targets(4, 5, seed=6)),
        ),
        Check(
            "forward, entries far apart within a row: logits [[0, -800, 5], ...]: no log(0)",
            partial(_sce_wide_rows, dtype=np.float64),
        ),
        Check(
            "forward, float32 logits 110 apart within a row: no log(0)",
            partial(_sce_wide_rows, dtype=np.float32),
        ),
        Check(
            "backward, known answer: np.linspace logits (3, 4), one-hot targets",
            partial(_sce_backward_case, logits=linspace((3, 4), -2.0, 2.0), y=_one_hot([0, 3, 1], 4)),
        ),
        Check("backward, gradient check (float64) with a random dloss: logits (4, 5)", _sce_gradcheck),
        Check(
            "backward, random logits (5, 7), dloss 0.5",
            partial(
                _sce_backward_case, logits=random((5, 7), seed=1) * 3, y=_targets(5, 7, seed=2), dloss=0.5
            ),
        ),
        Check(
            "backward, large logits (+1000, -1000, 500): finite and right",
            partial(_sce_backward_case, logits=_large_logits(), y=_targets(4, 5, seed=6)),
        ),
        Check(
            "float32: matches numvgg.losses.CategoricalCrossentropy(from_logits=True).value_and_grad",
            _sce_matches_keras_loss,
        ),
    ]
