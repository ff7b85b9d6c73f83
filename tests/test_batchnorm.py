"""BatchNormalization against Keras 3: forward, backward, moving statistics, trainable=False."""

from __future__ import annotations

import numpy as np
import pytest

from numvgg.debug.gradcheck import TOLERANCE, numerical_gradient_array, rel_error
from numvgg.layers.normalization import BatchNormalization


def _gradcheck(layer, shape, training, seed=0):
    """Float64 finite differences for x and the trainable weights (moving statistics get no gradient)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3 + 1
    layer.build((None, *shape[1:]))
    for name, w in layer.params.items():
        w[...] = rng.uniform(0.5, 1.5, w.shape) if name != "moving_mean" else rng.standard_normal(w.shape)
    out = layer.forward(x, training=training)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    grads = dict(zip(layer.params, layer.grads))
    errors = {"x": rel_error(dx, numerical_gradient_array(lambda v: layer.forward(v, training), x, dout))}
    for name, w in layer.params.items():
        if name in layer.non_trainable_param_names:
            assert grads[name] is None
            continue
        errors[name] = rel_error(
            grads[name], numerical_gradient_array(lambda _: layer.forward(x, training), w, dout)
        )
    layer.clear_cache()
    return errors


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kwargs", [{}, dict(center=False), dict(scale=False), dict(axis=1)])
def test_gradcheck_float64(training, kwargs):
    errors = _gradcheck(BatchNormalization(dtype="float64", **kwargs), (4, 3, 5, 2), training)
    assert max(errors.values()) < TOLERANCE, errors


def test_weights_in_keras_order_and_non_trainable_names():
    layer = BatchNormalization()
    layer.build((None, 4, 4, 3))
    assert layer.weight_names == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert layer.non_trainable_param_names == {"moving_mean", "moving_variance"}
    assert len(layer.trainable_weights) == 2 and len(layer.non_trainable_weights) == 2
    no_scale = BatchNormalization(scale=False)
    no_scale.build((None, 3))
    assert no_scale.weight_names == ["beta", "moving_mean", "moving_variance"]


def _pair(keras, shape, seed, **kwargs):
    rng = np.random.default_rng(seed)
    ours = BatchNormalization(**kwargs)
    theirs = keras.layers.BatchNormalization(**kwargs)
    theirs.build(shape)
    ours.build((None, *shape[1:]))
    weights = [rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in ours.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs


@pytest.mark.keras
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("trainable", [True, False])
def test_forward_backward_equal_keras(keras, tf, rng, training, trainable):
    shape = (4, 5, 6, 3)
    ours, theirs = _pair(keras, shape, 1, momentum=0.9, epsilon=1e-3)
    ours.trainable = theirs.trainable = trainable
    x = (rng.standard_normal(shape) * 4 + 2).astype(np.float32)
    out = ours.forward(x, training=training)
    dout = rng.standard_normal(shape).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        expected = theirs(xt, training=training)
        loss = tf.reduce_sum(expected * dout)
    gradients = tape.gradient(loss, [xt, theirs.gamma, theirs.beta])
    np.testing.assert_allclose(out, expected.numpy(), rtol=0, atol=1e-5)
    dx = ours.backward(dout)
    for mine, reference in zip([dx, *ours.grads[:2]], gradients):
        reference = reference.numpy()
        assert np.abs(mine - reference).max() <= 1e-5 * max(1.0, np.abs(reference).max())
    for mine, reference in zip(ours.get_weights()[2:], theirs.get_weights()[2:]):  # moving stats
        np.testing.assert_allclose(mine, reference, rtol=1e-6, atol=1e-7)


@pytest.mark.keras
def test_moving_statistics_after_sgd_steps_equal_keras(keras, tf, rng):
    """Five steps by hand in both: forward(training=True), backward, SGD on gamma and beta."""
    shape, lr = (6, 4, 4, 3), 0.1
    ours, theirs = _pair(keras, shape, 2, momentum=0.8)
    for step in range(5):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
        dout = rng.standard_normal(shape).astype(np.float32)
        ours.forward(x, training=True)
        ours.backward(dout)
        for name, grad in zip(ours.params, ours.grads):
            if grad is not None:
                ours.params[name] -= lr * grad
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(theirs(x, training=True) * dout)
        for variable, grad in zip(
            [theirs.gamma, theirs.beta], tape.gradient(loss, [theirs.gamma, theirs.beta])
        ):
            variable.assign(variable - lr * grad)
    for name, mine, reference in zip(ours.weight_names, ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-6, err_msg=name)
    assert not np.allclose(ours.params["moving_mean"], 0)


def test_frozen_layer_uses_and_keeps_moving_statistics(rng):
    layer = BatchNormalization()
    x = rng.standard_normal((8, 3)).astype(np.float32) * 5 + 3
    layer.forward(x, training=True)  # moves the statistics once
    before = layer.get_weights()
    layer.trainable = False
    out = layer.forward(x, training=True)  # inference mode, as Keras >= 2.1
    inference = layer.forward(x, training=False)
    np.testing.assert_array_equal(out, inference)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    with pytest.raises(ValueError, match="momentum"):
        BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        BatchNormalization(epsilon=0)
    with pytest.raises(ValueError, match="axis"):
        BatchNormalization(axis=[1, 2])
