"""Winograd F(2x2, 3x3) and F(4x4, 3x3), forward and input gradient, against the
naive float64 loops and against Keras; and the matrices' derivation itself."""

from fractions import Fraction

import numpy as np
import pytest

from numvgg import config
from numvgg.debug.gradcheck import check_op
from numvgg.layers import Conv2D
from numvgg.ops import winograd
from numvgg.ops.conv import (
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_forward,
    conv2d_forward_naive,
    conv2d_forward_winograd,
)
from numvgg.ops.winograd import (
    KernelTransforms,
    transform_kernel,
    winograd_matrices,
)

WINOGRAD = ("winograd2", "winograd4")

# (input NHWC, filters, padding): odd sizes, tiles that do not divide the map,
# one pixel, one output pixel, fewer images than pieces and more.
SHAPES = [
    ((2, 7, 9, 3), 4, "same"),
    ((1, 8, 8, 5), 2, "valid"),
    ((3, 5, 6, 4), 3, "valid"),
    ((2, 1, 1, 2), 3, "same"),
    ((1, 3, 3, 1), 1, "valid"),
    ((1, 13, 10, 3), 2, "same"),
    ((3, 11, 6, 2), 5, "same"),
]


def _conv(rng, shape, filters, dtype=np.float64):
    x = rng.standard_normal(shape).astype(dtype)
    kernel = rng.standard_normal((3, 3, shape[-1], filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    return x, kernel, bias


# -- the matrices ----------------------------------------------------------------


def test_f2_matrices_are_lavin_and_grays():
    at, g, bt = winograd.MATRICES[2]
    np.testing.assert_array_equal(at, [[1, 1, 1, 0], [0, 1, -1, -1]])
    np.testing.assert_array_equal(np.abs(g), [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [0, 0, 1]])
    np.testing.assert_array_equal(bt[[0, 1, 3]], [[1, 0, -1, 0], [0, 1, 1, 0], [0, 1, 0, -1]])


def test_textbook_f4_matrices_are_lavin_and_grays():
    """Points 0, ±1, ±2, ∞ give the B^T printed in Lavin & Gray (2015), up to a
    scale per row (which G's row takes back: numvgg keeps Lagrange's denominators in G)."""
    _, _, bt = winograd_matrices(4, winograd.POINTS_F4_TEXTBOOK)
    lavin = np.array(
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
        dtype=np.float64,
    )
    for ours, theirs in zip(bt, lavin):
        scale = ours[np.argmax(np.abs(theirs))] / theirs[np.argmax(np.abs(theirs))]
        np.testing.assert_array_equal(ours, scale * theirs)


@pytest.mark.parametrize(
    "m, points",
    [
        (2, winograd.POINTS_F2),
        (4, winograd.POINTS_F4),
        (4, winograd.POINTS_F4_TEXTBOOK),
        (4, winograd.POINTS_F4_HALVES),
        (3, (0, 1, -1, 2)),
    ],
)
def test_one_dimensional_identity(m, points):
    """Y = A^T [(G g) ⊙ (B^T d)] is the correlation y_i = sum_k g_k d_{i+k}."""
    at, g_mat, bt = winograd_matrices(m, points)
    rng = np.random.default_rng(m)
    for _ in range(5):
        g, d = rng.standard_normal(3), rng.standard_normal(m + 2)
        expected = [g @ d[i : i + 3] for i in range(m)]
        np.testing.assert_allclose(at @ ((g_mat @ g) * (bt @ d)), expected, rtol=0, atol=1e-12)


def test_transform_entries_are_exact_in_float32():
    """A^T and B^T hold small dyadic fractions: no rounding on the activations' side."""
    for at, _, bt in winograd.MATRICES.values():
        for mat in (at, bt):
            np.testing.assert_array_equal(mat.astype(np.float32).astype(np.float64), mat)


def test_points_must_be_distinct_and_enough():
    with pytest.raises(ValueError, match="5 distinct finite points"):
        winograd_matrices(4, (0, 1, -1, 2))
    with pytest.raises(ValueError, match="distinct"):
        winograd_matrices(2, (0, 1, Fraction(1)))


def test_kernel_transform_is_G_g_Gt_in_b_a_order():
    rng = np.random.default_rng(0)
    k = rng.standard_normal((3, 3, 2, 3))
    for m in (2, 4):
        g = winograd.MATRICES[m][1]
        a = m + 2
        u = transform_kernel(k, m).reshape(a, a, 2, 3)  # (a_b, a_h, C, F)
        for c in range(2):
            for f in range(3):
                np.testing.assert_allclose(u[:, :, c, f].T, g @ k[:, :, c, f] @ g.T, atol=1e-12)


# -- the convolution against the naive loops (float64) ----------------------------


@pytest.mark.parametrize("algorithm", WINOGRAD)
@pytest.mark.parametrize("shape, filters, padding", SHAPES)
def test_forward_and_backward_equal_the_naive_loops(shape, filters, padding, algorithm):
    rng = np.random.default_rng(sum(shape))
    x, kernel, bias = _conv(rng, shape, filters)
    out, cache = conv2d_forward(x, kernel, bias, (1, 1), padding, algorithm)
    assert cache.algorithm == algorithm
    expected = conv2d_forward_naive(x, kernel, bias, (1, 1), padding)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-11)
    dout = rng.standard_normal(out.shape)
    for name, got, want in zip(
        ("dx", "dkernel", "dbias"),
        conv2d_backward(dout, cache),
        conv2d_backward_naive(dout, x, kernel, (1, 1), padding),
    ):
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("algorithm", WINOGRAD)
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_gradcheck(algorithm, padding, rng):
    x, kernel, bias = _conv(rng, (2, 6, 7, 3), 2)
    errors = check_op(
        conv2d_forward,
        conv2d_backward,
        x,
        kernel,
        bias,
        seed=3,
        names=("x", "kernel", "bias"),
        strides=(1, 1),
        padding=padding,
        algorithm=algorithm,
    )
    assert set(errors) == {"x", "kernel", "bias"}
    assert max(errors.values()) < 1e-6, errors


def test_small_chunks_give_the_same_result(monkeypatch):
    """Chunks of one tile row (and pieces of tile rows for a single image) change nothing."""
    rng = np.random.default_rng(5)
    for shape in ((1, 17, 9, 3), (3, 10, 13, 2)):
        x, kernel, bias = _conv(rng, shape, 4)
        whole = [conv2d_forward(x, kernel, bias, (1, 1), "same", a)[0] for a in WINOGRAD]
        monkeypatch.setattr(winograd, "_CHUNK_BYTES", 1)
        chunked = [conv2d_forward(x, kernel, bias, (1, 1), "same", a)[0] for a in WINOGRAD]
        monkeypatch.undo()
        for w, c in zip(whole, chunked):
            np.testing.assert_allclose(c, w, rtol=0, atol=1e-12)


def test_float32_error_is_small_and_f4_is_the_less_exact():
    """F(4x4, 3x3) in float32 rounds more than F(2x2, 3x3); both stay far below 1e-4."""
    rng = np.random.default_rng(6)
    x = np.maximum(rng.standard_normal((2, 20, 20, 64)), 0).astype(np.float32)
    kernel = (rng.standard_normal((3, 3, 64, 32)) / 24).astype(np.float32)
    ref = conv2d_forward_naive(x.astype(np.float64), kernel.astype(np.float64), None, (1, 1), "same")
    err = {}
    for algorithm in ("im2col", *WINOGRAD):
        out, _ = conv2d_forward(x, kernel, None, (1, 1), "same", algorithm)
        assert out.dtype == np.float32
        err[algorithm] = np.abs(out - ref).max() / np.abs(ref).max()
    assert err["winograd4"] < 2e-5, err
    assert err["winograd2"] < err["winograd4"], err


def test_chosen_f4_points_round_less_than_the_textbook_ones(monkeypatch):
    rng = np.random.default_rng(7)
    x = np.maximum(rng.standard_normal((1, 24, 24, 128)), 0).astype(np.float32)
    kernel = (rng.standard_normal((3, 3, 128, 64)) / 34).astype(np.float32)
    ref = conv2d_forward_naive(x.astype(np.float64), kernel.astype(np.float64), None, (1, 1), "same")

    def error(points):
        mats = winograd_matrices(4, points)
        out = winograd.conv2d_winograd(x, transform_kernel(kernel, 4, mats), (1, 1, 1, 1), (24, 24), 4, mats)
        return np.abs(out - ref).max() / np.abs(ref).max()

    assert error(winograd.POINTS_F4) < error(winograd.POINTS_F4_TEXTBOOK)


def test_conv2d_forward_winograd_keeps_its_contract():
    rng = np.random.default_rng(8)
    x, kernel, bias = _conv(rng, (2, 6, 5, 3), 2)
    for m in (2, 4):
        out, cache = conv2d_forward_winograd(x, kernel, bias, (1, 1), "same", m=m)
        np.testing.assert_allclose(out, conv2d_forward_naive(x, kernel, bias), atol=1e-11)
        assert cache.algorithm == f"winograd{m}"


def test_winograd_rejects_what_it_cannot_do():
    x = np.zeros((1, 8, 8, 2), np.float32)
    with pytest.raises(ValueError, match="3x3 kernel and stride 1"):
        conv2d_forward_winograd(x, np.zeros((5, 5, 2, 1), np.float32), None)
    with pytest.raises(ValueError, match="3x3 kernel and stride 1"):
        conv2d_forward_winograd(x, np.zeros((3, 3, 2, 1), np.float32), None, strides=(2, 2))
    with pytest.raises(ValueError, match=r"m must be one of \[2, 4\]"):
        conv2d_forward_winograd(x, np.zeros((3, 3, 2, 1), np.float32), None, m=3)


# -- the layer's transformed-kernel store -------------------------------------------


def test_kernel_transforms_are_reused_until_the_kernel_changes():
    rng = np.random.default_rng(9)
    kernel = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
    store = KernelTransforms()
    u = store.get(kernel, 4)
    assert store.get(kernel, 4) is u  # unchanged: the same array
    np.testing.assert_array_equal(u, transform_kernel(kernel, 4))
    kernel[1, 2, 3, 4] += 1.0  # an optimizer step, in place
    u2 = store.get(kernel, 4)
    assert u2 is not u
    np.testing.assert_array_equal(u2, transform_kernel(kernel, 4))
    flipped = store.get(kernel, 4, flipped=True)
    np.testing.assert_array_equal(
        flipped, transform_kernel(np.ascontiguousarray(kernel[::-1, ::-1].transpose(0, 1, 3, 2)), 4)
    )


def test_layer_after_an_update_uses_the_new_kernel():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 9, 7, 3)).astype(np.float32)
    layer = Conv2D(4, 3, padding="same", algorithm="winograd4")
    layer.build(x.shape)
    first = layer(x)
    layer.params["kernel"] *= 2  # in place, as optimizers do
    np.testing.assert_allclose(
        layer(x) - layer.params["bias"], 2 * (first - layer.params["bias"]), rtol=1e-5, atol=1e-5
    )


