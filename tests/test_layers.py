"""numvgg.layers: the layer contract of numvgg/layers/base.py, layer by layer.

build / get_weights / set_weights (all or nothing, errors naming the layer,
the weight and both shapes), forward / backward caches, dtypes, names, and
float64 gradient checks of each layer through numvgg.debug.gradcheck.
"""

import re

import numpy as np
import pytest

from numvgg.debug.gradcheck import check_layer
from numvgg.errors import ShapeError
from numvgg.layers import (
    Activation,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)

TOL = 1e-6


@pytest.mark.parametrize(
    "make_layer, input_shape",
    [
        (lambda: Conv2D(5, (3, 3), padding="same", activation="relu"), (2, 5, 7, 3)),
        (lambda: Conv2D(4, (3, 3), strides=(2, 1), padding="valid", activation="sigmoid"), (2, 7, 6, 3)),
        (lambda: Conv2D(3, (1, 2), strides=2, padding="same", use_bias=False), (3, 5, 7, 2)),
        (lambda: Dense(5, activation="tanh"), (3, 7)),
        (lambda: Dense(4, activation="softmax", use_bias=False), (2, 6)),
        (lambda: MaxPooling2D((3, 3), strides=(2, 2)), (2, 7, 8, 3)),
        (lambda: GlobalMaxPooling2D(), (3, 4, 5, 2)),
        (lambda: Activation("sigmoid"), (2, 3, 4)),
    ],
    ids=[
        "conv-same-relu",
        "conv-valid-s21-sigmoid",
        "conv-1x2-nobias",
        "dense-tanh",
        "dense-softmax-nobias",
        "maxpool-3s2",
        "global-max",
        "activation-sigmoid",
    ],
)
def test_layer_gradcheck(make_layer, input_shape):
    # Weights from a fixed seed: with whatever the global stream holds, a ReLU
    # input can land within the finite-difference step of 0 and fail by chance.
    from numvgg import initializers

    initializers.set_seed(1)
    layer = make_layer()
    layer.build((None, *input_shape[1:]))
    errors = check_layer(layer, input_shape, seed=5)
    assert set(errors) == {"x", *layer.weight_names}
    for name, err in errors.items():
        assert err < TOL, f"{layer.name}: d{name} relative error {err:.2e}"


def test_check_layer_uses_a_built_layers_own_weights():
    layer = Dense(3, activation="relu")
    layer.build((None, 4))
    before = layer.get_weights()
    errors = check_layer(layer, (2, 4), seed=1)
    assert max(errors.values()) < TOL
    for w, b in zip(layer.get_weights(), before):  # the float32 original is untouched
        np.testing.assert_array_equal(w, b)
    assert layer.dtype == np.float32


# -- build, weights ------------------------------------------------------------------


def test_build_creates_keras_shaped_weights():
    conv = Conv2D(8, (3, 2), name="c")
    assert not conv.built and conv.weights == []
    conv.build((None, 9, 9, 3))
    assert conv.weight_names == ["kernel", "bias"]
    assert [w.shape for w in conv.get_weights()] == [(3, 2, 3, 8), (8,)]
    assert conv.output_shape == (None, 7, 8, 8)
    assert conv.count_params() == 3 * 2 * 3 * 8 + 8
    assert all(w.dtype == np.float32 for w in conv.weights)

    dense = Dense(6, use_bias=False)
    dense.build((None, 10))
    assert dense.weight_names == ["kernel"] and dense.params["kernel"].shape == (10, 6)


def test_bias_starts_at_zero_and_kernel_is_glorot_uniform():
    conv = Conv2D(16, (3, 3))
    conv.build((None, 8, 8, 32))
    limit = np.sqrt(6 / (3 * 3 * 32 + 3 * 3 * 16))
    k = conv.params["kernel"]
    assert np.all(np.abs(k) <= limit) and k.std() > 0.5 * limit / np.sqrt(3)
    assert not conv.params["bias"].any()


def test_get_weights_returns_copies():
    dense = Dense(2)
    dense.build((None, 3))
    ws = dense.get_weights()
    ws[0][...] = 7.0
    assert not np.any(dense.params["kernel"] == 7.0)


def test_set_weights_round_trip_in_place_and_cast(rng):
    conv = Conv2D(4, (3, 3))
    conv.build((None, 6, 6, 2))
    kernel_obj = conv.params["kernel"]
    new = [rng.standard_normal((3, 3, 2, 4)), rng.standard_normal(4)]  # float64 in
    conv.set_weights(new)
    assert conv.params["kernel"] is kernel_obj  # written in place
    assert conv.params["kernel"].dtype == np.float32
    for got, want in zip(conv.get_weights(), new):
        np.testing.assert_allclose(got, want.astype(np.float32))


