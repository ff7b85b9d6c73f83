"""numvgg.models.Sequential: the forward/backward contract, weights, trainable,
nested models (the transfer-learning recipe), names and errors."""

import re

import numpy as np
import pytest

from numvgg.applications.vgg16 import VGG16
from numvgg.debug.gradcheck import numerical_gradient_array, rel_error
from numvgg.errors import ShapeError
from numvgg.layers import Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling2D, MaxPooling2D
from numvgg.models import Sequential, leaf_layers
from numvgg.ops import conv as conv_ops


def small_float64_model():
    """Conv -> pool -> strided 1x2 conv -> flatten -> dense softmax, all float64."""
    f64 = {"dtype": "float64"}
    return Sequential(
        [
            Conv2D(3, (3, 3), padding="same", activation="relu", input_shape=(5, 6, 2), **f64),
            MaxPooling2D(**f64),
            Conv2D(4, (1, 2), strides=(2, 1), padding="valid", activation="tanh", **f64),
            Flatten(**f64),
            Dense(3, activation="softmax", **f64),
        ]
    )


def seed_model(input_shape=(32, 32, 3)):
    """The transfer-learning recipe: VGG16 base + GAP + Dense(512, relu) + Dense(1, sigmoid)."""
    base = VGG16(include_top=False, weights=None, input_shape=input_shape)
    model = Sequential(
        [base, GlobalAveragePooling2D(), Dense(512, activation="relu"), Dense(1, activation="sigmoid")]
    )
    return base, model


@pytest.fixture(scope="module")
def seed():
    return seed_model()


# -- the contract ------------------------------------------------------------------


def test_backward_returns_dx_and_grads_in_get_weights_order(rng):
    """model.forward(x, training=False); model.backward(dy) -> dL/dx, and each
    layer's grads in get_weights() order; all checked against finite differences."""
    model = small_float64_model()
    for w in model.weights:  # non-zero biases test more
        w[...] = rng.normal(0.0, 0.5, w.shape)
    x = rng.standard_normal((2, 5, 6, 2))
    out = model.forward(x, training=False)
    assert out.shape == (2, 3) and model.output_shape == (None, 3)
    dout = rng.standard_normal(out.shape)
    dx = model.backward(dout)

    def loss_out(_):
        return model.forward(x, training=False)

    assert rel_error(dx, numerical_gradient_array(loss_out, x, dout)) < 1e-6
    assert [g.shape for g in model.grads] == [w.shape for w in model.get_weights()]
    names = [f"{leaf.name}/{k}" for leaf in leaf_layers(model) for k in leaf.params]
    for name, w, g in zip(names, model.weights, model.grads):
        assert rel_error(g, numerical_gradient_array(loss_out, w, dout)) < 1e-6, name
    model.clear_cache()


def test_call_is_forward_and_keep_cache_false_drops_caches(rng):
    """One path: model(x) runs forward (caches kept, backward may follow);
    keep_cache=False (what predict passes) keeps none."""
    model = small_float64_model()
    x = rng.standard_normal((2, 5, 6, 2))
    np.testing.assert_array_equal(model(x), model.forward(x))
    model(x)
    assert model.backward(np.ones((2, 3))).shape == x.shape
    model(x, keep_cache=False)
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.ones((2, 3)))


def test_from_logits_reaches_only_the_last_layer(rng):
    model = small_float64_model()
    x = rng.standard_normal((2, 5, 6, 2))
    dz = rng.standard_normal((2, 3))
    model.forward(x)
    dx_fused = model.backward(dz, from_logits=True)
    # Same as back-propagating dz through a linear copy of the last layer.
    last = model.layers[-1]
    linear = Sequential([*model.layers[:-1], Dense(3, activation=None, dtype="float64", name="lin")])
    linear.layers[-1].set_weights(last.get_weights())
    linear.forward(x)
    np.testing.assert_allclose(dx_fused, linear.backward(dz), rtol=1e-12)