# -- against Keras ---------------------------------------------------------------------


@pytest.mark.keras
@pytest.mark.parametrize("algorithm", ["im2col", "kernel_rows", *WINOGRAD, "auto"])
def test_vgg16_every_layer_matches_keras(algorithm, vgg16_pair, keras):
    """Each layer's output of the whole network, run end to end: <= 1e-4 of Keras' largest."""
    from numvgg.models import leaf_layers

    ours, theirs = vgg16_pair.numvgg, vgg16_pair.keras
    rng = np.random.default_rng(2)
    x = rng.uniform(-100, 100, size=(2, *vgg16_pair.input_shape)).astype(np.float32)
    names = [layer.name for layer in theirs.layers[1:]]
    probe = keras.Model(theirs.input, [theirs.get_layer(n).output for n in names])
    expected = dict(zip(names, (np.asarray(o) for o in probe(x))))
    errors = {}
    with config.using_conv_algorithm(algorithm):
        h = x
        for layer in leaf_layers(ours):
            h = layer(h)
            ref = expected[layer.name]
            errors[layer.name] = np.abs(h - ref).max() / np.abs(ref).max()
    assert max(errors.values()) <= 1e-4, errors
    assert max(errors.values()) <= 2e-5, errors  # what we see: ~1e-6 .. 6e-6


@pytest.mark.keras
@pytest.mark.parametrize("algorithm", ["kernel_rows", *WINOGRAD])
@pytest.mark.parametrize("shape, padding", [((2, 10, 9, 16), "same"), ((1, 11, 13, 8), "valid")])
def test_conv2d_gradients_match_keras(algorithm, shape, padding, keras, tf):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(np.float32)
    ours = Conv2D(12, 3, padding=padding, activation="relu", algorithm=algorithm)
    theirs = keras.layers.Conv2D(12, 3, padding=padding, activation="relu")
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    out = ours.forward(x, training=True)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = ours.backward(dout)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        k_out = theirs(xt)
        loss = tf.reduce_sum(k_out * dout)
    k_grads = tape.gradient(loss, [xt, *theirs.trainable_weights])
    for name, got, want in (
        ("out", out, k_out),
        ("dx", dx, k_grads[0]),
        ("dkernel", ours.grads[0], k_grads[1]),
        ("dbias", ours.grads[1], k_grads[2]),
    ):
        want = np.asarray(want)
        err = np.abs(got - want).max() / np.abs(want).max()
        assert err < 1e-5, (name, err)
