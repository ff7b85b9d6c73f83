"""The conv algorithm setting: names, which path runs when, the plain im2col path,
the kernel-row path's backward, and the thread pool's bit-identical results."""

import numpy as np
import pytest

from numvgg import config
from numvgg.layers import Conv2D
from numvgg.ops.conv import (
    auto_path,
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_forward,
    conv2d_forward_naive,
    conv_pads,
    conv_path,
    im2col,
    pad_input,
)
from numvgg.ops.parallel import parallel_map, split

FAST = ("kernel_rows", "winograd2", "winograd4")


def test_names_alias_and_clear_errors():
    assert config.CONV_ALGORITHMS == ("auto", "im2col", "kernel_rows", "winograd2", "winograd4", "winograd")
    assert config.resolve_conv_algorithm("winograd") == "winograd4"
    assert config.conv_algorithm() == config.DEFAULT_CONV_ALGORITHM == "auto"
    with pytest.raises(ValueError, match=r"Unknown conv algorithm 'fft'. Valid choices: \['auto', 'im2col'"):
        config.set_conv_algorithm("fft")
    assert config.conv_algorithm() == "auto"  # a refused name changes nothing
    with pytest.raises(ValueError, match=r"Conv2D algorithm.*'fft'.*Valid choices"):
        Conv2D(2, 3, algorithm="fft")
    with pytest.raises(ValueError, match="Valid choices"):
        conv2d_forward(np.zeros((1, 4, 4, 1)), np.zeros((3, 3, 1, 1)), None, algorithm="direct")


def test_using_conv_algorithm_restores_even_on_error():
    with pytest.raises(RuntimeError), config.using_conv_algorithm("im2col"):
        assert config.conv_algorithm() == "im2col"
        raise RuntimeError("inside")
    assert config.conv_algorithm() == "auto"


@pytest.mark.parametrize(
    "algorithm, kernel, strides, expected",
    [
        ("im2col", (3, 3), (1, 1), "im2col"),
        ("winograd", (3, 3), (1, 1), "winograd4"),
        ("winograd2", (3, 3), (1, 1), "winograd2"),
        ("winograd4", (1, 1), (1, 1), "kernel_rows"),  # not 3x3: falls back, stride 1
        ("winograd2", (3, 3), (2, 2), "im2col"),  # stride 2: plain im2col
        ("kernel_rows", (2, 3), (1, 2), "im2col"),
    ],
)
def test_conv_path_fallbacks(algorithm, kernel, strides, expected):
    assert conv_path(algorithm, (2, 9, 9, 4), (*kernel, 4, 8), strides) == expected


def test_auto_picks_per_vgg16_layer():
    """block1_conv1 (3 channels): kernel rows; from block1_conv2 on: F(2x2, 3x3).
    Never F(4x4, 3x3), which rounds more: it is only used when asked for."""
    assert auto_path((8, 224, 224, 3), (3, 3, 3, 64), (1, 1)) == "kernel_rows"
    for side, c, f in ((224, 64, 64), (112, 64, 128), (56, 256, 256), (14, 512, 512), (7, 512, 512)):
        assert auto_path((8, side, side, c), (3, 3, c, f), (1, 1)) == "winograd2"
    assert auto_path((8, 56, 56, 256), (3, 3, 256, 256), (2, 2)) == "im2col"
    assert auto_path((8, 28, 28, 16), (3, 3, 16, 16), (1, 1)) == "im2col"  # few channels, small map
    assert auto_path((1, 4, 4, 512), (3, 3, 512, 512), (1, 1)) == "im2col"  # maps below 7x7
    assert auto_path((8, 56, 56, 16), (5, 5, 16, 16), (1, 1)) == "kernel_rows"
    assert conv_path(None, (8, 56, 56, 256), (3, 3, 256, 256), (1, 1)) == "winograd2"  # default: auto


