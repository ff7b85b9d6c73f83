"""A layer called at more than one place (a siamese tower, a Dense applied twice):
each call is differentiated at its own input, and the layer's weight gradients are
the sum over its calls (the chain rule; Keras does the same). Against Keras from
the same weights: forward, dL/d(each input), every weight gradient, and training."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import numvgg
from numvgg import layers as nl
from numvgg.debug.gradcheck import numerical_gradient_array, rel_error
from numvgg.debug.trace import step, step_backward, trace
from numvgg.models import Model, Sequential
from numvgg.optimizers import Adam

SHAPE = (8, 8, 2)


def rel(a, b):
    """Largest difference relative to the largest magnitude of the reference ``b``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def numvgg_api():
    return SimpleNamespace(layers=nl, Model=Model, Sequential=Sequential)


def keras_api(keras):
    return SimpleNamespace(layers=keras.layers, Model=keras.Model, Sequential=keras.Sequential)


def siamese(api):
    """Two images through one conv tower (a nested Sequential), features concatenated,
    one sigmoid unit: the same code builds the numvgg model and the Keras one."""
    L = api.layers
    tower = api.Sequential(
        [
            L.Input(SHAPE),
            L.Conv2D(4, 3, padding="same", activation="relu", name="tower_conv"),
            L.MaxPooling2D(name="tower_pool"),
            L.Flatten(name="tower_flat"),
        ],
        name="tower",
    )
    a, b = L.Input(SHAPE, name="a"), L.Input(SHAPE, name="b")
    features = L.Concatenate(name="cat")([tower(a), tower(b)])
    return api.Model([a, b], L.Dense(1, activation="sigmoid", name="head")(features), name="siamese")


def chain(api):
    """``x -> d -> d``: one Dense applied to its own output."""
    L = api.layers
    inputs = L.Input((4,))
    d = L.Dense(4, activation="tanh", name="d")
    return api.Model(inputs, L.Dense(1, activation="sigmoid", name="out")(d(d(inputs))), name="chain")


@pytest.fixture
def pair():
    rng = np.random.default_rng(3)
    xa, xb = (rng.normal(size=(5, *SHAPE)).astype("float32") for _ in range(2))
    y = rng.integers(0, 2, size=(5, 1)).astype("float32")
    return xa, xb, y


def keras_twin(keras, build, model):
    kmodel = build(keras_api(keras))
    kmodel.set_weights(model.get_weights())
    return kmodel


def keras_gradients(tf, kmodel, inputs, dout):
    """dL/d(inputs) and dL/d(weights) of ``L = sum(output * dout)`` by GradientTape."""
    xs = [tf.constant(x) for x in inputs]
    with tf.GradientTape() as tape:
        tape.watch(xs)
        out = kmodel(xs if len(xs) > 1 else xs[0])
        loss = tf.reduce_sum(out * dout)
    dxs, dws = tape.gradient(loss, [xs, kmodel.trainable_weights])
    return out.numpy(), [d.numpy() for d in dxs], [w.numpy() for w in dws]


@pytest.mark.keras
def test_a_siamese_tower_matches_keras_forward_and_every_gradient(keras, tf, pair):
    numvgg.set_random_seed(0)
    xa, xb, _ = pair
    model = siamese(numvgg_api())
    kmodel = keras_twin(keras, siamese, model)
    assert model.run_order.shared == {model.get_layer(n) for n in ("tower_conv", "tower_pool", "tower_flat")}
    dout = np.random.default_rng(4).normal(size=(5, 1)).astype("float32")
    k_out, k_dx, k_dw = keras_gradients(tf, kmodel, [xa, xb], dout)

    out = model([xa, xb])
    dxa, dxb = model.backward(dout)
    assert rel(out, k_out) < 1e-5
    assert rel(dxa, k_dx[0]) < 1e-4 and rel(dxb, k_dx[1]) < 1e-4
    assert [w.shape for w in model.grads] == [w.shape for w in k_dw]
    for name, g, k in zip(model.weight_names, model.grads, k_dw):
        assert rel(g, k) < 1e-4, name