def test_set_weights_is_all_or_nothing_and_names_everything(rng):
    conv = Conv2D(4, (3, 3), name="my_conv")
    conv.build((None, 6, 6, 2))
    before = conv.get_weights()
    good_kernel = rng.standard_normal((3, 3, 2, 4))
    with pytest.raises(ShapeError) as info:
        conv.set_weights([good_kernel, np.zeros(5)])
    message = str(info.value)
    for part in ("my_conv", "bias", "(4,)", "(5,)"):
        assert part in message, message
    for w, b in zip(conv.get_weights(), before):  # the good kernel was not written either
        np.testing.assert_array_equal(w, b)

    with pytest.raises(ShapeError, match=r"'my_conv' has 2 weight\(s\).*given 1"):
        conv.set_weights([good_kernel])
    assert isinstance(ShapeError("x"), ValueError)  # catchable as Keras' ValueError


def test_input_shape_mismatch_names_both_shapes():
    conv = Conv2D(3, (3, 3), padding="same", name="probe")
    conv.forward(np.zeros((2, 5, 4, 3)))
    with pytest.raises(
        ShapeError,
        match=re.escape(
            "'probe' expects input of shape (None, 5, 4, 3) but received an array of shape (2, 5, 5, 3)"
        ),
    ):
        conv.forward(np.zeros((2, 5, 5, 3)))


@pytest.mark.parametrize(
    "make_layer, bad_shape",
    [
        (lambda: Conv2D(2, (3, 3)), (None, 2, 5, 3)),  # valid 3x3 on a 2-high map
        (lambda: Conv2D(2, (3, 3)), (None, 5, 3)),  # not 4-D
        (lambda: MaxPooling2D(), (None, 1, 4, 3)),
        (lambda: GlobalAveragePooling2D(), (None, 4, 3)),
        (lambda: Dense(2), (None, None)),
    ],
)
def test_build_rejects_impossible_shapes(make_layer, bad_shape):
    with pytest.raises(ValueError):
        make_layer().build(bad_shape)


@pytest.mark.parametrize(
    "make_layer, message",
    [
        (lambda: Conv2D(0, 3), "filters"),
        (lambda: Conv2D(2, 3, padding="full"), "padding"),
        (lambda: Conv2D(2, (3, 3, 3)), "kernel_size"),
        (lambda: Conv2D(2, 3, activation=np.tanh), "activation by name"),
        (lambda: Dense(0), "units"),
        (lambda: Dense(2, activation="swish"), "Unknown activation"),
        (lambda: Dense(2, kernel_initializer="lecun"), "Unknown initializer"),
        (lambda: Dropout(1.0), "rate"),
        (lambda: MaxPooling2D(padding="full"), "padding"),
    ],
)
def test_bad_arguments_raise_clear_errors(make_layer, message):
    with pytest.raises(ValueError, match=message):
        make_layer()


# -- forward / backward --------------------------------------------------------------


def test_forward_casts_input_to_the_layer_dtype(rng):
    dense = Dense(3)
    out = dense.forward(rng.standard_normal((2, 4)))  # float64 in, like a NumPy user's data
    assert out.dtype == np.float32
    dx = dense.backward(np.ones((2, 3), dtype=np.float32))
    assert dx.dtype == np.float32
    assert [g.dtype for g in dense.grads] == [np.float32, np.float32]


def test_backward_needs_a_forward_and_uses_it_once(rng):
    dense = Dense(3, name="once")
    dense.build((None, 4))
    with pytest.raises(RuntimeError, match="'once'.*before forward"):
        dense.backward(np.ones((2, 3)))
    dense.forward(rng.standard_normal((2, 4)))
    dense.backward(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(RuntimeError, match="called twice"):
        dense.backward(np.ones((2, 3), dtype=np.float32))


def test_grads_follow_get_weights_order_and_flags(rng):
    conv = Conv2D(3, (3, 3), padding="same")
    x = rng.standard_normal((2, 4, 5, 2)).astype(np.float32)
    out = conv.forward(x)
    dx = conv.backward(np.ones_like(out))
    assert [g.shape for g in conv.grads] == [w.shape for w in conv.get_weights()]
    assert dx.shape == x.shape

    conv.forward(x)
    assert conv.backward(np.ones_like(out), need_input_grad=False) is None
    assert len(conv.grads) == 2
    conv.forward(x)
    conv.backward(np.ones_like(out), need_weight_grads=False)
    assert conv.grads == []


def test_from_logits_skips_the_activation_derivative(rng):
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 2)).astype(np.float32)
    sig = Dense(2, activation="sigmoid")
    lin = Dense(2, activation=None)
    sig.build((None, 4))
    lin.build((None, 4))
    lin.set_weights(sig.get_weights())
    sig.forward(x)
    lin.forward(x)
    np.testing.assert_array_equal(sig.backward(dout, from_logits=True), lin.backward(dout))
    np.testing.assert_array_equal(sig.grads[0], lin.grads[0])

    act = Activation("softmax")
    act.forward(x)
    np.testing.assert_array_equal(
        act.backward(dout[:, :1].repeat(4, 1), from_logits=True), dout[:, :1].repeat(4, 1)
    )


