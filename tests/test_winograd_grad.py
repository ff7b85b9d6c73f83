"""The kernel and bias gradients through Winograd (numvgg/ops/winograd_grad.py):
against the naive float64 loops, across chunk and piece boundaries and thread
counts, routed from conv2d_backward, and against Keras."""

import numpy as np
import pytest

from numvgg import config
from numvgg.layers import Conv2D
from numvgg.ops import winograd_grad
from numvgg.ops.conv import (
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_forward,
    conv_pads,
    kernel_grad_by_rows,
)
from numvgg.ops.winograd import MATRICES, winograd_matrices
from numvgg.ops.winograd_grad import _chunks, kernel_grad_winograd

# (input NHWC, filters, padding): odd sizes, maps that are not a whole number
# of tiles, one pixel, one image (fewer images than pieces: tile-row pieces),
# C = 1 and F = 1.
SHAPES = [
    ((2, 7, 9, 3), 4, "same"),
    ((1, 8, 8, 5), 2, "valid"),
    ((3, 5, 6, 4), 3, "valid"),
    ((2, 1, 1, 2), 3, "same"),
    ((1, 3, 3, 1), 1, "valid"),
    ((1, 13, 10, 1), 2, "same"),
    ((3, 11, 6, 2), 1, "same"),
    ((1, 1, 1, 1), 1, "same"),
]


def _case(rng, shape, filters, padding, dtype=np.float64):
    x = rng.standard_normal(shape).astype(dtype)
    kernel = rng.standard_normal((3, 3, shape[3], filters)).astype(dtype)
    pads = conv_pads(shape[1], shape[2], 3, 3, (1, 1), padding)
    oh = shape[1] if padding == "same" else shape[1] - 2
    ow = shape[2] if padding == "same" else shape[2] - 2
    dout = rng.standard_normal((shape[0], oh, ow, filters)).astype(dtype)
    return x, kernel, pads, dout


def _rel(got, want):
    return np.abs(got - want).max() / max(np.abs(want).max(), 1e-300)


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("shape, filters, padding", SHAPES)
def test_equals_the_naive_loops_in_float64(m, shape, filters, padding, rng):
    x, kernel, pads, dout = _case(rng, shape, filters, padding)
    _, dkernel_ref, dbias_ref = conv2d_backward_naive(dout, x, kernel, (1, 1), padding)
    dkernel, dbias = kernel_grad_winograd(x, dout, pads, MATRICES[m])
    assert dkernel.shape == kernel.shape and dbias.shape == (filters,)
    assert _rel(dkernel, dkernel_ref) < 1e-12
    assert _rel(dbias, dbias_ref) < 1e-12


@pytest.mark.parametrize("m", [2, 4])
def test_chunk_boundaries_change_nothing_but_rounding(m, rng, monkeypatch):
    x, kernel, pads, dout = _case(rng, (3, 19, 17, 3), 2, "same")
    _, dkernel_ref, dbias_ref = conv2d_backward_naive(dout, x, kernel, (1, 1), "same")
    for chunk_bytes, min_tiles in ((1, 1), (1, 7), (2**30, 1)):  # one tile row / odd groups / whole pieces
        monkeypatch.setattr(winograd_grad, "_CHUNK_BYTES", chunk_bytes)
        monkeypatch.setattr(winograd_grad, "_MIN_TILES", min_tiles)
        dkernel, dbias = kernel_grad_winograd(x, dout, pads, MATRICES[m])
        assert _rel(dkernel, dkernel_ref) < 1e-12, (chunk_bytes, min_tiles)
        assert _rel(dbias, dbias_ref) < 1e-12, (chunk_bytes, min_tiles)


@pytest.mark.parametrize(
    "images, rows, tw, tiles",
    [
        (slice(0, 5), slice(0, 4), 3, 7),
        (slice(2, 3), slice(1, 9), 5, 12),
        (slice(0, 4), slice(0, 2), 2, 1000),
        (slice(1, 4), slice(3, 4), 9, 1),
    ],
)
def test_chunks_cover_every_tile_row_once(images, rows, tw, tiles):
    seen = []
    for chunk_images, t0, t1 in _chunks(images, rows, rows.stop, tw, tiles):
        assert t1 > t0
        seen += [(i, t) for i in range(chunk_images.start, chunk_images.stop) for t in range(t0, t1)]
    expected = [(i, t) for i in range(images.start, images.stop) for t in range(rows.start, rows.stop)]
    assert sorted(seen) == expected