@pytest.mark.keras
def test_a_dense_applied_twice_in_a_chain_matches_keras(keras, tf):
    numvgg.set_random_seed(1)
    x = np.random.default_rng(5).normal(size=(6, 4)).astype("float32")
    dout = np.random.default_rng(6).normal(size=(6, 1)).astype("float32")
    model = chain(numvgg_api())
    kmodel = keras_twin(keras, chain, model)
    k_out, k_dx, k_dw = keras_gradients(tf, kmodel, [x], dout)
    out = model(x)
    dx = model.backward(dout)
    assert rel(out, k_out) < 1e-5 and rel(dx, k_dx[0]) < 1e-4
    for name, g, k in zip(model.weight_names, model.grads, k_dw):
        assert rel(g, k) < 1e-4, name


def test_a_shared_layers_gradients_pass_a_float64_gradient_check():
    numvgg.set_random_seed(2)
    numvgg.config.set_floatx("float64")
    try:
        model = chain(numvgg_api())
    finally:
        numvgg.config.set_floatx("float32")
    rng = np.random.default_rng(7)
    x, dout = rng.normal(size=(3, 4)), rng.normal(size=(3, 1))
    model(x)
    dx = model.backward(dout)
    kernel = model.get_layer("d").params["kernel"]
    dkernel = model.get_layer("d").grads[0].copy()

    def f(_):
        return model(x, keep_cache=False)

    assert rel_error(dx, numerical_gradient_array(lambda v: model(v, keep_cache=False), x, dout)) < 1e-7
    assert rel_error(dkernel, numerical_gradient_array(f, kernel, dout)) < 1e-7


@pytest.mark.keras
def test_training_a_siamese_tower_matches_keras_adam(keras, pair):
    numvgg.set_random_seed(0)
    xa, xb, y = pair
    model = siamese(numvgg_api())
    kmodel = keras_twin(keras, siamese, model)
    model.compile(optimizer=Adam(learning_rate=1e-2), loss="binary_crossentropy")
    kmodel.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="binary_crossentropy")
    for i in range(3):
        batch = [xa[i:], xb[i:]]
        ours, theirs = model.train_on_batch(batch, y[i:]), kmodel.train_on_batch(batch, y[i:])
        assert rel(ours, theirs) < 1e-5, (i, ours, theirs)
    ours = model.fit([xa, xb], y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    theirs = kmodel.fit([xa, xb], y, batch_size=2, epochs=2, shuffle=False, verbose=0)
    assert rel(ours.history["loss"], theirs.history["loss"]) < 1e-5
    for name, w, k in zip(model.weight_names, model.get_weights(), kmodel.get_weights()):
        assert rel(w, k) < 1e-4, name


def frozen_middle(api):
    """``x -> d -> t -> d``: the shared ``d`` is frozen, ``t`` between its calls learns,
    so the backward must pass through d's *second* call to reach t."""
    L = api.layers
    inputs = L.Input((4,))
    d = L.Dense(4, activation="tanh", name="d")
    t = L.Dense(4, activation="relu", name="t")
    return api.Model(inputs, L.Dense(1, activation="sigmoid", name="out")(d(t(d(inputs)))), name="frozen")


@pytest.mark.keras
def test_a_frozen_shared_layer_still_passes_gradients_like_keras(keras):
    numvgg.set_random_seed(3)
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(6, 4)).astype("float32"), rng.integers(0, 2, size=(6, 1)).astype("float32")
    model = frozen_middle(numvgg_api())
    kmodel = keras_twin(keras, frozen_middle, model)
    for m in (model, kmodel):
        m.get_layer("d").trainable = False
    d_before = model.get_layer("d").get_weights()
    model.compile(optimizer=Adam(learning_rate=1e-2), loss="binary_crossentropy")
    kmodel.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="binary_crossentropy")
    for _ in range(3):
        assert rel(model.train_on_batch(x, y), kmodel.train_on_batch(x, y)) < 1e-5
    for name, w, k in zip(model.weight_names, model.get_weights(), kmodel.get_weights()):
        assert rel(w, k) < 1e-4, name
    for w, before in zip(model.get_layer("d").get_weights(), d_before):
        np.testing.assert_array_equal(w, before)


