"""numvgg.ops.pooling: max-pool (fast vs naive, tie rule, odd sizes, 'same')
and global average / max pooling."""

import numpy as np
import pytest

from numvgg.debug.gradcheck import check_op
from numvgg.ops.pooling import (
    global_average_pooling2d_backward,
    global_average_pooling2d_forward,
    global_max_pooling2d_backward,
    global_max_pooling2d_forward,
    maxpool2d_backward,
    maxpool2d_backward_naive,
    maxpool2d_forward,
    maxpool2d_forward_naive,
)

# (input shape, pool_size, strides)
VALID_CONFIGS = [
    ((2, 4, 6, 3), (2, 2), None),  # VGG's pool, even sizes
    ((2, 7, 5, 3), (2, 2), None),  # odd sizes floor: 7x5 -> 3x2
    ((3, 7, 8, 2), (3, 3), (2, 2)),  # overlapping windows
    ((1, 6, 7, 4), (1, 2), (1, 2)),
    ((2, 5, 9, 1), (2, 3), (1, 2)),
]


@pytest.mark.parametrize("x_shape, pool, strides", VALID_CONFIGS)
def test_maxpool_fast_matches_naive(x_shape, pool, strides, rng):
    x = rng.standard_normal(x_shape)
    out, cache = maxpool2d_forward(x, pool, strides, "valid")
    np.testing.assert_array_equal(out, maxpool2d_forward_naive(x, pool, strides))
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(
        maxpool2d_backward(dout, cache), maxpool2d_backward_naive(dout, x, pool, strides), rtol=1e-12
    )


@pytest.mark.parametrize("x_shape, pool, strides", VALID_CONFIGS)
def test_maxpool_gradcheck(x_shape, pool, strides, rng):
    x = rng.standard_normal(x_shape)  # continuous values: no ties, no kinks within h
    errors = check_op(
        maxpool2d_forward,
        maxpool2d_backward,
        x,
        names=("x",),
        seed=3,
        pool_size=pool,
        strides=strides,
        padding="valid",
    )
    assert errors["x"] < 1e-6, errors


@pytest.mark.parametrize(
    "x_shape, pool, strides",
    [
        ((2, 5, 7, 3), (2, 2), None),
        ((2, 6, 5, 3), (3, 3), (2, 2)),
        ((1, 5, 5, 2), (2, 3), (2, 1)),
    ],
)
def test_maxpool_same_gradcheck(x_shape, pool, strides, rng):
    x = rng.standard_normal(x_shape)
    errors = check_op(
        maxpool2d_forward,
        maxpool2d_backward,
        x,
        names=("x",),
        seed=4,
        pool_size=pool,
        strides=strides,
        padding="same",
    )
    assert errors["x"] < 1e-6, errors


def test_odd_sizes_floor_like_keras(rng):
    x = rng.standard_normal((1, 7, 7, 2))
    out, cache = maxpool2d_forward(x)
    assert out.shape == (1, 3, 3, 2)
    # The last row and column are in no window: they never get gradient.
    dx = maxpool2d_backward(np.ones_like(out), cache)
    assert not dx[:, 6, :, :].any() and not dx[:, :, 6, :].any()
    assert dx.sum() == out.size


def test_known_answer_linspace():
    # x[i, j] = 4 i + j grows to the right and down: every window's max is its bottom-right.
    x = np.linspace(0.0, 15.0, 16).reshape(1, 4, 4, 1)
    out, cache = maxpool2d_forward(x)
    np.testing.assert_array_equal(out[0, :, :, 0], [[5, 7], [13, 15]])
    dout = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    dx = maxpool2d_backward(dout, cache)[0, :, :, 0]
    np.testing.assert_array_equal(dx, [[0, 0, 0, 0], [0, 1, 0, 2], [0, 0, 0, 0], [0, 3, 0, 4]])


def test_tie_rule_first_maximum_in_row_major_order():
    """All-equal windows: the whole gradient goes to each window's top-left element."""
    x = np.full((2, 4, 6, 3), 0.25)
    out, cache = maxpool2d_forward(x)
    dout = np.arange(1.0, 1.0 + out.size).reshape(out.shape)
    dx = maxpool2d_backward(dout, cache)
    expected = np.zeros_like(x)
    expected[:, 0::2, 0::2, :] = dout
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_array_equal(dx, maxpool2d_backward_naive(dout, x))


