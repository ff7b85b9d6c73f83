"""The fast ReLU and max-pool backward: the same numbers as the naive loops and
as TensorFlow, also where dout holds NaN, inf or negative values under a mask."""

import numpy as np
import pytest

from numvgg.ops.activations import relu_backward, relu_forward
from numvgg.ops.pooling import maxpool2d_backward, maxpool2d_backward_naive, maxpool2d_forward

SPECIAL = np.array([np.nan, np.inf, -np.inf, -1.0, 2.0, 0.0], dtype=np.float32)


def test_relu_backward_is_dout_times_mask_even_for_special_values():
    z = np.array([-1.0, -1.0, -1.0, -1.0, 1.0, 1.0], dtype=np.float32)
    _, mask = relu_forward(z)
    dx = relu_backward(SPECIAL, mask)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, [np.nan, np.nan, np.nan, 0.0, 2.0, 0.0])
    assert np.signbit(dx[3])  # -1 * 0 = -0.0, as TensorFlow gives


@pytest.mark.keras
def test_relu_backward_matches_tensorflows_relugrad(keras, tf, rng):
    z = rng.standard_normal((2, 5, 6, 8)).astype(np.float32)
    z[0, 0, 0, :2] = 0.0  # exactly 0: no gradient, in both
    dout = rng.standard_normal(z.shape).astype(np.float32)
    dout[0, 0, :, 0] = np.nan
    dout[1, 1, :, 1] = np.inf
    _, mask = relu_forward(z)
    ours = relu_backward(dout, mask)
    theirs = tf.raw_ops.ReluGrad(gradients=dout, features=z).numpy()
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))


@pytest.mark.parametrize(
    "x_shape, pool, strides, padding",
    [
        ((2, 8, 6, 3), (2, 2), None, "valid"),  # VGG's pool: the views tile the map
        ((3, 7, 9, 2), (2, 2), None, "valid"),  # an odd edge is left out, gets zero
        ((2, 7, 8, 3), (2, 2), (3, 3), "valid"),  # gaps between windows
        ((2, 7, 8, 2), (3, 3), (2, 2), "valid"),  # overlapping windows add up
    ],
)
def test_maxpool_backward_with_nan_and_inf_equals_the_naive_loop(x_shape, pool, strides, padding, rng):
    x = rng.standard_normal(x_shape)
    out, cache = maxpool2d_forward(x, pool, strides, padding)
    dout = rng.standard_normal(out.shape)
    dout[0, 0, 0, 0] = np.nan
    dout[-1, -1, -1, -1] = np.inf
    got = maxpool2d_backward(dout, cache)
    # (overlaps add in another order: equal up to rounding)
    np.testing.assert_allclose(got, maxpool2d_backward_naive(dout, x, pool, strides), rtol=1e-12)
    assert np.isnan(got).sum() == 1 and np.isinf(got).sum() == 1  # only the winners


@pytest.mark.keras
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_maxpool_backward_matches_tensorflow_with_nan_and_inf(padding, keras, tf, rng):
    x = rng.standard_normal((2, 9, 8, 4)).astype(np.float32)
    out, cache = maxpool2d_forward(x, (2, 2), None, padding)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dout[0, 1, 1, 0] = np.nan
    dout[1, -1, -1, 3] = -np.inf
    theirs = tf.raw_ops.MaxPoolGrad(
        orig_input=x,
        orig_output=out,
        grad=dout,
        ksize=[1, 2, 2, 1],
        strides=[1, 2, 2, 1],
        padding=padding.upper(),
    ).numpy()
    np.testing.assert_array_equal(maxpool2d_backward(dout, cache), theirs)
