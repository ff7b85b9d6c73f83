"""The fast forward: Winograd's chunked pipeline, the bias added to the products,
and the ReLU fused into ``conv2d_forward`` / ``Conv2D``, against the naive
float64 loops; results that do not depend on chunk sizes or thread counts."""

import importlib.util
import io
from contextlib import redirect_stdout
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from numvgg import config
from numvgg.layers import Conv2D
from numvgg.ops import winograd
from numvgg.ops.conv import conv2d_backward, conv2d_forward, conv2d_forward_naive

PATHS = ("im2col", "kernel_rows", "winograd2", "winograd4")
WINOGRAD = ("winograd2", "winograd4")

# (input NHWC, filters, padding): odd sizes, maps that are not a whole number of
# tiles, batch 1 (pieces of tile rows), one channel in or out, one pixel.
SHAPES = [
    ((2, 7, 9, 3), 4, "same"),
    ((1, 13, 10, 3), 2, "same"),
    ((3, 11, 6, 2), 5, "valid"),
    ((1, 9, 9, 1), 3, "same"),
    ((4, 6, 5, 3), 1, "valid"),
    ((5, 6, 6, 2), 3, "same"),
    ((1, 1, 1, 2), 2, "same"),
]

# (_CHUNK_BYTES, _CHUNK_TILES): one tile row per chunk; a few images per chunk; one chunk.
CHUNKINGS = [(1, 1), (1, 20), (2**30, 2**30)]


def _conv(rng, shape, filters, dtype=np.float64):
    x = rng.standard_normal(shape).astype(dtype)
    kernel = rng.standard_normal((3, 3, shape[-1], filters)).astype(dtype)
    bias = rng.standard_normal(filters).astype(dtype)
    return x, kernel, bias


@pytest.mark.parametrize("algorithm", WINOGRAD)
@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("shape, filters, padding", SHAPES)
def test_winograd_pipeline_equals_the_naive_loops(shape, filters, padding, chunking, algorithm, monkeypatch):
    """Every chunking (one tile row, several images, everything at once), with
    bias and with the fused ReLU, gives the naive loops' float64 result."""
    monkeypatch.setattr(winograd, "_CHUNK_BYTES", chunking[0])
    monkeypatch.setattr(winograd, "_CHUNK_TILES", chunking[1])
    rng = np.random.default_rng(sum(shape) + filters)
    x, kernel, bias = _conv(rng, shape, filters)
    expected = conv2d_forward_naive(x, kernel, bias, (1, 1), padding)
    out, cache = conv2d_forward(x, kernel, bias, (1, 1), padding, algorithm)
    assert cache.algorithm == algorithm and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-11)
    fused, _ = conv2d_forward(x, kernel, bias, (1, 1), padding, algorithm, relu=True)
    np.testing.assert_allclose(fused, np.maximum(expected, 0), rtol=0, atol=1e-11)
    no_bias, _ = conv2d_forward(x, kernel, None, (1, 1), padding, algorithm)
    np.testing.assert_allclose(no_bias, expected - bias, rtol=0, atol=1e-11)


@pytest.mark.parametrize("tw, max_tiles", [(5, 1), (5, 12), (3, 100), (1, 1)])
@pytest.mark.parametrize("images, rows", [(slice(0, 5), slice(0, 4)), (slice(2, 3), slice(1, 7))])
def test_chunks_cover_every_tile_once(images, rows, tw, max_tiles):
    seen = []
    for chunk in winograd._chunks(images, rows, tw, max_tiles):
        n_img = chunk.images.stop - chunk.images.start
        n_rows = chunk.rows.stop - chunk.rows.start
        assert n_img * n_rows * tw <= max(max_tiles, tw)  # at least one whole tile row
        seen += [
            (i, t)
            for i in range(chunk.images.start, chunk.images.stop)
            for t in range(chunk.rows.start, chunk.rows.stop)
        ]
    expected = [(i, t) for i in range(images.start, images.stop) for t in range(rows.start, rows.stop)]
    assert sorted(seen) == expected


@pytest.mark.parametrize("algorithm", PATHS)
def test_fused_relu_is_bit_identical_to_a_separate_one(algorithm):
    rng = np.random.default_rng(1)
    x, kernel, bias = _conv(rng, (3, 12, 10, 5), 6, np.float32)
    out, _ = conv2d_forward(x, kernel, bias, (1, 1), "same", algorithm)
    fused, cache = conv2d_forward(x, kernel, bias, (1, 1), "same", algorithm, relu=True)
    assert fused.dtype == np.float32
    np.testing.assert_array_equal(fused, np.maximum(out, 0))
    assert cache.algorithm == algorithm


