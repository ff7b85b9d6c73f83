"""A tiny augmented two-phase run, stepped by hand, against Keras 3 with the same fixed transforms.

A factor ``(a, a)`` makes a random layer's draw fixed (uniform on one point), in
Keras and numvgg alike, so both apply the same rotation and zoom. Each step:
forward with ``training=True`` through every layer, binary cross-entropy,
backward, plain SGD on the trainable weights. Phase 1 freezes the conv layer
and its BatchNormalization (inference mode, moving statistics untouched);
phase 2 trains everything (batch statistics, moving statistics updated).
"""

from __future__ import annotations

import numpy as np
import pytest

from numvgg.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    GlobalAveragePooling2D,
    RandomRotation,
    RandomZoom,
)
from numvgg.losses import BinaryCrossentropy

LR = 0.05


def _numvgg_layers():
    return [
        RandomRotation((0.05, 0.05), seed=0),
        RandomZoom((-0.2, -0.2), seed=0),
        Conv2D(4, 3, padding="same", activation="relu"),
        BatchNormalization(momentum=0.8),
        GlobalAveragePooling2D(),
        Dense(1, activation="sigmoid"),
    ]


def _keras_layers(keras):
    L = keras.layers
    return [
        L.RandomRotation((0.05, 0.05), seed=0),
        L.RandomZoom((-0.2, -0.2), seed=0),
        L.Conv2D(4, 3, padding="same", activation="relu"),
        L.BatchNormalization(momentum=0.8),
        L.GlobalAveragePooling2D(),
        L.Dense(1, activation="sigmoid"),
    ]


def _numvgg_step(layers, x, y):
    h = x
    for layer in layers:
        h = layer.forward(h, training=True)
    loss, grad = BinaryCrossentropy().value_and_grad(y, h)
    for layer in reversed(layers):
        grad = layer.backward(grad)
    for layer in layers:
        if layer.trainable:
            for name, g in zip(layer.params, layer.grads):
                if g is not None:
                    layer.params[name] -= LR * g
    return loss


def _keras_step(tf, keras, layers, x, y):
    with tf.GradientTape() as tape:
        h = tf.constant(x)
        for layer in layers:
            h = layer(h, training=True)
        loss = keras.losses.BinaryCrossentropy()(y, h)
    variables = [v for layer in layers for v in layer.trainable_variables]
    for variable, g in zip(variables, tape.gradient(loss, variables)):
        variable.assign(variable - LR * g)
    return float(loss)


@pytest.mark.keras
def test_two_phase_augmented_run_matches_keras(keras, tf):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (6, 10, 10, 3)).astype(np.float32)
    y = rng.integers(0, 2, (6, 1)).astype(np.float32)
    ours, theirs = _numvgg_layers(), _keras_layers(keras)
    h = x
    for a, b in zip(ours, theirs):  # build both, then copy numvgg's weights
        b.build(h.shape)
        h = a.forward(h)
        if a.params:
            b.set_weights(a.get_weights())
    bn = ours[3]
    for phase, frozen in ((1, True), (2, False)):
        for layer in (ours[2], ours[3], theirs[2], theirs[3]):
            layer.trainable = not frozen
        for step in range(3):
            batch = slice(3 * (step % 2), 3 * (step % 2) + 3)
            mine = _numvgg_step(ours, x[batch], y[batch])
            reference = _keras_step(tf, keras, theirs, x[batch], y[batch])
            assert mine == pytest.approx(reference, rel=1e-5), (phase, step)
        if frozen:
            np.testing.assert_array_equal(bn.params["moving_mean"], 0)  # inference mode: untouched
    assert not np.allclose(bn.params["moving_mean"], 0)
    for a, b in zip(ours, theirs):
        for name, mine, reference in zip(a.weight_names, a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-5, err_msg=f"{a.name}/{name}")