def test_bias_without_the_point_one_sums_dout(rng):
    """Points without 1 have no all-ones row in A^T: the bias falls back to summing dout."""
    matrices = winograd_matrices(2, (0, -1, 2))
    assert not np.any(np.all(matrices[0] == 1, axis=0))
    x, kernel, pads, dout = _case(rng, (2, 6, 7, 3), 4, "same")
    _, dkernel_ref, dbias_ref = conv2d_backward_naive(dout, x, kernel, (1, 1), "same")
    dkernel, dbias = kernel_grad_winograd(x, dout, pads, matrices)
    assert _rel(dkernel, dkernel_ref) < 1e-12
    assert _rel(dbias, dbias_ref) < 1e-12


@pytest.mark.parametrize("n", [1, 5])  # tile-row pieces of one image, and groups of images
def test_bit_identical_whatever_the_number_of_threads(n, rng):
    x, _, pads, dout = _case(rng, (n, 22, 21, 6), 5, "same", np.float32)
    results = []
    for threads in (1, 2, 3):
        with config.using_num_threads(threads):
            results.append(kernel_grad_winograd(x, dout, pads, MATRICES[4]))
    for dkernel, dbias in results[1:]:
        assert np.array_equal(dkernel, results[0][0]) and np.array_equal(dbias, results[0][1])


@pytest.mark.parametrize("algorithm, m", [("winograd2", 2), ("winograd4", 4), ("kernel_rows", None)])
def test_conv2d_backward_routes_by_the_layers_algorithm(algorithm, m, rng):
    x, kernel, pads, dout = _case(rng, (2, 9, 10, 4), 3, "same", np.float32)
    _, cache = conv2d_forward(x, kernel, None, (1, 1), "same", algorithm)
    _, dkernel, dbias = conv2d_backward(dout, cache)
    if m is None:
        assert np.array_equal(dkernel, kernel_grad_by_rows(x, dout, kernel.shape, pads))
    else:
        want_k, want_b = kernel_grad_winograd(x, dout, pads, MATRICES[m])
        assert np.array_equal(dkernel, want_k) and np.array_equal(dbias, want_b)
    assert _rel(dbias, dout.astype(np.float64).sum(axis=(0, 1, 2))) < 1e-6


def test_float32_error_is_small_and_f4_rounds_more_than_f2(rng):
    """VGG16-like statistics (ReLU inputs, gradients half zero), 32x32 maps, 64 channels."""
    x = np.maximum(rng.standard_normal((2, 32, 32, 64)), 0).astype(np.float32)
    dout = (rng.standard_normal((2, 32, 32, 32)) * (rng.random((2, 32, 32, 32)) > 0.5)).astype(np.float32)
    pads = (1, 1, 1, 1)
    ref = kernel_grad_by_rows(x.astype(np.float64), dout.astype(np.float64), (3, 3, 64, 32), pads)
    err = {m: _rel(kernel_grad_winograd(x, dout, pads, MATRICES[m])[0], ref) for m in MATRICES}
    assert err[4] < 2e-5, err  # seen: ~2e-6
    assert err[2] < err[4], err


@pytest.mark.keras
@pytest.mark.parametrize(
    "shape, filters, padding", [((2, 28, 28, 32), 48, "same"), ((1, 30, 26, 16), 8, "valid")]
)
def test_winograd4_kernel_gradient_matches_keras(shape, filters, padding, keras, tf):
    rng = np.random.default_rng(5)
    x = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)
    ours = Conv2D(filters, 3, padding=padding, activation="relu", algorithm="winograd4")
    theirs = keras.layers.Conv2D(filters, 3, padding=padding, activation="relu")
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    out = ours.forward(x, training=True)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    ours.backward(dout, need_input_grad=False)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(theirs(tf.constant(x)) * dout)
    k_dkernel, k_dbias = (np.asarray(g) for g in tape.gradient(loss, theirs.trainable_weights))
    for name, got, want in (("dkernel", ours.grads[0], k_dkernel), ("dbias", ours.grads[1], k_dbias)):
        err = _rel(got, want)
        assert err <= 1e-3, (name, err)  # numvgg's promise
        assert err < 2e-5, (name, err)  # what we see: ~1e-6
