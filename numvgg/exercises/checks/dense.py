"""Checks for the fully connected layer (dense_forward / dense_backward).

The student's backward gets the cache of the student's own forward.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ...ops import dense
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
)


def _inputs(x_shape, d_out, how, bias=True, dtype=np.float64):
    d_in = x_shape[-1]
    if how == "linspace":
        x, kernel, b = linspace(x_shape), linspace((d_in, d_out), -0.6, 0.8), linspace((d_out,), -0.2, 0.3)
    else:
        x, kernel, b = random(x_shape, how), random((d_in, d_out), how + 1), random((d_out,), how + 2)
    return x.astype(dtype), kernel.astype(dtype), (b.astype(dtype) if bias else None)


def _forward(impl, x, kernel, b):
    return expect_tuple(call(impl.dense_forward, x, kernel, b), 2, "dense_forward", "(out, cache)")


def _tolerances(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {}


def _forward_case(impl, x_shape, d_out, how, bias=True, dtype=np.float64):
    x, kernel, b = _inputs(x_shape, d_out, how, bias, dtype)
    out, _ = _forward(impl, x, kernel, b)
    expected, _ = dense.dense_forward(x, kernel, b)
    if dtype == np.float32:
        expect_dtype(out, np.float32, "out")
    return assert_close(
        out, expected, "out", shape_hint="out = x @ kernel + bias has shape (N, D_out)", **_tolerances(dtype)
    )


def _batch_sum_hint(n):
    def hint(got, expected):
        if got.ndim == 1 and np.allclose(got * n, expected, rtol=1e-6):
            return f"dbias is the SUM of dout over the batch (each of the {n} samples adds its share), not the mean"
        return None

    return hint


_SHAPE_HINTS = {
    "dx": "dx has the shape of x: dout @ kernel.T",
    "dkernel": "dkernel has the kernel's shape (D_in, D_out): x.T @ dout (for 3-D x, reshape x and dout to 2-D first)",
    "dbias": "dbias has shape (D_out,): dout summed over every axis but the last",
}


def _backward(impl, dout, cache, **flags):
    return expect_tuple(
        call(impl.dense_backward, dout, cache, **flags), 3, "dense_backward", "(dx, dkernel, dbias)"
    )


def _backward_case(impl, x_shape, d_out, how, dtype=np.float64):
    x, kernel, b = _inputs(x_shape, d_out, how, dtype=dtype)
    _, cache = _forward(impl, x, kernel, b)
    expected_out, ref_cache = dense.dense_forward(x, kernel, b)
    dout = (
        linspace(expected_out.shape, -1.0, 0.4) if how == "linspace" else random(expected_out.shape, seed=77)
    ).astype(dtype)
    got = _backward(impl, dout, cache)
    n = int(np.prod(x_shape[:-1]))
    details = []
    for name, g, e in zip(("dx", "dkernel", "dbias"), got, dense.dense_backward(dout, ref_cache)):
        if dtype == np.float32:
            expect_dtype(g, np.float32, name)
        hints = [_batch_sum_hint(n)] if name == "dbias" else []
        details.append(
            f"{name} "
            + assert_close(g, e, name, hints=hints, shape_hint=_SHAPE_HINTS[name], **_tolerances(dtype))
        )
    return ", ".join(details)


def _gradcheck(impl, x_shape, d_out, seed):
    x, kernel, b = _inputs(x_shape, d_out, seed)
    out, cache = _forward(impl, x, kernel, b)
    out = expect_array(out, "out", (*x_shape[:-1], d_out))
    dout = random(out.shape, seed=seed + 10)
    dx, dkernel, dbias = _backward(impl, dout, cache)

    def forward(_):  # reads x, kernel, b, which the gradient check nudges in place
        return impl.dense_forward(x, kernel, b)[0]

    return ", ".join(
        [
            gradient_check("dx", dx, forward, x, dout),
            gradient_check("dkernel", dkernel, forward, kernel, dout),
            gradient_check("dbias", dbias, forward, b, dout),
        ]
    )


def _flags(impl):
    x, kernel, b = _inputs((4, 6), 3, 21)
    _, cache = _forward(impl, x, kernel, b)
    dout = random((4, 3), seed=22)
    dx_e, dk_e, db_e = dense.dense_backward(dout, dense.dense_forward(x, kernel, b)[1])
    dx, dk, db = _backward(impl, dout, cache, need_input_grad=False)
    if dx is not None:
        raise CheckFailed(
            "with need_input_grad=False, dx must be None (the first layer of a network skips that work)"
        )
    assert_close(dk, dk_e, "dkernel (need_input_grad=False)")
    assert_close(db, db_e, "dbias (need_input_grad=False)")
    dx, dk, db = _backward(impl, dout, cache, need_weight_grads=False)
    if dk is not None or db is not None:
        raise CheckFailed(
            "with need_weight_grads=False, dkernel and dbias must be None (a frozen layer skips that work)"
        )
    assert_close(dx, dx_e, "dx (need_weight_grads=False)")
    return "None where not asked"


def dense_checks():
    return [
        Check(
            "forward, known answer: np.linspace x (3, 5), kernel (5, 4), bias (4,)",
            partial(_forward_case, x_shape=(3, 5), d_out=4, how="linspace"),
        ),
        Check(
            "forward, random x (4, 7), kernel (7, 3), bias=None",
            partial(_forward_case, x_shape=(4, 7), d_out=3, how=1, bias=False),
        ),
        Check(
            "forward, 3-D x (2, 3, 5) (a Dense on a sequence), kernel (5, 4)",
            partial(_forward_case, x_shape=(2, 3, 5), d_out=4, how=4),
        ),
        Check(
            "backward, known answer: np.linspace x (3, 5), kernel (5, 4), dout (3, 4)",
            partial(_backward_case, x_shape=(3, 5), d_out=4, how="linspace"),
        ),
        Check(
            "backward, gradient check (float64): x (4, 7), kernel (7, 3)",
            partial(_gradcheck, x_shape=(4, 7), d_out=3, seed=7),
        ),
        Check(
            "backward, random x (5, 2), kernel (2, 6)",
            partial(_backward_case, x_shape=(5, 2), d_out=6, how=11),
        ),
        Check(
            "backward, 3-D x (2, 3, 5), kernel (5, 4)",
            partial(_backward_case, x_shape=(2, 3, 5), d_out=4, how=14),
        ),
        Check("need_input_grad=False / need_weight_grads=False return None for what is not asked", _flags),
        Check(
            "float32 in, float32 out: forward",
            partial(_forward_case, x_shape=(3, 6), d_out=2, how=17, dtype=np.float32),
        ),
        Check(
            "float32 in, float32 out: backward",
            partial(_backward_case, x_shape=(3, 6), d_out=2, how=17, dtype=np.float32),
        ),
    ]
