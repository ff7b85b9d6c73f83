"""Merge layers (Concatenate, Add, Multiply, Average): float64 gradient checks with lists
of inputs, Keras parity forward and backward, and shape errors."""

from __future__ import annotations

import numpy as np
import pytest

from numvgg.debug.gradcheck import numerical_gradient_array, rel_error
from numvgg.errors import ShapeError
from numvgg.layers import Add, Average, Concatenate, Input, Multiply

CASES = [
    (lambda: Concatenate(), [(2, 3, 4, 5), (2, 3, 4, 2)]),
    (lambda: Concatenate(axis=1), [(2, 3, 4), (2, 1, 4), (2, 2, 4)]),
    (lambda: Add(), [(2, 3, 4)] * 3),
    (lambda: Average(), [(3, 5)] * 2),
    (lambda: Multiply(), [(2, 3, 4)] * 3),
]
IDS = ["concat-channels", "concat-axis1-three", "add-three", "average", "multiply-three"]


@pytest.mark.parametrize("make,shapes", CASES, ids=IDS)
def test_merge_gradients_match_finite_differences(make, shapes):
    rng = np.random.default_rng(0)
    layer = make()
    layer.dtype = np.dtype("float64")
    xs = [rng.standard_normal(s) for s in shapes]
    out = layer(xs)
    dout = rng.standard_normal(out.shape)
    grads = layer.backward(dout)
    assert len(grads) == len(xs)
    for i, x in enumerate(xs):
        numeric = numerical_gradient_array(lambda _: layer(xs, keep_cache=False), x, dout)
        assert rel_error(grads[i], numeric) < 1e-7


@pytest.mark.keras
@pytest.mark.parametrize("make,shapes", CASES, ids=IDS)
def test_merge_layers_match_keras(make, shapes, keras, tf):
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    layer = make()
    out = layer(xs)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    grads = layer.backward(dout)
    k_layer = getattr(keras.layers, type(layer).__name__)(
        **({"axis": layer.axis} if hasattr(layer, "axis") else {})
    )
    ts = [tf.constant(x) for x in xs]
    with tf.GradientTape() as tape:
        for t in ts:
            tape.watch(t)
        k_out = k_layer(ts)
        loss = tf.reduce_sum(k_out * dout)
    k_grads = tape.gradient(loss, ts)
    np.testing.assert_allclose(out, k_out.numpy(), rtol=1e-6, atol=1e-6)
    for g, kg in zip(grads, k_grads):
        np.testing.assert_allclose(g, kg.numpy(), rtol=1e-6, atol=1e-6)


def test_shape_errors_name_the_layer_and_the_shapes():
    a, b = Input((4, 5)), Input((3, 5))
    with pytest.raises(
        ShapeError,
        match=r"Add 'bad_add' needs inputs of one shape; received "
        r"\[\(None, 4, 5\), \(None, 3, 5\)\]",
    ):
        Add(name="bad_add")([a, b])
    with pytest.raises(ShapeError, match="every axis but the concatenation axis"):
        Concatenate(axis=-1)([a, b])
    with pytest.raises(ValueError, match="list of at least 2 inputs"):
        Concatenate()(a)