def test_a_frozen_shared_layer_under_cache_frozen_features_gives_the_same_training():
    """``x -> d -> d -> head`` with d frozen: both calls of d form the cached bottom."""
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(8, 4)).astype("float32"), rng.integers(0, 2, size=(8, 1)).astype("float32")
    histories, weights = [], []
    for cache in (False, True):
        numvgg.set_random_seed(4)
        inputs = nl.Input((4,))
        d = nl.Dense(4, activation="tanh", name="d")
        model = Model(inputs, nl.Dense(1, activation="sigmoid", name="head")(d(d(inputs))))
        d.trainable = False
        model.compile(optimizer="adam", loss="binary_crossentropy", cache_frozen_features=cache)
        histories.append(model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"])
        weights.append(model.get_weights())
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-6)
    for ours, reference in zip(weights[1], weights[0]):
        np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-7)


def test_each_call_of_a_shared_dropout_keeps_its_own_mask():
    inputs = nl.Input((50,))
    drop = nl.Dropout(0.5, seed=1, name="drop")
    model = Model(inputs, nl.Concatenate()([drop(inputs), drop(inputs)]))
    x = np.ones((4, 50), "float32")
    out = model(x, training=True)
    first, second = out[:, :50], out[:, 50:]
    assert not np.array_equal(first != 0, second != 0)  # two masks
    dout = np.random.default_rng(0).normal(size=out.shape).astype("float32")
    dx = model.backward(dout)
    expected = dout[:, :50] * (first != 0) * 2 + dout[:, 50:] * (second != 0) * 2
    np.testing.assert_allclose(dx, expected, rtol=1e-6)


def test_predict_keeps_no_cache_of_a_shared_layer(pair):
    numvgg.set_random_seed(0)
    xa, xb, _ = pair
    model = siamese(numvgg_api())
    model.predict([xa, xb], verbose=0)
    assert model._shared_calls == {}
    assert all(layer._cache_value is None for layer in model.run_order.shared)
    model([xa, xb])  # a forward that keeps caches: one per call, none left in the layers
    assert len(model._shared_calls) == 2 * len(model.run_order.shared)
    assert all(layer._cache_value is None for layer in model.run_order.shared)
    model.backward(np.ones((5, 1), "float32"))
    assert model._shared_calls == {}  # handed back to the layers and used


def test_a_shared_layer_run_again_after_the_forward_is_caught(pair):
    numvgg.set_random_seed(0)
    xa, xb, _ = pair
    model = siamese(numvgg_api())
    model([xa, xb])
    model.get_layer("tower_conv")(xa)  # e.g. at a breakpoint, on another image
    with pytest.raises(RuntimeError, match="'tower_conv' ran again"):
        model.backward(np.ones((5, 1), "float32"))
    model([xa, xb])
    model.backward(np.ones((5, 1), "float32"))
    with pytest.raises(RuntimeError, match="called twice for one forward pass"):
        model.backward(np.ones((5, 1), "float32"))


def test_step_backward_shows_each_call_and_the_layer_ends_with_the_sum(pair):
    numvgg.set_random_seed(0)
    xa, xb, _ = pair
    model = siamese(numvgg_api())
    dout = np.random.default_rng(1).normal(size=(5, 1)).astype("float32")
    model([xa, xb])
    dxa, dxb = model.backward(dout)
    total = model.get_layer("tower_conv").grads[0].copy()

    names = [s.name for s in step(model, [xa, xb])]
    assert names.count("tower/tower_conv") == 2  # one step per call
    calls = [b for b in step_backward(model, dout) if b.name == "tower/tower_conv"]
    assert len(calls) == 2  # the second call first: backward runs in reverse
    np.testing.assert_allclose(calls[0].grad_input, dxb, rtol=1e-6)
    np.testing.assert_allclose(calls[1].grad_input, dxa, rtol=1e-6)
    own = [c.weight_grads["kernel"] for c in calls]  # each call's own share...
    np.testing.assert_allclose(own[0] + own[1], total, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.get_layer("tower_conv").grads[0], total, rtol=1e-6)  # ...summed


def test_a_trace_keeps_a_shared_layers_last_call(pair):
    numvgg.set_random_seed(0)
    xa, xb, _ = pair
    model = siamese(numvgg_api())
    with trace(model) as t:
        model([xa, xb])
        dxa, _ = model.backward(np.ones((5, 1), "float32"))
    record = t["tower_conv"]
    assert (record.n_forward, record.n_backward) == (2, 2)
    np.testing.assert_array_equal(record.input, xb)  # the last call forward: tower(b)
    np.testing.assert_allclose(record.grad_input, dxa, rtol=1e-6)  # the last backward: tower(a)'s


