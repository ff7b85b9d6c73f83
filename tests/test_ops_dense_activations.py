"""numvgg.ops.dense and numvgg.ops.activations: dense, flatten, dropout and
the activation functions, including their numerics at extreme inputs."""

import numpy as np
import pytest

from numvgg.debug.gradcheck import check_op
from numvgg.ops import activations as act
from numvgg.ops.dense import (
    dense_backward,
    dense_forward,
    dropout_backward,
    dropout_forward,
    flatten_backward,
    flatten_forward,
)

# -- dense -------------------------------------------------------------------------


@pytest.mark.parametrize("x_shape", [(3, 7), (2, 4, 7)])  # (N, D_in) and (N, T, D_in)
def test_dense_gradcheck(x_shape, rng):
    x = rng.standard_normal(x_shape)
    kernel = rng.standard_normal((7, 5))
    bias = rng.standard_normal(5)
    errors = check_op(dense_forward, dense_backward, x, kernel, bias, names=("x", "kernel", "bias"))
    assert set(errors) == {"x", "kernel", "bias"}
    assert max(errors.values()) < 1e-6, errors


def test_dense_known_answer():
    x = np.linspace(0.0, 5.0, 6).reshape(2, 3)  # rows [0 1 2], [3 4 5]
    kernel = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])  # column sums, then j-weighted
    out, cache = dense_forward(x, kernel, np.array([0.5, -1.0]))
    np.testing.assert_allclose(out, [[3.5, 4.0], [12.5, 13.0]])
    dx, dk, db = dense_backward(np.array([[1.0, 0.0], [0.0, 1.0]]), cache)
    np.testing.assert_allclose(dx, [[1, 1, 1], [0, 1, 2]])
    np.testing.assert_allclose(dk, [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_allclose(db, [1, 1])


def test_dense_backward_flags(rng):
    x, kernel = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    out, cache = dense_forward(x, kernel, None)
    dx, dk, db = dense_backward(np.ones_like(out), cache, need_weight_grads=False)
    assert dk is None and db is None and dx.shape == x.shape
    dx, dk, db = dense_backward(np.ones_like(out), cache, need_input_grad=False)
    assert dx is None and dk.shape == kernel.shape and db.shape == (2,)


# -- flatten -----------------------------------------------------------------------


def test_flatten_is_channels_last_row_major():
    x = np.linspace(0.0, 23.0, 24).reshape(2, 2, 2, 3)
    out, shape = flatten_forward(x)
    np.testing.assert_array_equal(out, np.arange(24.0).reshape(2, 12))
    assert shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(flatten_backward(out, shape), x)


def test_flatten_lines_up_with_fc1_rows():
    """fc1's kernel has 25088 = 7*7*512 rows; row (h*7 + w)*512 + c multiplies block5's (h, w, c)."""
    x = np.zeros((1, 7, 7, 512), dtype=np.float32)
    x[0, 3, 5, 100] = 1.0
    flat, _ = flatten_forward(x)
    assert flat.shape == (1, 25088)
    assert np.flatnonzero(flat[0]).tolist() == [(3 * 7 + 5) * 512 + 100]


def test_flatten_gradcheck(rng):
    errors = check_op(flatten_forward, flatten_backward, rng.standard_normal((2, 3, 4, 5)), names=("x",))
    assert errors["x"] < 1e-6


# -- dropout -----------------------------------------------------------------------


def test_dropout_is_identity_at_inference(rng):
    x = rng.standard_normal((4, 5))
    out, cache = dropout_forward(x, 0.5, training=False, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out, x)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_dropout_training_zeroes_and_scales(rng):
    x = rng.standard_normal((200, 50))
    out, cache = dropout_forward(x, 0.3, training=True, rng=np.random.default_rng(0))
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.7, rtol=1e-12)
    assert abs(kept.mean() - 0.7) < 0.02  # 10,000 draws: std of the mean ~0.005
    dout = rng.standard_normal(x.shape)
    dx = dropout_backward(dout, cache)
    np.testing.assert_allclose(dx[kept], dout[kept] / 0.7, rtol=1e-12)
    assert not dx[~kept].any()


def test_dropout_rate_zero_in_training_is_identity(rng):
    x = rng.standard_normal((3, 4))
    out, _ = dropout_forward(x, 0.0, training=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out, x)


def test_dropout_seed_repeatability(rng):
    x = rng.standard_normal((6, 7))
    a, _ = dropout_forward(x, 0.5, True, np.random.default_rng(42))
    b, _ = dropout_forward(x, 0.5, True, np.random.default_rng(42))
    c, _ = dropout_forward(x, 0.5, True, np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_keeps_float32(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    out, cache = dropout_forward(x, 0.5, True, np.random.default_rng(0))
    assert out.dtype == np.float32 and cache.mask.dtype == np.float32


# -- activations ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax", "linear"])
def test_activation_gradcheck(name, rng):
    forward, backward = act.get_activation(name)
    errors = check_op(forward, backward, rng.standard_normal((3, 5)), names=("x",), seed=11)
    assert errors["x"] < 1e-6, errors


def test_softmax_backward_equals_jacobian_product(rng):
    x = rng.standard_normal(5)
    s, cache = act.softmax_forward(x)
    jacobian = np.diag(s) - np.outer(s, s)  # ds_i/dx_j
    dout = rng.standard_normal(5)
    np.testing.assert_allclose(act.softmax_backward(dout, cache), jacobian.T @ dout, rtol=1e-12)


def test_relu_known_values_and_zero_gets_no_gradient():
    x = np.linspace(-1.0, 1.0, 5)  # [-1, -0.5, 0, 0.5, 1]
    out, mask = act.relu_forward(x)
    np.testing.assert_array_equal(out, [0, 0, 0, 0.5, 1])
    np.testing.assert_array_equal(act.relu_backward(np.ones(5), mask), [0, 0, 0, 1, 1])


def test_relu_backward_does_not_modify_dout():
    out, mask = act.relu_forward(np.array([-1.0, 2.0]))
    dout = np.array([3.0, 4.0])
    act.relu_backward(dout, mask)
    np.testing.assert_array_equal(dout, [3.0, 4.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_finite_at_extremes(dtype):
    x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype)
    # exp(1000) would overflow: make that (and inf/nan) an error; underflow to 0 is harmless.
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        s, cache = act.sigmoid_forward(x)
        ds = act.sigmoid_backward(np.ones_like(x), cache)
    assert s.dtype == dtype
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(ds))
    assert 0.0 <= float(s[0]) < 1e-300 and 0.0 <= float(s[1]) < 1e-40  # tiny, never negative or nan
    assert s[2] == 0.5 and s[-1] == 1.0 and s[-2] == 1.0
    if dtype == np.float64:
        np.testing.assert_allclose(s[1], np.exp(-100.0), rtol=1e-12)  # not rounded to 0
    assert ds[2] == 0.25 and ds[0] == 0.0 and ds[-1] == 0.0


def test_sigmoid_matches_textbook_formula_in_range(rng):
    x = rng.uniform(-20, 20, 50)
    np.testing.assert_allclose(act.sigmoid_forward(x)[0], 1 / (1 + np.exp(-x)), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_large_values(dtype):
    x = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, -1001.0, -1002.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        s, cache = act.softmax_forward(x)
    assert s.dtype == dtype and np.all(np.isfinite(s))
    e = np.exp([0.0, 1.0, 2.0])
    np.testing.assert_allclose(s[0], e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(s[1], e[::-1] / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=1e-6)


def test_tanh_is_finite_at_extremes():
    t, cache = act.tanh_forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(t, [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(act.tanh_backward(np.ones(3), cache), [0.0, 1.0, 0.0])


def test_get_activation_names():
    assert act.get_activation(None) is act.ACTIVATIONS["linear"]
    with pytest.raises(ValueError, match="Unknown activation 'swish'"):
        act.get_activation("swish")
