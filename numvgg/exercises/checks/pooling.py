"""Checks for max-pooling (forward and backward) and global average pooling.

Both exercises hand out a pair: the student's backward is fed the cache of the
student's own forward, so the cache's contents are the student's design; what
is compared is ``out`` and ``dx``.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ...ops import pooling
from ..grading import (
    Check,
    CheckFailed,
    assert_close,
    call,
    expect_array,
    expect_dtype,
    expect_tuple,
    gradient_check,
    linspace,
    random,
    shape_text,
)

# -- max-pooling ----------------------------------------------------------------------------------


def _maxpool_forward(impl, x, pool_size, strides, padding):
    out, cache = expect_tuple(
        call(impl.maxpool2d_forward, x, pool_size, strides, padding), 2, "maxpool2d_forward", "(out, cache)"
    )
    return out, cache


def _zero_padding_hint(got, expected):
    if np.any(expected < 0) and np.any((got == 0) & (expected < 0)):
        return (
            "outputs are 0 where every input of the window is negative: with 'same' the padding "
            "must never win the max -- pad with -inf, not with zeros"
        )
    return None


def _maxpool_forward_case(impl, x, pool_size, strides, padding):
    out, _ = _maxpool_forward(impl, x, pool_size, strides, padding)
    expected, _ = pooling.maxpool2d_forward(x, pool_size, strides, padding)
    return assert_close(
        out,
        expected,
        "out",
        rtol=0,
        atol=0,
        hints=[_zero_padding_hint],
        shape_hint="'valid': OH = floor((H - PH) / sh) + 1 (a 7-high map gives 3 with 2x2); "
        "'same': OH = ceil(H / sh); strides default to pool_size",
    )


def _maxpool_backward_case(impl, x, pool_size, strides, padding, dout_seed, hints=()):
    out, cache = _maxpool_forward(impl, x, pool_size, strides, padding)
    expected_out, ref_cache = pooling.maxpool2d_forward(x, pool_size, strides, padding)
    out = expect_array(out, "out", expected_out.shape)
    dout = random(expected_out.shape, seed=dout_seed, dtype=x.dtype)
    dx = call(impl.maxpool2d_backward, dout, cache)
    expected = pooling.maxpool2d_backward(dout, ref_cache)
    if x.dtype == np.float32:
        expect_dtype(dx, np.float32, "dx")
    return assert_close(dx, expected, "dx", hints=hints, shape_hint="dx has the shape of x")


def _maxpool_gradcheck(impl, x_shape, pool_size, strides, padding, seed):
    x = random(x_shape, seed=seed)
    out, cache = _maxpool_forward(impl, x, pool_size, strides, padding)
    out = expect_array(out, "out")
    dout = random(out.shape, seed=seed + 1)
    dx = call(impl.maxpool2d_backward, dout, cache)

    def forward(_):  # reads x, which the gradient check nudges in place
        return impl.maxpool2d_forward(x, pool_size, strides, padding)[0]

    return gradient_check("dx", dx, forward, x, dout)


def _tie_hint(x, pool_size, strides):
    """Explain a tie failure: several tied maxima got gradient (split or copied)."""

    def hint(got, expected):
        wrong = ~np.isclose(got, expected, rtol=1e-7, atol=1e-10)
        receivers_got, receivers_exp = np.count_nonzero(got), np.count_nonzero(expected)
        if wrong.any() and receivers_got > receivers_exp:
            splits = np.isclose(got.sum(), expected.sum(), rtol=1e-7, atol=1e-9)
            how = "you split it between them" if splits else "several of them received it"
            return (
                f"these windows hold equal maxima (ties): {how}. The whole gradient of a window "
                f"must go to ONE input, the FIRST maximum in row-major order (what np.argmax "
                f"returns), as TensorFlow does -- remember its index in the forward cache"
            )
        if wrong.any():
            return (
                "these windows hold equal maxima (ties): the gradient must go to the FIRST maximum "
                "in row-major order (np.argmax), not the last"
            )
        return None

    return hint


def _tie_inputs(kind):
    if kind == "constant":
        # Every 2x2 window holds four equal numbers.
        base = linspace((2, 2, 3, 3))
        return np.repeat(np.repeat(base, 2, axis=1), 2, axis=2)  # (2, 4, 6, 3)
    # 0/1 values: ties everywhere, the first maximum in all positions of the window.
    return np.random.default_rng(5).integers(0, 2, size=(2, 6, 4, 3)).astype(np.float64)


def _maxpool_ties(impl, kind):
    x = _tie_inputs(kind)
    return _maxpool_backward_case(
        impl, x, (2, 2), None, "valid", dout_seed=17, hints=[_tie_hint(x, (2, 2), None)]
    )


def maxpool2d_checks():
    x_neg = -np.abs(random((2, 6, 5, 3), seed=3)) - 0.1
    return [
        Check(
            "forward, known answer: np.linspace x (1, 4, 6, 2), 2x2 pool",
            partial(
                _maxpool_forward_case,
                x=linspace((1, 4, 6, 2)),
                pool_size=(2, 2),
                strides=None,
                padding="valid",
            ),
        ),
        Check(
            "forward, random x (2, 7, 5, 3), 2x2 pool, 'valid' (odd sizes floor)",
            partial(
                _maxpool_forward_case,
                x=random((2, 7, 5, 3), seed=1),
                pool_size=(2, 2),
                strides=None,
                padding="valid",
            ),
        ),
        Check(
            "forward, overlapping windows: x (2, 6, 7, 3), 3x3 pool, strides (1, 2)",
            partial(
                _maxpool_forward_case,
                x=random((2, 6, 7, 3), seed=2),
                pool_size=(3, 3),
                strides=(1, 2),
                padding="valid",
            ),
        ),
        Check(
            "forward, 'same' padding on all-negative x (2, 6, 5, 3), 3x3 pool, strides (2, 2)",
            partial(_maxpool_forward_case, x=x_neg, pool_size=(3, 3), strides=(2, 2), padding="same"),
        ),
        Check(
            "backward, gradient check (float64): x (2, 5, 7, 3), 2x2 pool",
            partial(
                _maxpool_gradcheck,
                x_shape=(2, 5, 7, 3),
                pool_size=(2, 2),
                strides=None,
                padding="valid",
                seed=4,
            ),
        ),
        Check(
            "backward, gradient check (float64): x (2, 6, 5, 3), 3x3 pool, strides (2, 2), 'same'",
            partial(
                _maxpool_gradcheck,
                x_shape=(2, 6, 5, 3),
                pool_size=(3, 3),
                strides=(2, 2),
                padding="same",
                seed=6,
            ),
        ),
        Check(
            "backward, overlapping windows add up: x (2, 7, 5, 3), 3x3 pool, strides (2, 2)",
            partial(
                _maxpool_backward_case,
                x=random((2, 7, 5, 3), seed=8),
                pool_size=(3, 3),
                strides=(2, 2),
                padding="valid",
                dout_seed=9,
            ),
        ),
        Check(
            "backward, ties: windows of four equal numbers, x (2, 4, 6, 3)",
            partial(_maxpool_ties, kind="constant"),
        ),
        Check(
            "backward, ties anywhere in the window: 0/1 inputs, x (2, 6, 4, 3)",
            partial(_maxpool_ties, kind="binary"),
        ),
        Check(
            "float32 in, float32 out: x (2, 5, 6, 3), 2x2 pool",
            partial(
                _maxpool_backward_case,
                x=random((2, 5, 6, 3), seed=10, dtype=np.float32),
                pool_size=(2, 2),
                strides=None,
                padding="valid",
                dout_seed=11,
            ),
        ),
    ]


# -- global average pooling ------------------------------------------------------------------------------


def _gap_forward(impl, x):
    return expect_tuple(
        call(impl.global_average_pooling2d_forward, x), 2, "global_average_pooling2d_forward", "(out, cache)"
    )


def _gap_forward_case(impl, x):
    out, _ = _gap_forward(impl, x)
    expected, _ = pooling.global_average_pooling2d_forward(x)
    if x.dtype == np.float32:
        expect_dtype(out, np.float32, "out")
    return assert_close(
        out,
        expected,
        "out",
        **_tolerances(x),
        shape_hint="the mean is over H and W (axes 1 and 2): (N, H, W, C) -> (N, C)",
    )


def _tolerances(x):
    return {"rtol": 1e-5, "atol": 1e-6} if x.dtype == np.float32 else {}


def _hw_hint(x_shape):
    hw = x_shape[1] * x_shape[2]

    def hint(got, expected):
        mask = np.abs(expected) > 1e-12
        if mask.any() and np.allclose(got[mask], expected[mask] * hw, rtol=1e-6):
            return (
                f"the output is a MEAN of H*W = {hw} inputs, so each input gets dout / (H*W): divide by {hw}"
            )
        return None

    return hint


def _gap_backward_case(impl, x, dout):
    _, cache = _gap_forward(impl, x)
    dx = call(impl.global_average_pooling2d_backward, dout, cache)
    expected = pooling.global_average_pooling2d_backward(dout, x.shape)
    if x.dtype == np.float32:
        expect_dtype(dx, np.float32, "dx")
    return assert_close(
        dx,
        expected,
        "dx",
        hints=[_hw_hint(x.shape)],
        **_tolerances(x),
        shape_hint="dx has the shape of x, (N, H, W, C)",
    )


def _gap_gradcheck(impl, x_shape, seed):
    x = random(x_shape, seed=seed)
    out, cache = _gap_forward(impl, x)
    out = expect_array(out, "out", (x_shape[0], x_shape[3]))
    dout = random(out.shape, seed=seed + 1)
    dx = call(impl.global_average_pooling2d_backward, dout, cache)
    if isinstance(dx, np.ndarray) and dx.shape != x.shape:
        raise CheckFailed(f"dx: shape expected {shape_text(x.shape)}, got {shape_text(dx.shape)}")

    def forward(_):
        return impl.global_average_pooling2d_forward(x)[0]

    return gradient_check("dx", dx, forward, x, dout)


def global_average_pooling_checks():
    return [
        Check(
            "forward, known answer: np.linspace x (2, 3, 5, 4)",
            partial(_gap_forward_case, x=linspace((2, 3, 5, 4))),
        ),
        Check("forward, random x (3, 7, 5, 2)", partial(_gap_forward_case, x=random((3, 7, 5, 2), seed=1))),
        Check(
            "backward, known answer: np.linspace x (2, 3, 5, 4) and dout (2, 4)",
            partial(_gap_backward_case, x=linspace((2, 3, 5, 4)), dout=linspace((2, 4), -2.0, 1.0)),
        ),
        Check(
            "backward, random x (3, 7, 5, 2)",
            partial(_gap_backward_case, x=random((3, 7, 5, 2), seed=2), dout=random((3, 2), seed=3)),
        ),
        Check(
            "backward, gradient check (float64): x (2, 5, 3, 4)",
            partial(_gap_gradcheck, x_shape=(2, 5, 3, 4), seed=4),
        ),
        Check(
            "float32 in, float32 out: forward",
            partial(_gap_forward_case, x=random((2, 4, 3, 5), seed=6, dtype=np.float32)),
        ),
        Check(
            "float32 in, float32 out: backward",
            partial(
                _gap_backward_case,
                x=random((2, 4, 3, 5), seed=6, dtype=np.float32),
                dout=random((2, 5), seed=7, dtype=np.float32),
            ),
        ),
    ]