def shared_batchnorm(api):
    """One BatchNormalization on two inputs: each call normalizes with its own batch."""
    L = api.layers
    a, b = L.Input((3,)), L.Input((3,))
    bn = L.BatchNormalization(name="bn")
    features = L.Concatenate(name="cat")([bn(a), bn(b)])
    return api.Model([a, b], L.Dense(1, activation="sigmoid", name="out")(features), name="shared_bn")


@pytest.mark.keras
def test_a_shared_batchnorm_in_training_matches_keras(keras, tf):
    """Keras runs each call with its own batch statistics and updates the moving
    statistics once per call, one after the other; so does numvgg."""
    numvgg.set_random_seed(5)
    rng = np.random.default_rng(10)
    xa = rng.normal(size=(6, 3)).astype("float32")
    xb = (3 + 2 * rng.normal(size=(6, 3))).astype("float32")
    y = rng.integers(0, 2, size=(6, 1)).astype("float32")
    model = shared_batchnorm(numvgg_api())
    model.get_layer("bn").set_weights([rng.uniform(0.5, 2, size=3).astype("float32") for _ in range(4)])
    kmodel = keras_twin(keras, shared_batchnorm, model)

    dout = rng.normal(size=(6, 1)).astype("float32")
    xs = [tf.constant(xa), tf.constant(xb)]
    with tf.GradientTape() as tape:
        tape.watch(xs)
        k_out = kmodel(xs, training=True)
        loss = tf.reduce_sum(k_out * dout)
    k_dx, k_dw = tape.gradient(loss, [xs, kmodel.trainable_weights])
    out = model([xa, xb], training=True)
    dxa, dxb = model.backward(dout)
    assert rel(out, k_out.numpy()) < 1e-5
    assert rel(dxa, k_dx[0].numpy()) < 1e-4 and rel(dxb, k_dx[1].numpy()) < 1e-4
    grads = [(n, g) for n, g in zip(model.weight_names, model.grads) if "moving" not in n]
    assert len(grads) == len(k_dw)
    for (name, g), k in zip(grads, k_dw):
        assert rel(g, k.numpy()) < 1e-4, name

    model.compile(optimizer=Adam(learning_rate=1e-2), loss="binary_crossentropy")
    kmodel.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="binary_crossentropy")
    for _ in range(3):
        assert rel(model.train_on_batch([xa, xb], y), kmodel.train_on_batch([xa, xb], y)) < 1e-5
    for name, w, k in zip(model.weight_names, model.get_weights(), kmodel.get_weights()):
        assert rel(w, k) < 1e-4, name  # the moving statistics too: two updates per step


def two_heads(api):
    """One sigmoid ``Dense`` making both outputs of the model."""
    L = api.layers
    a, b = L.Input((3,), name="a"), L.Input((3,), name="b")
    head = L.Dense(1, activation="sigmoid", name="head")
    return api.Model([a, b], [head(a), head(b)], name="two_heads")


def train_two_heads(keras, scale):
    numvgg.set_random_seed(6)
    rng = np.random.default_rng(11)
    xa, xb = (rng.normal(size=(6, 3)).astype("float32") * scale for _ in range(2))
    ys = [rng.integers(0, 2, size=(6, 1)).astype("float32") for _ in range(2)]
    model = two_heads(numvgg_api())
    kmodel = keras_twin(keras, two_heads, model)
    model.compile(optimizer=Adam(learning_rate=1e-2), loss="binary_crossentropy")
    kmodel.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2), loss="binary_crossentropy")
    for _ in range(3):
        ours, theirs = model.train_on_batch([xa, xb], ys), kmodel.train_on_batch([xa, xb], ys)
        assert rel(ours, theirs) < 1e-5, (ours, theirs)
    for name, w, k in zip(model.weight_names, model.get_weights(), kmodel.get_weights()):
        assert rel(w, k) < 1e-4, name


@pytest.mark.keras
def test_a_shared_sigmoid_layer_making_two_outputs_trains_like_keras(keras):
    train_two_heads(keras, scale=1.0)


@pytest.mark.keras
def test_a_shared_sigmoid_layer_with_saturated_outputs_trains_like_keras(keras):
    train_two_heads(keras, scale=30.0)
