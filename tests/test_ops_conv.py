"""numvgg.ops.conv: im2col / col2im, the fast convolution and its naive twin.

Shapes are small and asymmetric (N != H != W != C, C_in != C_out) so a
swapped axis cannot pass by accident; gradient checks are float64 with a
random upstream gradient.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from numvgg.debug.gradcheck import check_op, rel_error
from numvgg.ops import conv as conv_ops
from numvgg.ops.conv import (
    col2im,
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_forward,
    conv2d_forward_naive,
    conv_output_size,
    im2col,
    pad_input,
    same_pads,
)

# (input shape NHWC, kernel (KH, KW), filters, strides, padding)
CONFIGS = [
    ((2, 5, 7, 3), (3, 3), 4, (1, 1), "same"),
    ((2, 5, 7, 3), (3, 3), 4, (1, 1), "valid"),
    ((2, 5, 7, 3), (3, 3), 4, (2, 2), "same"),
    ((2, 7, 6, 3), (3, 3), 4, (2, 2), "valid"),
    ((3, 5, 6, 2), (1, 2), 5, (1, 1), "same"),
    ((3, 5, 6, 2), (1, 2), 5, (2, 2), "same"),
    ((3, 5, 6, 2), (1, 2), 5, (2, 1), "valid"),
]
IDS = [f"{'x'.join(map(str, s))}-k{k[0]}x{k[1]}-s{st_[0]}{st_[1]}-{p}" for s, k, _, st_, p in CONFIGS]


def _random_conv(rng, x_shape, ksize, filters, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = rng.standard_normal((*ksize, x_shape[-1], filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    return x, kernel, bias


# -- gradient checks -------------------------------------------------------------


@pytest.mark.parametrize("x_shape, ksize, filters, strides, padding", CONFIGS, ids=IDS)
def test_conv2d_gradcheck(x_shape, ksize, filters, strides, padding, rng):
    x, kernel, bias = _random_conv(rng, x_shape, ksize, filters)
    errors = check_op(
        conv2d_forward,
        conv2d_backward,
        x,
        kernel,
        bias,
        seed=7,
        names=("x", "kernel", "bias"),
        strides=strides,
        padding=padding,
    )
    assert set(errors) == {"x", "kernel", "bias"}
    for name, err in errors.items():
        assert err < 1e-6, f"d{name}: relative error {err:.2e}"


def test_conv2d_without_bias_gradcheck(rng):
    x, kernel, _ = _random_conv(rng, (2, 5, 4, 3), (3, 3), 2)
    errors = check_op(
        conv2d_forward,
        conv2d_backward,
        x,
        kernel,
        None,
        names=("x", "kernel", "bias"),
        strides=(1, 1),
        padding="same",
    )
    assert set(errors) == {"x", "kernel"}
    assert max(errors.values()) < 1e-6, errors
    out, _ = conv2d_forward(x, kernel, None, padding="same")
    np.testing.assert_allclose(out, conv2d_forward_naive(x, kernel, None, padding="same"), atol=1e-12)


# -- fast vs naive -----------------------------------------------------------------


@pytest.mark.parametrize("x_shape, ksize, filters, strides, padding", CONFIGS, ids=IDS)
def test_fast_matches_naive(x_shape, ksize, filters, strides, padding, rng):
    x, kernel, bias = _random_conv(rng, x_shape, ksize, filters)
    out, cache = conv2d_forward(x, kernel, bias, strides, padding)
    expected = conv2d_forward_naive(x, kernel, bias, strides, padding)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)

    dout = rng.standard_normal(out.shape)
    dx, dk, db = conv2d_backward(dout, cache)
    ndx, ndk, ndb = conv2d_backward_naive(dout, x, kernel, strides, padding)
    for name, fast, naive in (("dx", dx, ndx), ("dkernel", dk, ndk), ("dbias", db, ndb)):
        assert fast.shape == naive.shape, name
        np.testing.assert_allclose(fast, naive, rtol=1e-10, atol=1e-12, err_msg=name)


def test_batch_chunking_gives_same_result(rng, monkeypatch):
    """Forward/backward split big batches into chunks; force one image per chunk."""
    x, kernel, bias = _random_conv(rng, (5, 6, 5, 3), (3, 3), 4)
    out_whole, cache = conv2d_forward(x, kernel, bias, (1, 1), "same")
    dout = rng.standard_normal(out_whole.shape)
    grads_whole = conv2d_backward(dout, cache)

    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", 1)
    assert len(list(conv_ops._batch_chunks(5, 100))) == 5
    out_chunked, cache = conv2d_forward(x, kernel, bias, (1, 1), "same")
    grads_chunked = conv2d_backward(dout, cache)
    np.testing.assert_allclose(out_chunked, out_whole, rtol=1e-12)
    for whole, chunked in zip(grads_whole, grads_chunked):
        np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)


def test_backward_skips_what_is_not_asked_for(rng):
    x, kernel, bias = _random_conv(rng, (2, 4, 5, 3), (3, 3), 2)
    out, cache = conv2d_forward(x, kernel, bias, (1, 1), "same")
    dout = rng.standard_normal(out.shape)
    dx_all, dk_all, db_all = conv2d_backward(dout, cache)

    dx, dk, db = conv2d_backward(dout, cache, need_input_grad=False)
    assert dx is None
    np.testing.assert_array_equal(dk, dk_all)
    np.testing.assert_array_equal(db, db_all)

    dx, dk, db = conv2d_backward(dout, cache, need_weight_grads=False)
    assert dk is None and db is None
    np.testing.assert_array_equal(dx, dx_all)


def test_backward_does_not_modify_dout_or_input(rng):
    x, kernel, bias = _random_conv(rng, (2, 4, 5, 3), (3, 3), 2)
    x_before, k_before = x.copy(), kernel.copy()
    out, cache = conv2d_forward(x, kernel, bias, (2, 2), "same")
    dout = rng.standard_normal(out.shape)
    dout_before = dout.copy()
    conv2d_backward(dout, cache)
    np.testing.assert_array_equal(dout, dout_before)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(kernel, k_before)


def test_float32_in_float32_out(rng):
    x, kernel, bias = _random_conv(rng, (1, 5, 5, 2), (3, 3), 3, dtype=np.float32)
    out, cache = conv2d_forward(x, kernel, bias, (1, 1), "same")
    assert out.dtype == np.float32
    dx, dk, db = conv2d_backward(np.ones_like(out), cache)
    assert dx.dtype == dk.dtype == db.dtype == np.float32


# -- im2col / col2im ---------------------------------------------------------------


@pytest.mark.parametrize(
    "padded_shape, kh, kw, strides",
    [
        ((2, 7, 6, 3), 3, 3, (1, 1)),  # overlapping patches
        ((2, 7, 6, 3), 3, 3, (2, 2)),
        ((2, 6, 8, 3), 2, 2, (2, 2)),  # tiling, no overlap
        ((3, 5, 7, 2), 1, 2, (1, 1)),
        ((3, 5, 7, 2), 1, 2, (2, 1)),
        ((1, 8, 5, 4), 3, 2, (3, 2)),  # stride leaves pixels unused
    ],
)
def test_col2im_is_the_adjoint_of_im2col(padded_shape, kh, kw, strides, rng):
    """<im2col(x), y> == <x, col2im(y)> for all x, y: col2im is im2col transposed."""
    x = rng.standard_normal(padded_shape)
    cols = im2col(x, kh, kw, strides)
    y = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * y)
    rhs = np.sum(x * col2im(y, padded_shape, kh, kw, strides))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), (lhs, rhs)


def test_im2col_rows_are_patches_in_kh_kw_c_order():
    x = np.arange(2 * 4 * 5 * 3, dtype=np.float64).reshape(2, 4, 5, 3)
    cols = im2col(x, 2, 3, (2, 1))  # OH = 2, OW = 3
    assert cols.shape == (2 * 2 * 3, 2 * 3 * 3)
    # Row (n=1, i=1, j=2): the patch with top-left corner (2, 2) of image 1.
    np.testing.assert_array_equal(cols[1 * 6 + 1 * 3 + 2], x[1, 2:4, 2:5, :].ravel())


def test_col2im_adds_overlapping_patches():
    # A 3x3 image, 2x2 patches at stride 1: the centre pixel is in all four.
    ones = np.ones((4, 4))  # (N*OH*OW, KH*KW*C)
    img = col2im(ones, (1, 3, 3, 1), 2, 2, (1, 1))[0, :, :, 0]
    np.testing.assert_array_equal(img, [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_pad_input_uses_explicit_ends():
    x = np.ones((1, 2, 3, 1))
    assert pad_input(x, (0, 0, 0, 0)) is x
    xp = pad_input(x, (0, 1, 2, 0))  # top 0: x[:, 0:-0] would be empty
    assert xp.shape == (1, 3, 5, 1)
    np.testing.assert_array_equal(xp[0, :, :, 0], [[0, 0, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]])


# -- output sizes and 'same' padding -------------------------------------------------


@pytest.mark.parametrize(
    "size, k, stride, padding, expected",
    [
        (7, 3, 1, "valid", 5),
        (7, 3, 2, "valid", 3),
        (8, 3, 2, "valid", 3),
        (4, 3, 3, "valid", 1),
        (7, 3, 1, "same", 7),
        (7, 3, 2, "same", 4),
        (8, 2, 2, "same", 4),
        (5, 1, 2, "same", 3),
        (2, 3, 1, "valid", 0),
    ],
)
def test_conv_output_size(size, k, stride, padding, expected):
    assert conv_output_size(size, k, stride, padding) == expected


@pytest.mark.parametrize(
    "size, k, stride, expected",
    [
        (4, 3, 2, (0, 1)),  # odd total padding: the extra pixel goes after (TF rule)
        (6, 2, 1, (0, 1)),
        (5, 3, 2, (1, 1)),
        (5, 3, 1, (1, 1)),
        (7, 1, 2, (0, 0)),
        (6, 4, 1, (1, 2)),
        (3, 5, 3, (1, 1)),
    ],
)
def test_same_padding_puts_the_odd_pixel_after(size, k, stride, expected):
    assert same_pads(size, k, stride) == expected


def test_bad_padding_and_channel_mismatch_raise(rng):
    x, kernel, bias = _random_conv(rng, (1, 4, 4, 3), (3, 3), 2)
    with pytest.raises(ValueError, match="padding"):
        conv2d_forward(x, kernel, bias, padding="full")
    with pytest.raises(ValueError, match=r"3 channels.*expects 2.*\(1, 4, 4, 3\).*\(3, 3, 2, 2\)"):
        conv2d_forward(x, kernel[:, :, :2], bias)


# -- known answers on linspace inputs --------------------------------------------------

# x[i, j] = 4 i + j: a 4x4 image with no ties, easy to sum by hand.
X44 = np.linspace(0.0, 15.0, 16).reshape(1, 4, 4, 1)
ONES33 = np.ones((3, 3, 1, 1))


def test_known_answer_valid_ones_kernel():
    # Sum over a 3x3 window of 4i + j is 9 times its centre value (the mean).
    out, _ = conv2d_forward(X44, ONES33, None, padding="valid")
    np.testing.assert_allclose(out[0, :, :, 0], 9 * np.array([[5.0, 6.0], [9.0, 10.0]]))


def test_known_answer_same_ones_kernel_with_bias():
    # Each output: the sum of the in-image neighbours (zero padding elsewhere), plus 0.5.
    expected = (
        np.array([[10, 18, 24, 18], [27, 45, 54, 39], [51, 81, 90, 63], [42, 66, 72, 50]], dtype=np.float64)
        + 0.5
    )
    out, _ = conv2d_forward(X44, ONES33, np.array([0.5]), padding="same")
    np.testing.assert_allclose(out[0, :, :, 0], expected)


def test_known_answer_same_stride2_pads_bottom_right_only():
    # 4 -> 2 outputs needs 1 pad pixel; TF puts it after, so windows start at rows/cols 0 and 2.
    out, _ = conv2d_forward(X44, ONES33, None, strides=(2, 2), padding="same")
    expected = [
        [0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10, 2 + 3 + 6 + 7 + 10 + 11],
        [8 + 9 + 10 + 12 + 13 + 14, 10 + 11 + 14 + 15],
    ]
    np.testing.assert_allclose(out[0, :, :, 0], expected)


def test_known_answer_backward_counts_window_memberships():
    # With a ones kernel and dout = 1, dx[p] = the number of windows containing p,
    # dkernel[a, b] = the sum of the x values that kernel tap (a, b) sees.
    out, cache = conv2d_forward(X44, ONES33, None, padding="valid")
    dx, dk, db = conv2d_backward(np.ones_like(out), cache)
    np.testing.assert_allclose(dx[0, :, :, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    # tap (a, b) sees x[a:a+2, b:b+2], whose sum is 4 * x[a+0.5, b+0.5] = 4 * (4a + b + 2.5)
    expected_dk = [[4 * (4 * a + b + 2.5) for b in range(3)] for a in range(3)]
    np.testing.assert_allclose(dk[:, :, 0, 0], expected_dk)
    np.testing.assert_allclose(db, [4.0])


def test_known_answer_multichannel_1x2_kernel():
    # Two input channels, a 1x2 kernel mixing them: out = x[i,j,0] - x[i,j+1,1] * 2.
    x = np.stack([X44[0, :, :, 0], 100 + X44[0, :, :, 0]], axis=-1)[None]  # (1, 4, 4, 2)
    kernel = np.zeros((1, 2, 2, 1))
    kernel[0, 0, 0, 0] = 1.0
    kernel[0, 1, 1, 0] = -2.0
    out, _ = conv2d_forward(x, kernel, None, padding="valid")
    assert out.shape == (1, 4, 3, 1)
    i, j = np.meshgrid(np.arange(4), np.arange(3), indexing="ij")
    np.testing.assert_allclose(out[0, :, :, 0], (4 * i + j) - 2 * (100 + 4 * i + j + 1))


# -- property test ------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 2),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    c=st.integers(1, 3),
    f=st.integers(1, 3),
    kh=st.integers(1, 3),
    kw=st.integers(1, 3),
    sh=st.integers(1, 2),
    sw=st.integers(1, 2),
    padding=st.sampled_from(["same", "valid"]),
    seed=st.integers(0, 2**16),
)
def test_property_fast_equals_naive(n, h, w, c, f, kh, kw, sh, sw, padding, seed):
    assume(padding == "same" or (h >= kh and w >= kw))  # else the output is empty
    r = np.random.default_rng(seed)
    x, kernel, bias = _random_conv(r, (n, h, w, c), (kh, kw), f)
    out, cache = conv2d_forward(x, kernel, bias, (sh, sw), padding)
    np.testing.assert_allclose(
        out, conv2d_forward_naive(x, kernel, bias, (sh, sw), padding), rtol=1e-10, atol=1e-12
    )
    dout = r.standard_normal(out.shape)
    for fast, naive in zip(
        conv2d_backward(dout, cache), conv2d_backward_naive(dout, x, kernel, (sh, sw), padding)
    ):
        assert rel_error(fast, naive) < 1e-8 or np.allclose(fast, naive, atol=1e-12)


@pytest.mark.parametrize(
    "shape, kernel_hw, padding",
    [
        ((2, 33, 34, 16), (3, 3), "same"),  # big enough for the kernel-row path
        ((1, 40, 37, 17), (2, 3), "valid"),
    ],
)
def test_kernel_row_path_equals_full_im2col(shape, kernel_hw, padding):
    """The fast stride-1 path (split by kernel row) computes exactly im2col(x) @ W."""
    from numvgg.ops.conv import conv_pads, im2col, pad_input

    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    kernel = rng.standard_normal((*kernel_hw, shape[-1], 5))
    out, cache = conv2d_forward(x, kernel, None, (1, 1), padding, "kernel_rows")
    assert cache.algorithm == "kernel_rows"
    pads = conv_pads(shape[1], shape[2], *kernel_hw, (1, 1), padding)
    cols = im2col(pad_input(x, pads), *kernel_hw)
    expected = (cols @ kernel.reshape(-1, 5)).reshape(out.shape)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-11)
