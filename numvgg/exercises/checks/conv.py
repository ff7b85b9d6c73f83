"""Checks for im2col, col2im, conv2d_forward and conv2d_backward.

Shapes are asymmetric (N != H != W != C, KH != KW, C != F) with odd sizes and
strides that do not divide the input, so a swapped axis or a dropped border
cannot pass by accident.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ...ops import conv
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

_OUTPUT_SIZE_RULE = (
    "the output size is OH = (Hp - KH) // sh + 1 on the padded input "
    "(for the layer: ceil(H / sh) with 'same', floor((H - KH) / sh) + 1 with 'valid'; "
    "conv_output_size computes it)"
)


def _geometry(hp, wp, kh, kw, strides):
    return (hp - kh) // strides[0] + 1, (wp - kw) // strides[1] + 1


# -- im2col ----------------------------------------------------------------------------


def _im2col_order_hint(got, expected):
    if got.ndim != 2:
        return None
    if np.array_equal(np.sort(got, axis=1), np.sort(expected, axis=1)):
        return (
            "each row holds the right numbers in the wrong order: flatten a patch in (kh, kw, c) "
            "order, so that it lines up with kernel.reshape(KH*KW*C, F)"
        )
    rows_got = got[np.lexsort(got.T[::-1])]
    rows_exp = expected[np.lexsort(expected.T[::-1])]
    if np.array_equal(rows_got, rows_exp):
        return (
            "the rows are right but in the wrong order: row n*OH*OW + i*OW + j must hold the patch "
            "of output pixel (n, i, j)"
        )
    return None


def _im2col_case(impl, x, kh, kw, strides):
    got = call(impl.im2col, x, kh, kw, strides)
    expected = conv.im2col(x, kh, kw, strides)
    # im2col only copies numbers, so the match must be exact.
    return assert_close(
        got,
        expected,
        "cols",
        rtol=0,
        atol=0,
        hints=[_im2col_order_hint],
        shape_hint=_OUTPUT_SIZE_RULE + "; cols has N*OH*OW rows and KH*KW*C columns",
    )


def _im2col_lines_up_with_kernel(impl):
    x, kernel, strides = random((2, 6, 5, 3), seed=3), random((3, 2, 3, 4), seed=4), (1, 2)
    oh, ow = _geometry(6, 5, 3, 2, strides)
    cols = expect_array(call(impl.im2col, x, 3, 2, strides), "cols", (2 * oh * ow, 3 * 2 * 3))
    out = (cols @ kernel.reshape(3 * 2 * 3, 4)).reshape(2, oh, ow, 4)  # (N, OH, OW, F)
    expected = conv.conv2d_forward_naive(x, kernel, None, strides, "valid")
    return assert_close(out, expected, "cols @ kernel.reshape(KH*KW*C, F) vs a loop convolution")


def _im2col_float32(impl):
    x = linspace((2, 5, 4, 3), dtype=np.float32)
    got = call(impl.im2col, x, 2, 3, (1, 1))
    expect_dtype(got, np.float32, "cols")
    return assert_close(got, conv.im2col(x, 2, 3, (1, 1)), "cols", rtol=0, atol=0)


def im2col_checks():
    return [
        Check(
            "known answer: np.linspace x (1, 4, 5, 2), 2x3 patches, strides (1, 1)",
            partial(_im2col_case, x=linspace((1, 4, 5, 2)), kh=2, kw=3, strides=(1, 1)),
        ),
        Check(
            "random x (2, 7, 5, 3), 3x2 patches, strides (2, 1)",
            partial(_im2col_case, x=random((2, 7, 5, 3), seed=1), kh=3, kw=2, strides=(2, 1)),
        ),
        Check(
            "random x (3, 6, 9, 4), 3x3 patches, strides (2, 3) (the last row/column is unused)",
            partial(_im2col_case, x=random((3, 6, 9, 4), seed=2), kh=3, kw=3, strides=(2, 3)),
        ),
        Check(
            "1x1 patches are a plain reshape, x (2, 3, 5, 4)",
            partial(_im2col_case, x=random((2, 3, 5, 4), seed=5), kh=1, kw=1, strides=(1, 1)),
        ),
        Check(
            "rows line up with the kernel: cols @ kernel.reshape(KH*KW*C, F) is the convolution",
            _im2col_lines_up_with_kernel,
        ),
        Check("float32 in, float32 out", _im2col_float32),
    ]


# -- col2im ----------------------------------------------------------------------------


def _coverage(padded_shape, kh, kw, strides):
    """How many patches cover each pixel (numvgg's col2im of all-ones rows)."""
    n, hp, wp, c = padded_shape
    oh, ow = _geometry(hp, wp, kh, kw, strides)
    return conv.col2im(np.ones((n * oh * ow, kh * kw * c)), padded_shape, kh, kw, strides)


def _overlap_hint(coverage):
    def hint(got, expected):
        single, multi = coverage == 1, coverage > 1
        if not multi.any() or not np.allclose(got[single], expected[single]):
            return None
        if np.allclose(got[multi], expected[multi]):
            return None
        return (
            "pixels covered by one patch are right, but pixels where patches OVERLAP are wrong: "
            "an overlapped pixel must receive the SUM of the values of every patch covering it. "
            "Accumulate with += (or np.add.at); an assignment with = keeps only the last patch"
        )

    return hint


def _gap_hint(coverage):
    def hint(got, expected):
        uncovered = coverage == 0
        if uncovered.any() and not np.allclose(got[uncovered], 0):
            return "pixels that no patch covers must be 0: start from np.zeros, not np.empty"
        return None

    return hint


def _col2im_case(impl, padded_shape, kh, kw, strides, cols):
    got = call(impl.col2im, cols, padded_shape, kh, kw, strides)
    expected = conv.col2im(cols, padded_shape, kh, kw, strides)
    coverage = _coverage(padded_shape, kh, kw, strides)
    return assert_close(
        got,
        expected,
        "image",
        hints=[_overlap_hint(coverage), _gap_hint(coverage)],
        shape_hint="col2im returns an array of padded_shape",
    )


def _col2im_cols(padded_shape, kh, kw, strides, fill):
    n, hp, wp, c = padded_shape
    oh, ow = _geometry(hp, wp, kh, kw, strides)
    shape = (n * oh * ow, kh * kw * c)
    if fill == "ones":
        return np.ones(shape)
    if fill == "linspace":
        return linspace(shape)
    return random(shape, seed=fill)


def _col2im_check(title, padded_shape, kh, kw, strides, fill):
    cols = _col2im_cols(padded_shape, kh, kw, strides, fill)
    return Check(
        title, partial(_col2im_case, padded_shape=padded_shape, kh=kh, kw=kw, strides=strides, cols=cols)
    )


def _col2im_adjoint(impl):
    """<im2col(x), cols> == <x, col2im(cols)> for every x and cols: col2im is im2col's transpose."""
    padded_shape, kh, kw, strides = (2, 6, 7, 3), 3, 2, (1, 2)
    x = random(padded_shape, seed=11)
    cols = _col2im_cols(padded_shape, kh, kw, strides, fill=12)
    back = expect_array(call(impl.col2im, cols, padded_shape, kh, kw, strides), "image", padded_shape)
    lhs = float(np.sum(conv.im2col(x, kh, kw, strides) * cols))
    rhs = float(np.sum(x * back))
    if not np.isclose(lhs, rhs, rtol=1e-9, atol=1e-9):
        raise CheckFailed(
            f"sum(im2col(x) * cols) = {lhs:.8g} but sum(x * col2im(cols)) = {rhs:.8g}: "
            f"col2im must be the adjoint (transpose) of im2col, sending each entry of "
            f"cols back to the pixel im2col copied it from, and adding"
        )
    return f"both sides {lhs:.6g}"


def _col2im_float32(impl):
    padded_shape, kh, kw, strides = (1, 5, 4, 2), 3, 2, (1, 1)
    cols = _col2im_cols(padded_shape, kh, kw, strides, fill="linspace").astype(np.float32)
    got = call(impl.col2im, cols, padded_shape, kh, kw, strides)
    expect_dtype(got, np.float32, "image")
    coverage = _coverage(padded_shape, kh, kw, strides)
    return assert_close(
        got,
        conv.col2im(cols, padded_shape, kh, kw, strides),
        "image",
        rtol=1e-6,
        atol=1e-6,
        hints=[_overlap_hint(coverage), _gap_hint(coverage)],
    )


def col2im_checks():
    return [
        _col2im_check(
            "known answer: np.linspace cols, padded shape (1, 4, 6, 2), 2x2 patches, strides "
            "(2, 2) (no overlap)",
            (1, 4, 6, 2),
            2,
            2,
            (2, 2),
            "linspace",
        ),
        _col2im_check(
            "overlapping patches: all-ones cols, padded shape (2, 5, 6, 3), 3x3 patches, "
            "strides (1, 1): each pixel counts the patches covering it",
            (2, 5, 6, 3),
            3,
            3,
            (1, 1),
            "ones",
        ),
        _col2im_check(
            "random cols, padded shape (2, 7, 6, 3), 3x2 patches, strides (2, 1)",
            (2, 7, 6, 3),
            3,
            2,
            (2, 1),
            1,
        ),
        _col2im_check(
            "gaps: padded shape (1, 7, 8, 2), 2x2 patches, strides (3, 3), uncovered pixels stay 0",
            (1, 7, 8, 2),
            2,
            2,
            (3, 3),
            2,
        ),
        Check("adjoint of im2col: sum(im2col(x) * cols) == sum(x * col2im(cols))", _col2im_adjoint),
        Check("float32 in, float32 out", _col2im_float32),
    ]


# -- conv2d_forward -----------------------------------------------------------------------------


def _conv_inputs(x_shape, ksize, filters, how, bias=True, dtype=np.float64):
    kernel_shape = (*ksize, x_shape[-1], filters)
    if how == "linspace":
        x, kernel, b = linspace(x_shape), linspace(kernel_shape, -0.5, 0.7), linspace((filters,), -0.3, 0.2)
    else:
        x, kernel, b = random(x_shape, how), random(kernel_shape, how + 1), random((filters,), how + 2)
    return x.astype(dtype), kernel.astype(dtype), (b.astype(dtype) if bias else None)


def _flipped_kernel_hint(x, kernel, bias, strides, padding):
    def hint(got, expected):
        flipped, _ = conv.conv2d_forward(x, kernel[::-1, ::-1], bias, strides, padding)
        if got.shape == flipped.shape and np.allclose(got, flipped, rtol=1e-7, atol=1e-10):
            return (
                "this is a true convolution with the kernel flipped; Keras' Conv2D (and numvgg) "
                "computes a cross-correlation: out[n, i, j, f] = sum(patch * kernel[:, :, :, f]) "
                "with the kernel as it is"
            )
        return None

    return hint


def _conv_forward_case(impl, x_shape, ksize, filters, strides, padding, how, bias=True, dtype=np.float64):
    x, kernel, b = _conv_inputs(x_shape, ksize, filters, how, bias, dtype)
    result = call(impl.conv2d_forward, x, kernel, b, strides, padding)
    out, _ = expect_tuple(result, 2, "conv2d_forward", "(out, cache)")
    expected, _ = conv.conv2d_forward(x, kernel, b, strides, padding)
    tolerances = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {}
    if dtype == np.float32:
        expect_dtype(out, np.float32, "out")
    return assert_close(
        out,
        expected,
        "out",
        hints=[_flipped_kernel_hint(x, kernel, b, strides, padding)],
        shape_hint="'same': OH = ceil(H / sh); 'valid': OH = floor((H - KH) / sh) + 1 "
        "(conv_output_size), F output channels",
        **tolerances,
    )


def _conv_forward_cache(impl):
    """numvgg's conv2d_backward must accept the cache: it is the contract the layer relies on."""
    x, kernel, b = _conv_inputs((2, 5, 6, 3), (3, 2), 4, how=21)
    strides, padding = (2, 1), "same"
    out, cache = expect_tuple(
        call(impl.conv2d_forward, x, kernel, b, strides, padding), 2, "conv2d_forward", "(out, cache)"
    )
    expected_out, expected_cache = conv.conv2d_forward(x, kernel, b, strides, padding)
    out = expect_array(out, "out", expected_out.shape)
    dout = random(expected_out.shape, seed=24)
    try:
        got = conv.conv2d_backward(dout, cache)
    except Exception as exc:  # the student's cache, not numvgg, is at fault
        raise CheckFailed(
            f"numvgg's conv2d_backward cannot use your cache ({type(exc).__name__}: {exc}); "
            f"return ConvCache(x, kernel, strides, pads) with pads = (top, bottom, left, "
            f"right) as conv_pads gives them"
        ) from None
    for name, g, e in zip(("dx", "dkernel", "dbias"), got, conv.conv2d_backward(dout, expected_cache)):
        assert_close(g, e, f"conv2d_backward(dout, your cache): {name}")
    return "conv2d_backward gives the same gradients with your cache"


def conv2d_forward_checks():
    return [
        Check(
            "known answer: np.linspace x (1, 4, 5, 2), kernel (3, 3, 2, 3), bias (3,), 'same', strides 1",
            partial(
                _conv_forward_case,
                x_shape=(1, 4, 5, 2),
                ksize=(3, 3),
                filters=3,
                strides=(1, 1),
                padding="same",
                how="linspace",
            ),
        ),
        Check(
            "random x (2, 7, 5, 3), kernel (3, 2, 3, 4), 'same', strides (2, 1)",
            partial(
                _conv_forward_case,
                x_shape=(2, 7, 5, 3),
                ksize=(3, 2),
                filters=4,
                strides=(2, 1),
                padding="same",
                how=1,
            ),
        ),
        Check(
            "random x (3, 9, 6, 2), kernel (3, 3, 2, 5), 'valid', strides (2, 2)",
            partial(
                _conv_forward_case,
                x_shape=(3, 9, 6, 2),
                ksize=(3, 3),
                filters=5,
                strides=(2, 2),
                padding="valid",
                how=4,
            ),
        ),
        Check(
            "even kernel (2, 2, 3, 4) with 'same' on x (2, 5, 6, 3): the odd padding pixel goes bottom/right",
            partial(
                _conv_forward_case,
                x_shape=(2, 5, 6, 3),
                ksize=(2, 2),
                filters=4,
                strides=(1, 1),
                padding="same",
                how=7,
            ),
        ),
        Check(
            "1x1 kernel (1, 1, 4, 3) without bias (bias=None), x (2, 3, 5, 4)",
            partial(
                _conv_forward_case,
                x_shape=(2, 3, 5, 4),
                ksize=(1, 1),
                filters=3,
                strides=(1, 1),
                padding="valid",
                how=10,
                bias=False,
            ),
        ),
        Check(
            "float32 in, float32 out: x (2, 6, 5, 3), kernel (3, 3, 3, 2), 'same'",
            partial(
                _conv_forward_case,
                x_shape=(2, 6, 5, 3),
                ksize=(3, 3),
                filters=2,
                strides=(1, 1),
                padding="same",
                how=13,
                dtype=np.float32,
            ),
        ),
        Check("the cache works with numvgg's conv2d_backward", _conv_forward_cache),
    ]


# -- conv2d_backward ----------------------------------------------------------------------------

_PAD_SLICE_HINT = (
    "dx must have x's shape (N, H, W, C): cut the padding off with explicit ends, "
    "dx_padded[:, top:top + H, left:left + W, :] -- a slice like [pad:-pad] is EMPTY when "
    "pad is 0 ('valid' padding)"
)


def _conv_backward_grads(impl, dout, cache, **flags):
    return expect_tuple(
        call(impl.conv2d_backward, dout, cache, **flags), 3, "conv2d_backward", "(dx, dkernel, dbias)"
    )


def _conv_backward_case(impl, x_shape, ksize, filters, strides, padding, how):
    x, kernel, b = _conv_inputs(x_shape, ksize, filters, how)
    out, cache = conv.conv2d_forward(x, kernel, b, strides, padding)
    dout = linspace(out.shape, -1.0, 0.5) if how == "linspace" else random(out.shape, seed=99)
    got = _conv_backward_grads(impl, dout, cache)
    expected = conv.conv2d_backward(dout, cache)
    details = []
    for name, g, e in zip(("dx", "dkernel", "dbias"), got, expected):
        hint = _PAD_SLICE_HINT if name == "dx" else f"{name} has the shape of {name[1:]}"
        details.append(f"{name} " + assert_close(g, e, name, shape_hint=hint))
    return ", ".join(details)


def _conv_backward_gradcheck(impl, x_shape, ksize, filters, strides, padding, seed):
    x, kernel, b = _conv_inputs(x_shape, ksize, filters, seed)
    out, cache = conv.conv2d_forward(x, kernel, b, strides, padding)
    dout = random(out.shape, seed=seed + 50)
    dx, dkernel, dbias = _conv_backward_grads(impl, dout, cache)

    def forward(_):  # reads x, kernel, b, which the gradient check nudges in place
        return conv.conv2d_forward(x, kernel, b, strides, padding)[0]

    if isinstance(dx, np.ndarray) and dx.shape != x.shape:
        raise CheckFailed(
            f"dx: shape expected {shape_text(x.shape)}, got {shape_text(dx.shape)} -- {_PAD_SLICE_HINT}"
        )
    return ", ".join(
        [
            gradient_check("dx", dx, forward, x, dout),
            gradient_check("dkernel", dkernel, forward, kernel, dout),
            gradient_check("dbias", dbias, forward, b, dout),
        ]
    )


def _conv_backward_flags(impl):
    x, kernel, b = _conv_inputs((2, 5, 4, 3), (3, 3), 2, how=31)
    out, cache = conv.conv2d_forward(x, kernel, b, (1, 1), "same")
    dout = random(out.shape, seed=32)
    dx_e, dk_e, db_e = conv.conv2d_backward(dout, cache)
    dx, dk, db = _conv_backward_grads(impl, dout, cache, need_input_grad=False)
    if dx is not None:
        raise CheckFailed(
            "with need_input_grad=False, dx must be None (the first layer of a network skips that work)"
        )
    assert_close(dk, dk_e, "dkernel (need_input_grad=False)")
    assert_close(db, db_e, "dbias (need_input_grad=False)")
    dx, dk, db = _conv_backward_grads(impl, dout, cache, need_weight_grads=False)
    if dk is not None or db is not None:
        raise CheckFailed(
            "with need_weight_grads=False, dkernel and dbias must be None (a frozen layer skips that work)"
        )
    assert_close(dx, dx_e, "dx (need_weight_grads=False)")
    return "None where not asked"


def _conv_backward_float32(impl):
    x, kernel, b = _conv_inputs((2, 5, 6, 3), (3, 3), 4, how=41, dtype=np.float32)
    out, cache = conv.conv2d_forward(x, kernel, b, (1, 1), "same")
    dout = random(out.shape, seed=42, dtype=np.float32)
    got = _conv_backward_grads(impl, dout, cache)
    for name, g, e in zip(("dx", "dkernel", "dbias"), got, conv.conv2d_backward(dout, cache)):
        expect_dtype(g, np.float32, name)
        assert_close(g, e, name, rtol=1e-5, atol=1e-4)
    return "dx, dkernel, dbias are float32"


def conv2d_backward_checks():
    return [
        Check(
            "known answer: np.linspace x (1, 4, 5, 2), kernel (3, 3, 2, 3), dout, 'same', strides 1",
            partial(
                _conv_backward_case,
                x_shape=(1, 4, 5, 2),
                ksize=(3, 3),
                filters=3,
                strides=(1, 1),
                padding="same",
                how="linspace",
            ),
        ),
        Check(
            "gradient check (float64): x (2, 5, 7, 3), kernel (3, 3, 3, 4), 'same', strides 1",
            partial(
                _conv_backward_gradcheck,
                x_shape=(2, 5, 7, 3),
                ksize=(3, 3),
                filters=4,
                strides=(1, 1),
                padding="same",
                seed=1,
            ),
        ),
        Check(
            "gradient check (float64): x (2, 7, 6, 3), kernel (3, 2, 3, 2), 'valid' (no padding), "
            "strides (2, 2)",
            partial(
                _conv_backward_gradcheck,
                x_shape=(2, 7, 6, 3),
                ksize=(3, 2),
                filters=2,
                strides=(2, 2),
                padding="valid",
                seed=4,
            ),
        ),
        # pads (1, 2, 0, 1): top != bottom and left != right, so cropping the same amount from both
        # sides, or the top pad from the bottom, gives the wrong shape or the wrong pixels.
        Check(
            "random x (3, 7, 8, 2), kernel (4, 3, 2, 5), 'same' (uneven padding: top 1, bottom 2, "
            "left 0, right 1), strides (2, 3)",
            partial(
                _conv_backward_case,
                x_shape=(3, 7, 8, 2),
                ksize=(4, 3),
                filters=5,
                strides=(2, 3),
                padding="same",
                how=7,
            ),
        ),
        Check(
            "random x (2, 6, 5, 4), kernel (2, 2, 4, 3), 'valid', strides (1, 1)",
            partial(
                _conv_backward_case,
                x_shape=(2, 6, 5, 4),
                ksize=(2, 2),
                filters=3,
                strides=(1, 1),
                padding="valid",
                how=10,
            ),
        ),
        Check(
            "need_input_grad=False / need_weight_grads=False return None for what is not asked",
            _conv_backward_flags,
        ),
        Check("float32 in, float32 out", _conv_backward_float32),
    ]