def test_tie_rule_top_right_beats_bottom_left():
    # Two maxima at (0, 1) and (1, 0): row-major order reaches (0, 1) first.
    x = np.array([[0.0, 5.0], [5.0, 1.0]]).reshape(1, 2, 2, 1)
    out, cache = maxpool2d_forward(x)
    dx = maxpool2d_backward(np.full_like(out, 3.0), cache)[0, :, :, 0]
    np.testing.assert_array_equal(dx, [[0, 3], [0, 0]])


def test_overlapping_windows_add_up():
    # 3x3 windows at stride 1 on a 4x4 map with one peak in the middle: all four windows
    # pick the same element, so its gradient is the sum of the four douts.
    x = np.zeros((1, 4, 4, 1))
    x[0, 1, 2, 0] = 9.0
    out, cache = maxpool2d_forward(x, (3, 3), (1, 1))
    dx = maxpool2d_backward(np.array([1.0, 10.0, 100.0, 1000.0]).reshape(out.shape), cache)
    assert dx[0, 1, 2, 0] == 1111.0 and dx.sum() == 1111.0


def test_same_padding_never_picks_the_padding():
    # All-negative 5x5 input, 2x2 'same' pool -> 3x3; zero padding would win the border windows.
    x = -1.0 - np.linspace(0.0, 24.0, 25).reshape(1, 5, 5, 1)  # x[i, j] = -1 - (5 i + j)
    out, cache = maxpool2d_forward(x, padding="same")
    assert out.shape == (1, 3, 3, 1)
    # The max of each window is its top-left element (values decrease right and down).
    np.testing.assert_array_equal(out[0, :, :, 0], x[0, 0::2, 0::2, 0])
    dx = maxpool2d_backward(np.ones_like(out), cache)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(
        dx[0, :, :, 0] != 0, np.isin(np.arange(25).reshape(5, 5), [0, 2, 4, 10, 12, 14, 20, 22, 24])
    )


def test_maxpool_does_not_modify_dout(rng):
    x = rng.standard_normal((1, 4, 4, 2))
    out, cache = maxpool2d_forward(x)
    dout = rng.standard_normal(out.shape)
    before = dout.copy()
    maxpool2d_backward(dout, cache)
    np.testing.assert_array_equal(dout, before)


# -- global pooling --------------------------------------------------------------------


def test_global_average_known_answer_and_gradcheck(rng):
    x = np.linspace(0.0, 23.0, 24).reshape(1, 2, 4, 3)  # channel c holds c, c+3, ..., c+21
    out, cache = global_average_pooling2d_forward(x)
    np.testing.assert_allclose(out, [[10.5, 11.5, 12.5]])
    dx = global_average_pooling2d_backward(np.array([[8.0, 16.0, 24.0]]), cache)
    np.testing.assert_allclose(dx, np.broadcast_to([1.0, 2.0, 3.0], x.shape))

    errors = check_op(
        global_average_pooling2d_forward,
        global_average_pooling2d_backward,
        rng.standard_normal((2, 5, 7, 3)),
        names=("x",),
    )
    assert errors["x"] < 1e-6, errors


def test_global_max_known_answer_tie_and_gradcheck(rng):
    x = np.linspace(0.0, 23.0, 24).reshape(1, 2, 4, 3)
    out, cache = global_max_pooling2d_forward(x)
    np.testing.assert_array_equal(out, [[21.0, 22.0, 23.0]])
    dx = global_max_pooling2d_backward(np.array([[1.0, 2.0, 3.0]]), cache)
    expected = np.zeros_like(x)
    expected[0, 1, 3, :] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(dx, expected)

    # Ties: like TensorFlow's reduce_max, tied maxima share the gradient equally.
    x_tie = np.zeros((1, 3, 2, 1))
    x_tie[0, 0, 1, 0] = x_tie[0, 2, 0, 0] = 7.0
    out, cache = global_max_pooling2d_forward(x_tie)
    dx = global_max_pooling2d_backward(np.array([[5.0]]), cache)
    assert dx[0, 0, 1, 0] == 2.5 and dx[0, 2, 0, 0] == 2.5 and dx.sum() == 5.0

    errors = check_op(
        global_max_pooling2d_forward,
        global_max_pooling2d_backward,
        rng.standard_normal((2, 5, 7, 3)),
        names=("x",),
    )
    assert errors["x"] < 1e-6, errors