def test_bias_goes_where_A_transpose_is_all_ones():
    """``A^T``'s column for the point 1 is all ones: a bias added there reaches
    every output pixel once. Points without 1 cannot add a bias this way."""
    for m, (at, _, _) in winograd.MATRICES.items():
        slot = winograd.point_one_column(at)
        assert slot is not None and np.all(at[:, slot] == 1), m
    mats = winograd.winograd_matrices(4, (0, -1, 2, -2, Fraction(1, 2)))
    assert winograd.point_one_column(mats[0]) is None
    rng = np.random.default_rng(2)
    x, kernel, bias = _conv(rng, (1, 8, 8, 2), 3)
    u = winograd.transform_kernel(kernel, 4, mats)
    out = winograd.conv2d_winograd(x, u, (1, 1, 1, 1), (8, 8), 4, mats)
    np.testing.assert_allclose(out, conv2d_forward_naive(x, kernel), rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="no point 1"):
        winograd.conv2d_winograd(x, u, (1, 1, 1, 1), (8, 8), 4, mats, bias=bias)


@pytest.mark.parametrize("algorithm", ("kernel_rows", *WINOGRAD))
def test_bias_and_relu_are_bit_identical_for_any_number_of_threads(algorithm, monkeypatch):
    monkeypatch.setattr(winograd, "_CHUNK_TILES", 7)
    monkeypatch.setattr(winograd, "_CHUNK_BYTES", 1)
    rng = np.random.default_rng(3)
    results = []
    for shape in ((5, 17, 19, 8), (1, 23, 9, 4)):
        x, kernel, bias = _conv(rng, shape, 6, np.float32)
        for threads in (1, 2, 3):
            with config.using_num_threads(threads):
                results.append(
                    (shape, conv2d_forward(x, kernel, bias, (1, 1), "same", algorithm, relu=True)[0])
                )
    for (shape_a, a), (shape_b, b) in zip(results, results[1:]):
        if shape_a == shape_b:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("algorithm", PATHS)
def test_conv2d_layer_fuses_relu_with_the_same_output_mask_and_gradient(algorithm):
    """``Conv2D(activation='relu')`` runs the ReLU inside the op; output, ReLU
    mask and gradients are those of the unfused layer (a wrapped ``_activate``,
    as a trace recording pre-activations installs, turns the fusion off)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 9, 11, 3)).astype(np.float32)
    fused = Conv2D(5, 3, padding="same", activation="relu", algorithm=algorithm)
    plain = Conv2D(5, 3, padding="same", activation="relu", algorithm=algorithm)
    fused.build(x.shape)
    plain.build(x.shape)
    plain.set_weights(fused.get_weights())
    seen = []

    def wrapped(z, *args, **kwargs):
        seen.append(z.copy())
        return type(plain)._activate(plain, z, *args, **kwargs)

    plain._activate = wrapped
    out = fused(x)
    expected = plain(x)
    assert len(seen) == 1  # the unfused layer went through _activate
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(fused._cache[1], seen[0] > 0)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_array_equal(fused.backward(dout), plain.backward(dout))
    for a, b in zip(fused.grads, plain.grads):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fused(x, keep_cache=False), expected)  # predict: no mask kept
    assert fused._cache is None


def test_float32_winograd4_stays_close_to_float64():
    """The cache-sized chunks and the bias in the products keep F(4x4, 3x3)'s
    float32 error where it was (a few 1e-6 of the largest output)."""
    rng = np.random.default_rng(5)
    x = np.maximum(rng.standard_normal((2, 28, 28, 64)), 0).astype(np.float32)
    kernel = (rng.standard_normal((3, 3, 64, 48)) / 24).astype(np.float32)
    bias = rng.standard_normal(48).astype(np.float32) * 0.1
    ref = conv2d_forward_naive(x.astype(np.float64), kernel.astype(np.float64), bias.astype(np.float64))
    out, _ = conv2d_forward(x, kernel, bias, (1, 1), "same", "winograd4", relu=True)
    assert np.abs(out - np.maximum(ref, 0)).max() / np.abs(ref).max() < 1e-5


def test_conv_paths_phases_prints_every_phase():
    path = Path(__file__).resolve().parents[1] / "bench" / "conv_paths.py"
    spec = importlib.util.spec_from_file_location("conv_paths_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        bench.main(["--phases", "--batch", "1", "--layers", "block5_conv1", "--repeats", "1"])
    text = buffer.getvalue()
    assert "| layer | gather | B^T columns | B^T rows | products |" in text
    assert "| block5_conv1 |" in text and "GFLOP" in text


def test_backward_after_a_fused_forward_matches_the_naive_gradient():
    rng = np.random.default_rng(6)
    x, kernel, bias = _conv(rng, (2, 7, 6, 3), 4)
    out, cache = conv2d_forward(x, kernel, bias, (1, 1), "same", "winograd4", relu=True)
    z = conv2d_forward_naive(x, kernel, bias)
    dz = np.where(z > 0, 1.0, 0.0)
    dx, dk, db = conv2d_backward(dz, cache)
    ref_dx, ref_dk, ref_db = conv2d_backward(dz, conv2d_forward(x, kernel, bias, (1, 1), "same", "im2col")[1])
    np.testing.assert_allclose(dx, ref_dx, atol=1e-11)
    np.testing.assert_allclose(dk, ref_dk, atol=1e-11)
    np.testing.assert_allclose(db, ref_db, atol=1e-11)
    np.testing.assert_array_equal(out > 0, z > 0)