def test_lazy_build_on_first_forward(rng):
    model = Sequential([Conv2D(2, (3, 3), padding="same"), Flatten(), Dense(2)])
    assert not model.layers[0].built
    model.forward(rng.standard_normal((1, 4, 3, 2)))
    assert [layer.output_shape for layer in model.layers] == [(None, 4, 3, 2), (None, 24), (None, 2)]


def test_model_is_built_after_first_forward(rng):
    """As in Keras, a model without a declared input is built by its first call."""
    model = Sequential([Dense(2)])
    model.forward(rng.standard_normal((3, 4)))
    assert model.built and model.input_shape == (None, 4) and model.output_shape == (None, 2)


def test_input_shape_mismatch_names_expected_and_received(seed):
    base, model = seed
    with pytest.raises(
        ShapeError,
        match=re.escape(f"'{model.name}' expects input of shape (None, 32, 32, 3)") + r".*\(1, 48, 48, 3\)",
    ):
        model.forward(np.zeros((1, 48, 48, 3), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"\(None, 32, 32, 3\).*\(32, 32, 3\)"):
        model.forward(np.zeros((32, 32, 3), dtype=np.float32))  # forgot the batch axis


# -- building, names ------------------------------------------------------------------


def test_nested_model_builds_at_add_time(seed):
    base, model = seed
    assert model.built and all(layer.built for layer in leaf_layers(model))
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 1)
    assert [layer.output_shape for layer in model.layers] == [
        (None, 1, 1, 512),
        (None, 512),
        (None, 512),
        (None, 1),
    ]
    text = model.summary(print_fn=None)  # before any data
    assert "Total params: 14,977,857" in text


def test_add_builds_each_new_layer_when_the_shape_is_known():
    model = Sequential([Dense(4, input_shape=(8,))])
    assert model.built
    dense = Dense(3)
    model.add(dense)
    assert dense.built and dense.params["kernel"].shape == (4, 3)
    model.add(Dropout(0.2))
    assert model.output_shape == (None, 3)


def test_adding_a_layer_built_for_another_shape_fails():
    other = Dense(2)
    other.build((None, 7))
    model = Sequential([Dense(4, input_shape=(8,))])
    with pytest.raises(ShapeError, match=re.escape("(None, 7)") + ".*" + re.escape("(None, 4)")):
        model.add(other)


def test_duplicate_names_are_rejected():
    model = Sequential([Dense(2, name="head", input_shape=(3,))])
    with pytest.raises(ValueError, match="unique names.*'head'"):
        model.add(Dense(2, name="head"))
    with pytest.raises(TypeError, match="numvgg layer"):
        model.add(lambda x: x)


def test_get_layer_by_name_and_index_searches_nested_models(seed):
    base, model = seed
    assert model.get_layer("vgg16") is base
    assert model.get_layer("block1_conv1") is base.layers[1]  # layers[0]: the InputLayer
    assert model.get_layer(index=-1) is model.layers[-1]
    with pytest.raises(ValueError, match="No such layer: 'block9_conv1'"):
        model.get_layer("block9_conv1")
    with pytest.raises(ValueError, match="index 4 but model .* only has 4 layers"):
        model.get_layer(index=4)


# -- weights ---------------------------------------------------------------------


def test_set_weights_before_data_round_trips(seed, rng):
    base, model = seed
    new = [rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()[-4:]]
    old = model.get_weights()
    try:
        model.set_weights(old[:-4] + new)
        for got, want in zip(model.get_weights()[-4:], new):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(model.layers[-1].params["bias"], new[-1])
    finally:
        model.set_weights(old)