def test_im2col_is_exactly_the_plain_product():
    """'im2col' runs im2col + one matrix product, nothing else: bit for bit, also on big maps."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 33, 34, 16)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 16, 128)).astype(np.float32)
    out, cache = conv2d_forward(x, kernel, None, (1, 1), "same", "im2col")
    assert cache.algorithm == "im2col"
    cols = im2col(pad_input(x, conv_pads(33, 34, 3, 3, (1, 1), "same")), 3, 3)
    np.testing.assert_array_equal(out.reshape(-1, 128), cols @ kernel.reshape(-1, 128))
    layer = Conv2D(128, 3, padding="same", algorithm="im2col")
    layer.build(x.shape)
    layer.forward(x)
    assert layer._cache[0].algorithm == "im2col"
    layer.clear_cache()
    with config.using_conv_algorithm("im2col"):
        plain = Conv2D(128, 3, padding="same")
        plain.build(x.shape)
        plain.forward(x)
        assert plain._cache[0].algorithm == "im2col"


@pytest.mark.parametrize(
    "shape, kernel_hw, padding",
    [
        ((2, 7, 9, 3), (3, 3), "same"),
        ((2, 6, 7, 3), (2, 3), "same"),
        ((1, 8, 5, 2), (1, 1), "valid"),
        ((3, 9, 8, 2), (3, 2), "valid"),
    ],
)
def test_kernel_rows_forward_and_backward_equal_the_naive_loops(shape, kernel_hw, padding):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape)
    kernel = rng.standard_normal((*kernel_hw, shape[-1], 4))
    bias = rng.standard_normal(4)
    out, cache = conv2d_forward(x, kernel, bias, (1, 1), padding, "kernel_rows")
    assert cache.algorithm == "kernel_rows"
    np.testing.assert_allclose(out, conv2d_forward_naive(x, kernel, bias, (1, 1), padding), atol=1e-11)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(
        conv2d_backward(dout, cache), conv2d_backward_naive(dout, x, kernel, (1, 1), padding)
    ):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-11)


@pytest.mark.parametrize("algorithm", FAST)
def test_backward_skips_what_is_not_asked_for(algorithm):
    rng = np.random.default_rng(1)
    x, kernel = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((3, 3, 3, 2))
    out, cache = conv2d_forward(x, kernel, None, (1, 1), "same", algorithm)
    dout = rng.standard_normal(out.shape)
    dx, dk, db = conv2d_backward(dout, cache)
    only_w = conv2d_backward(dout, cache, need_input_grad=False)
    only_x = conv2d_backward(dout, cache, need_weight_grads=False)
    assert only_w[0] is None and only_x[1] is None and only_x[2] is None
    np.testing.assert_array_equal(only_w[1], dk)
    np.testing.assert_array_equal(only_x[0], dx)


@pytest.mark.parametrize("algorithm", FAST)
def test_results_are_bit_identical_for_any_number_of_threads(algorithm):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 17, 19, 8)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 8, 6)).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        with config.using_num_threads(threads):
            out, cache = conv2d_forward(x, kernel, None, (1, 1), "same", algorithm)
            results.append((out, *conv2d_backward(out, cache)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_parallel_map_and_split():
    assert split(5, 2) == [slice(0, 2), slice(2, 5)]
    assert split(1, 4) == [slice(0, 1)]
    with config.using_num_threads(2):
        assert parallel_map(lambda i: i * i, range(5)) == [0, 1, 4, 9, 16]
        # Nested calls run serially in the worker instead of waiting for the pool.
        assert parallel_map(lambda i: sum(parallel_map(abs, [-i, i])), range(3)) == [0, 2, 4]
    with pytest.raises(ValueError, match="positive int"):
        config.set_num_threads(0)


def test_layer_uses_its_algorithm_and_the_global_one():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 7, 3)).astype(np.float32)
    a = Conv2D(4, 3, padding="same", activation="relu")
    b = Conv2D(4, 3, padding="same", activation="relu", algorithm="winograd2")
    a.build(x.shape)
    b.build(x.shape)
    b.set_weights(a.get_weights())
    ya = a(x)
    np.testing.assert_allclose(b(x), ya, rtol=1e-5, atol=1e-5)
    for name in config.CONV_ALGORITHMS:
        with config.using_conv_algorithm(name):
            np.testing.assert_allclose(a(x), ya, rtol=1e-5, atol=1e-5)
    c = Conv2D(2, 1, algorithm="winograd")  # 1x1: falls back quietly
    assert c(x).shape == (2, 9, 7, 2)


@pytest.mark.parametrize("padding, pool, strides", [("valid", (2, 2), None), ("same", (3, 3), (2, 2))])
def test_max_pool_is_bit_identical_for_any_number_of_threads(padding, pool, strides):
    from numvgg.ops.pooling import maxpool2d_backward, maxpool2d_forward

    rng = np.random.default_rng(4)
    x = rng.integers(0, 4, (5, 9, 8, 3)).astype(np.float32)  # many ties
    results = []
    for threads in (1, 2, 3):
        with config.using_num_threads(threads):
            out, cache = maxpool2d_forward(x, pool, strides, padding)
            fast, _ = maxpool2d_forward(x, pool, strides, padding, need_cache=False)
            results.append((out, fast, cache.argmax, maxpool2d_backward(out, cache)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_im2col_cache_keeps_the_four_fields_students_unpack():
    """Exercises unpack ``x, kernel, strides, pads = cache``; the fast paths' cache
    starts with the same four fields, and a plain 4-tuple still means im2col."""
    from numvgg.ops.conv import ConvCache, FastConvCache

    rng = np.random.default_rng(5)
    x, kernel = rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((3, 3, 3, 2))
    out, cache = conv2d_forward(x, kernel, None, (1, 1), "same", "im2col")
    assert type(cache) is ConvCache and len(cache) == 4 and cache.algorithm == "im2col"
    _, fast = conv2d_forward(x, kernel, None, (1, 1), "same", "winograd2")
    assert isinstance(fast, FastConvCache) and fast.algorithm == "winograd2"
    assert fast[0] is x and fast[1] is kernel and fast[2:4] == cache[2:4]
    dout = rng.standard_normal(out.shape)
    for got, want in zip(conv2d_backward(dout, tuple(cache)), conv2d_backward(dout, cache)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_thread_pool_works_in_a_forked_child():
    """A child forked after the pool started (a data-loading worker, say) gets a new pool."""
    import os

    with config.using_num_threads(2):
        assert parallel_map(abs, [-1, -2]) == [1, 2]  # the parent's pool is running
        pid = os.fork()
        if pid == 0:  # the child
            ok = parallel_map(abs, [-3, -4]) == [3, 4]
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
