"""numvgg.ops.image: resize against tf.image.resize (forward) and GradientTape (backward)."""

from __future__ import annotations

import numpy as np
import pytest

from numvgg.debug.gradcheck import TOLERANCE, check_op
from numvgg.ops import image as image_ops

SIZES = [(17, 29), (4, 5), (6, 20), (9, 13)]  # up, down, mixed, same


@pytest.mark.keras
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_resize_equals_tf_forward_bit_for_bit_and_backward(tf, rng, size, method):
    x = rng.random((2, 9, 13, 3)).astype(np.float32)
    out, cache = image_ops.resize_forward(x, size, method)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        reference = tf.image.resize(xt, size, method=method)
        dout = rng.standard_normal(reference.shape).astype(np.float32)
        loss = tf.reduce_sum(reference * dout)
    np.testing.assert_array_equal(out, reference.numpy())
    dx = image_ops.resize_backward(dout, cache, method)
    expected = tape.gradient(loss, xt).numpy()
    assert np.abs(dx - expected).max() <= 1e-6 * max(1.0, np.abs(expected).max())


@pytest.mark.parametrize("size", SIZES)
def test_resize_bilinear_gradcheck(rng, size):
    x = rng.standard_normal((1, 9, 13, 2))
    errors = check_op(image_ops.resize_bilinear_forward, image_ops.resize_bilinear_backward, x, size=size)
    assert max(errors.values()) < TOLERANCE


@pytest.mark.parametrize("fill_mode", image_ops.FILL_MODES)
def test_affine_gradcheck(rng, fill_mode):
    x = rng.standard_normal((2, 5, 6, 2))
    matrices = image_ops.rotation_matrices(np.array([33.0, -140.0]), 5, 6)
    matrices[1, [2, 5]] += [7.3, -2.1]  # far outside: exercises the fill mode
    errors = check_op(
        image_ops.affine_transform_forward,
        image_ops.affine_transform_backward,
        x,
        transforms=matrices,
        fill_mode=fill_mode,
    )  # a fill constant only adds rounding noise
    assert max(errors.values()) < TOLERANCE


@pytest.mark.keras
@pytest.mark.parametrize("fill_mode", image_ops.FILL_MODES)
@pytest.mark.parametrize("interpolation", image_ops.INTERPOLATIONS)
def test_affine_equals_keras_ops(keras, rng, fill_mode, interpolation):
    x = rng.random((3, 9, 13, 2)).astype(np.float32)
    matrices = image_ops.rotation_matrices(np.array([30.0, -100.0, 200.0]), 9, 13)
    matrices[1] = image_ops.zoom_matrices([1.7], [0.6], 9, 13)[0]
    matrices[2, [2, 5]] += [-15.3, 4.2]  # more than an image away
    ours, _ = image_ops.affine_transform_forward(x, matrices, interpolation, fill_mode, 0.5)
    theirs = keras.ops.image.affine_transform(x, matrices, interpolation, fill_mode, 0.5)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-6)


def test_bad_fill_mode_and_interpolation():
    x = np.zeros((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match=r"fill_mode.*'mirror'.*'reflect', 'wrap', 'constant', 'nearest'"):
        image_ops.affine_transform_forward(x, np.eye(3).ravel()[:8], fill_mode="mirror")
    with pytest.raises(ValueError, match=r"interpolation.*'area'"):
        image_ops.resize_forward(x, (2, 2), "area")