def test_flatten_layer_channels_last():
    flat = Flatten()
    x = np.arange(2 * 3 * 2 * 4, dtype=np.float32).reshape(2, 3, 2, 4)
    out = flat.forward(x)
    assert flat.output_shape == (None, 24)
    np.testing.assert_array_equal(out[1], np.arange(24, 48))
    np.testing.assert_array_equal(flat.backward(out), x)


def test_dropout_layer_training_inference_and_seed(rng):
    x = rng.standard_normal((5, 40)).astype(np.float32)
    a, b = Dropout(0.5, seed=3), Dropout(0.5, seed=3)
    np.testing.assert_array_equal(a.forward(x, training=False), x)
    a.clear_cache()
    out_a, out_b = a.forward(x, training=True), b.forward(x, training=True)
    np.testing.assert_array_equal(out_a, out_b)  # same seed, same mask
    kept = out_a != 0
    np.testing.assert_allclose(out_a[kept], 2 * x[kept], rtol=1e-6)
    dx = a.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx != 0, kept)
    assert not np.array_equal(a.forward(x, training=True), out_a)  # the next call draws a new mask


def test_pooling_layers_shapes():
    assert MaxPooling2D().compute_output_shape((None, 7, 7, 5)) == (None, 3, 3, 5)
    assert MaxPooling2D(3, strides=2, padding="same").compute_output_shape((None, 7, 6, 5)) == (None, 4, 3, 5)
    assert GlobalAveragePooling2D().compute_output_shape((None, 7, 6, 5)) == (None, 5)
    assert GlobalMaxPooling2D().compute_output_shape((None, 7, 6, 5)) == (None, 5)


def test_trainable_flag_on_a_layer():
    dense = Dense(3)
    dense.build((None, 2))
    assert len(dense.trainable_weights) == 2 and dense.non_trainable_weights == []
    dense.trainable = False
    assert dense.trainable_weights == [] and len(dense.non_trainable_weights) == 2
    assert Dense(1, trainable=False).trainable is False


# -- names and introspection --------------------------------------------------------------


@pytest.mark.parametrize(
    "make_layer, prefix",
    [
        (lambda: Conv2D(1, 1), "conv2d"),
        (lambda: Dense(1), "dense"),
        (lambda: Flatten(), "flatten"),
        (lambda: Dropout(0.1), "dropout"),
        (lambda: Activation("relu"), "activation"),
        (lambda: MaxPooling2D(), "max_pooling2d"),
        (lambda: GlobalAveragePooling2D(), "global_average_pooling2d"),
        (lambda: GlobalMaxPooling2D(), "global_max_pooling2d"),
    ],
)
def test_automatic_names_follow_keras(make_layer, prefix):
    first, second = make_layer().name, make_layer().name
    pattern = rf"{prefix}(_\d+)?"
    assert re.fullmatch(pattern, first) and re.fullmatch(pattern, second), (first, second)
    assert first != second


def test_repr_and_config():
    conv = Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c1")
    assert "unbuilt" in repr(conv)
    conv.build((None, 8, 8, 3))
    assert repr(conv) == "<Conv2D name='c1' output=(None, 4, 4, 4) params=112>"
    config = conv.get_config()
    assert config["kernel_size"] == (3, 3) and config["strides"] == (2, 2)
    assert config["activation"] == "relu" and config["dtype"] == "float32"


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_sigmoid_and_softmax_layers_keep_their_logits(rng, activation):
    """The training step computes a cross-entropy from these logits (as Keras' TF backend)."""
    dense = Dense(3, activation=activation)
    dense.build((None, 4))
    x = rng.standard_normal((5, 4)).astype(np.float32)
    dense(x)
    np.testing.assert_allclose(
        dense.last_logits, x @ dense.params["kernel"] + dense.params["bias"], rtol=1e-6
    )


def test_relu_layers_keep_no_logits(rng):
    dense = Dense(3, activation="relu")
    dense(rng.standard_normal((5, 4)).astype(np.float32))
    assert dense.last_logits is None


def test_changing_a_forward_output_does_not_change_the_gradient(rng):
    """A student poking at an activation in the debugger must not corrupt backward."""
    conv = Conv2D(3, (3, 3), padding="same", activation="relu")
    x = rng.standard_normal((1, 4, 5, 2)).astype(np.float32)
    dout = rng.standard_normal((1, 4, 5, 3)).astype(np.float32)
    conv.forward(x)
    expected = conv.backward(dout)
    out = conv.forward(x)
    out[...] = 0.0
    np.testing.assert_array_equal(conv.backward(dout), expected)