def test_model_set_weights_is_all_or_nothing(seed):
    base, model = seed
    old = model.get_weights()
    bad = [w + 1 for w in old[:-1]] + [np.zeros(2, dtype=np.float32)]  # last one wrong
    last = model.layers[-1].name
    with pytest.raises(ShapeError) as info:
        model.set_weights(bad)
    for part in (f"'{last}'", "'bias'", "(1,)", "(2,)"):
        assert part in str(info.value), str(info.value)
    for got, want in zip(model.get_weights(), old):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ShapeError, match="has 30 weight arrays but was given 29"):
        model.set_weights(old[:-1])


# -- trainable --------------------------------------------------------------------


def _sizes(ws):
    return sum(w.size for w in ws)


def test_trainable_counts_with_frozen_base(seed):
    base, model = seed
    try:
        base.trainable = False
        assert all(not layer.trainable for layer in base.layers)
        assert _sizes(model.trainable_weights) == 263_169
        assert _sizes(model.non_trainable_weights) == 14_714_688
        assert model.count_params() == 14_977_857
        assert [layer.name for layer in model.trainable_leaves()] == [l.name for l in model.layers[2:]]
    finally:
        base.trainable = True


def test_trainable_on_a_model_sets_every_nested_layer(seed):
    base, model = seed
    try:
        model.trainable = False
        assert all(not layer.trainable for layer in leaf_layers(model)) and not base.trainable
        assert model.trainable_weights == [] and _sizes(model.non_trainable_weights) == 14_977_857
        model.trainable = True  # as in Keras: un-freezes everything again
        assert all(layer.trainable for layer in leaf_layers(model))
        assert _sizes(model.trainable_weights) == 14_977_857
    finally:
        model.trainable = True


# -- backward with train_only ------------------------------------------------------------


@pytest.fixture
def conv_backward_calls(monkeypatch):
    """Record (need_input_grad, need_weight_grads) of every conv2d_backward call."""
    calls = []
    real = conv_ops.conv2d_backward

    def counting(dout, cache, need_input_grad=True, need_weight_grads=True):
        calls.append((need_input_grad, need_weight_grads))
        return real(dout, cache, need_input_grad, need_weight_grads)

    monkeypatch.setattr(conv_ops, "conv2d_backward", counting)
    return calls


def _forward_backward(model, rng, **kwargs):
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    out = model.forward(x, training=True)
    return model.backward(np.ones_like(out), **kwargs)


def test_train_only_head_never_enters_the_conv_base(seed, rng, conv_backward_calls):
    base, model = seed
    try:
        base.trainable = False
        train_only = set(model.trainable_leaves())
        dx = _forward_backward(model, rng, need_input_grad=False, train_only=train_only)
        assert dx is None
        assert conv_backward_calls == []
        assert all(layer._cache is None for layer in leaf_layers(model))  # caches freed
        assert [g.shape for g in model.layers[2].grads] == [(512, 512), (512,)]
    finally:
        base.trainable = True


def test_train_only_block5_stops_at_the_lowest_trained_layer(seed, rng, conv_backward_calls):
    base, model = seed
    try:
        for layer in base.layers:  # fine-tuning: only block 5 learns
            layer.trainable = layer.name.startswith("block5")
        train_only = set(model.trainable_leaves())
        assert _forward_backward(model, rng, need_input_grad=False, train_only=train_only) is None
        # block5_conv3, conv2, conv1: weights for all three, dx for all but the lowest.
        assert conv_backward_calls == [(True, True), (True, True), (False, True)]
        assert [g.shape for g in base.get_layer("block5_conv1").grads] == [(3, 3, 512, 512), (512,)]
        assert all(layer._cache is None for layer in leaf_layers(model))  # block1-4 caches freed
    finally:
        base.trainable = True


def test_frozen_layers_still_pass_dx_without_train_only(seed, rng, conv_backward_calls):
    """trainable=False only stops updates (Keras): a plain backward reaches the input."""
    base, model = seed
    try:
        base.trainable = False
        dx = _forward_backward(model, rng)
        assert dx.shape == (2, 32, 32, 3) and np.any(dx != 0)
        assert len(conv_backward_calls) == 13
    finally:
        base.trainable = True
