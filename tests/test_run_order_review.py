"""Review of the flat run order (numvgg/models/run_order.py): unusual graphs that
broke it, each checked against the math or against Keras."""

from __future__ import annotations

import numpy as np
import pytest

import numvgg
from numvgg.debug.trace import step_backward
from numvgg.layers import Concatenate, Dense, Input
from numvgg.models import Model, Sequential


def _sigmoid_feeding_a_second_output(ns, activation="sigmoid", units=1):
    """Output 1 is a sigmoid/softmax layer's output that also feeds output 2."""
    x = ns.layers.Input((4,))
    h = ns.layers.Dense(3, activation="relu", name="h")(x)
    y1 = ns.layers.Dense(units, activation=activation, name="y1")(h)
    y2 = ns.layers.Dense(1, name="y2")(y1)
    return ns.Model(x, [y1, y2], name="two_outputs")


class _Numvgg:
    from numvgg import layers

    Model = Model


@pytest.mark.parametrize("activation, units", [("sigmoid", 1), ("softmax", 3)])
def test_a_fused_output_also_read_by_another_layer_gets_both_gradients(activation, units):
    """The training step hands the fused output dL/d(logits); the layer reading that
    output sends dL/d(output), which must go through the activation's derivative
    before the two are added (they used to be added as if both were dL/d(logits))."""
    numvgg.set_random_seed(0)
    model = _sigmoid_feeding_a_second_output(_Numvgg, activation, units)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype("float64")
    d_logits = rng.standard_normal((5, units))
    d_logits -= d_logits.mean(axis=-1, keepdims=True)  # rows sum to 0, as p - t does for softmax
    d2 = rng.standard_normal((5, 1))
    y1, _ = model(x)
    model.backward([d_logits, d2], from_logits=[True, False])
    fused = {leaf.name: [g.copy() for g in leaf.grads] for leaf in model.leaf_layers()}

    # The same gradient with the logits' gradient taken back through the activation by hand.
    if activation == "sigmoid":
        d_y1 = d_logits / (y1 * (1 - y1))
    else:  # softmax: J^T d = y * (d - sum(d * y)); d = d_logits / y gives d_logits back
        d_y1 = d_logits / y1
    model(x)
    model.backward([d_y1, d2])
    for leaf in model.leaf_layers():
        for g_fused, g in zip(fused[leaf.name], leaf.grads):
            np.testing.assert_allclose(g_fused, g, rtol=1e-7, atol=1e-10, err_msg=leaf.name)


@pytest.mark.keras
def test_a_fused_output_read_by_another_output_trains_as_keras(keras):
    class Ns:
        layers = keras.layers
        Model = keras.Model

    keras.utils.set_random_seed(0)
    k_model = _sigmoid_feeding_a_second_output(Ns)
    model = _sigmoid_feeding_a_second_output(_Numvgg)
    for k_layer in k_model.layers[1:]:
        model.get_layer(k_layer.name).set_weights(k_layer.get_weights())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4)).astype("float32")
    y = [(rng.random((8, 1)) > 0.5).astype("float32"), rng.standard_normal((8, 1)).astype("float32")]
    k_model.compile(optimizer=keras.optimizers.SGD(0.5), loss=["binary_crossentropy", "mse"])
    model.compile(optimizer=numvgg.optimizers.SGD(0.5), loss=["binary_crossentropy", "mse"])
    k_model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    for k_layer in k_model.layers[1:]:
        for ours, theirs in zip(model.get_layer(k_layer.name).get_weights(), k_layer.get_weights()):
            scale = np.abs(theirs).max()
            assert np.abs(ours - theirs).max() <= 1e-5 * scale, k_layer.name


def _nested_three_deep():
    numvgg.set_random_seed(0)
    inner = Sequential([Input((4,)), Dense(3, name="d1"), Dense(3, name="d2")], name="inner")
    middle = Sequential([Input((4,)), inner, Dense(3, name="m1")], name="middle")
    outer = Sequential([Input((4,)), middle, Dense(2, name="head")], name="outer")
    return outer, middle, inner


def test_backward_refuses_when_a_nested_model_changed_after_the_forward():
    """pop() on a nested model between forward and backward: the outer model's steps
    are opened up again without d2, so backward used to send head's gradient straight
    into d1 (a graph that never ran) and return a wrong dL/dx without a word."""
    outer, middle, inner = _nested_three_deep()
    x = np.ones((2, 4), "float32")
    y = outer(x)
    inner.pop()
    with pytest.raises(RuntimeError, match="model 'inner' changed"):
        outer.backward(np.ones_like(y))
    with pytest.raises(RuntimeError, match="model 'inner' changed"):
        next(step_backward(outer, np.ones_like(y)))  # which reads the new steps first
    with pytest.raises(RuntimeError, match="model 'inner' changed"):
        middle.backward(np.ones((2, 3), "float32"))  # the middle model got the outer's record
    y = outer(x)  # a new forward: backward follows the graph that ran
    assert [s.path for s in outer.run_order.steps][1:] == ["middle/inner/d1", "middle/m1", "head"]
    assert outer.backward(np.ones_like(y)).shape == (2, 4)


def test_trace_records_a_merge_layers_inputs_one_array_each():
    """A Concatenate of arrays of different shapes used to crash the trace
    (np.asarray on the list of inputs); arrays of one shape were stacked into
    one array the layer never saw."""
    from numvgg.debug.trace import trace
    from numvgg.layers import Add, Conv2D, GlobalAveragePooling2D

    numvgg.set_random_seed(0)
    inputs = Input((5, 5, 2))
    a = Conv2D(3, 3, padding="same", activation="tanh", name="c3")(inputs)
    b = Conv2D(2, 1, name="c2")(a)
    cat = Concatenate(name="cat")([a, b, inputs])  # 3 + 2 + 2 channels
    summed = Add(name="add")([b, inputs])  # two arrays of one shape
    out = Dense(1, name="out")(GlobalAveragePooling2D(name="gap")(Concatenate(name="both")([cat, summed])))
    model = Model(inputs, out)
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 2)).astype("float32")
    with trace(model) as t:
        y = model(x)
        dx = model.backward(np.ones_like(y))
    a_out, b_out = t["c3"].output, t["c2"].output
    assert [v.shape for v in t["cat"].input] == [(2, 5, 5, 3), (2, 5, 5, 2), (2, 5, 5, 2)]
    for got, want in zip(t["cat"].input, [a_out, b_out, x]):
        np.testing.assert_array_equal(got, want)
    assert [g.shape for g in t["cat"].grad_input] == [(2, 5, 5, 3), (2, 5, 5, 2), (2, 5, 5, 2)]
    np.testing.assert_array_equal(t["add"].grad_input[1], t["add"].grad_output)  # d(b + x)/dx = 1
    # x is read by c3, cat and add: its gradient is the sum of the three
    by_hand = t["c3"].grad_input + t["cat"].grad_input[2] + t["add"].grad_input[1]
    np.testing.assert_allclose(by_hand, dx, rtol=1e-5, atol=1e-7)
    rows = [(name, key) for name, key, _ in t.rows() if name == "cat"]
    assert rows == [
        ("cat", "input[0]"),
        ("cat", "input[1]"),
        ("cat", "input[2]"),
        ("cat", "output"),
        ("cat", "grad_output"),
        ("cat", "grad_input[0]"),
        ("cat", "grad_input[1]"),
        ("cat", "grad_input[2]"),
    ]
    assert "dL/d input[2]" in str(t)


def test_cache_frozen_features_with_a_frozen_nested_model_of_two_outputs():
    def build():
        numvgg.set_random_seed(0)
        a = Input((5,))
        h = Dense(4, activation="tanh", name="f1")(a)
        frozen = Model(a, [Dense(3, name="f2")(h), h], name="frozen_two")
        frozen.trainable = False
        x = Input((5,))
        p, q = frozen(x)
        return Model(x, Dense(1, activation="sigmoid", name="head")(Concatenate(name="cat")([p, q])))

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype("float32")
    y = (rng.random((8, 1)) > 0.5).astype("float32")
    losses = []
    for cache in (False, True):
        model = build()
        model.compile(optimizer="sgd", loss="binary_crossentropy", cache_frozen_features=cache)
        losses.append(model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-6)


def _nested_outputs_read_again(ns):
    """A nested model's softmax and sigmoid outputs are outer outputs and are read by
    an outer layer too (and the softmax, inside the nested model, by the sigmoid's input)."""
    layers = ns.layers
    a = layers.Input((6,))
    h = layers.Dense(5, activation="relu", name="h")(a)
    p = layers.Dense(3, activation="softmax", name="p")(h)
    q = layers.Dense(1, activation="sigmoid", name="q")(layers.Concatenate(name="cat_in")([h, p]))
    inner = ns.Model(a, [p, q], name="inner")
    x = layers.Input((6,))
    p_out, q_out = inner(x)
    r = layers.Dense(1, name="r")(layers.Concatenate(name="cat")([p_out, q_out]))
    return ns.Model(x, [p_out, q_out, r], name="outer")


@pytest.mark.keras
def test_multi_output_fit_through_a_nested_model_matches_keras(keras):
    class Ns:
        layers = keras.layers
        Model = keras.Model

    keras.utils.set_random_seed(0)
    k_model = _nested_outputs_read_again(Ns)
    model = _nested_outputs_read_again(_Numvgg)
    k_inner = k_model.get_layer("inner")
    k_leaves = [k for k in [*k_inner.layers, *k_model.layers] if k.get_weights() and k is not k_inner]
    for k_layer in k_leaves:
        model.get_layer(k_layer.name).set_weights(k_layer.get_weights())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 6)).astype("float32")
    y = [
        np.eye(3, dtype="float32")[rng.integers(0, 3, 10)],
        (rng.random((10, 1)) > 0.5).astype("float32"),
        rng.standard_normal((10, 1)).astype("float32"),
    ]
    losses = ["categorical_crossentropy", "binary_crossentropy", "mse"]
    k_model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=losses, loss_weights=[1.0, 0.5, 2.0])
    model.compile(optimizer=numvgg.optimizers.Adam(1e-2), loss=losses, loss_weights=[1.0, 0.5, 2.0])
    k_hist = k_model.fit(x, y, epochs=3, batch_size=5, shuffle=False, verbose=0).history["loss"]
    hist = model.fit(x, y, epochs=3, batch_size=5, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(hist, k_hist, rtol=1e-5)
    for k_layer in k_leaves:
        for ours, theirs in zip(model.get_layer(k_layer.name).get_weights(), k_layer.get_weights()):
            assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max(), k_layer.name


def test_a_layer_run_again_during_the_forward_is_caught():
    """A student at a breakpoint in step()'s loop tries an earlier layer on another
    input: the walk ends normally, but that layer's cache is no longer this forward's.
    The record used to be taken at the end of the forward, so backward went through
    and mixed the two inputs' gradients without a word."""
    from numvgg.debug.trace import step

    numvgg.set_random_seed(0)
    inner = Sequential([Input((4,)), Dense(3, activation="tanh", name="d1")], name="inner")
    model = Sequential([Input((4,)), inner, Dense(3, name="d2"), Dense(1, name="d3")])
    x, other = np.ones((2, 4), "float32"), np.full((2, 4), 5.0, "float32")
    for s in step(model, x):
        if s.name == "d2":
            model.get_layer("d1")(other)
    with pytest.raises(RuntimeError, match="'d1' ran again"):
        next(step_backward(model, np.ones((2, 1), "float32")))

    # The same inside model(x): a hook on d3's forward runs d1 on another input.
    d3 = model.get_layer("d3")
    forward = d3.forward
    d3.forward = lambda a, training=False: (model.get_layer("d1")(other), forward(a, training))[1]
    try:
        y = model(x)
    finally:
        del d3.forward
    with pytest.raises(RuntimeError, match="'d1' ran again"):
        model.backward(np.ones_like(y))
    y = model(x)  # a clean forward: backward works
    assert model.backward(np.ones_like(y)).shape == (2, 4)


def test_popping_every_layer_of_a_nested_sequential_stops_the_outer_model():
    """pop() of a Sequential's last layer leaves it unbuilt without a new graph
    version: the outer model kept running the popped layer (Keras raises on the call)."""
    numvgg.set_random_seed(0)
    inner = Sequential([Input((4,)), Dense(3, name="d1")], name="inner")
    inputs = Input((4,))
    outer = Model(inputs, Dense(2, name="head")(inner(inputs)), name="outer")
    x = np.ones((2, 4), "float32")
    y = outer(x)
    inner.pop()
    with pytest.raises(RuntimeError):  # the graph that ran is gone
        outer.backward(np.ones_like(y))
    with pytest.raises(ValueError, match="'inner' has no layers"):
        outer(x)
    inner.add(Dense(3, name="d9"))
    assert [s.path for s in outer.run_order.steps][1:] == ["inner/d9", "head"]
    assert outer(x).shape == (2, 2)


# -- unusual graphs against Keras: forward, dL/dx and every weight gradient ------------------
def _two_in_three_out(ns):
    """A nested model with two inputs and three outputs (one an intermediate tensor,
    one an outer output too); the outer input is read again after it."""
    layers = ns.layers
    a, b = layers.Input((5,)), layers.Input((3,))
    h = layers.Dense(4, activation="tanh", name="ia")(a)
    s = layers.Add(name="iadd")([h, layers.Dense(4, activation="relu", name="ib")(b)])
    inner = ns.Model([a, b], [layers.Dense(2, name="io")(s), s, h], name="inner")
    x1, x2 = layers.Input((5,)), layers.Input((3,))
    y, ys, yh = inner([x1, x2])
    z = layers.Dense(3, activation="sigmoid", name="head")(layers.Concatenate(name="cat")([y, ys, x1]))
    return ns.Model([x1, x2], [z, yh, ys], name="outer")


def _three_deep(ns):
    layers = ns.layers
    i0 = layers.Input((6,))
    m0 = ns.Model(i0, layers.Dense(5, activation="tanh", name="d0")(i0), name="m0")
    i1 = layers.Input((6,))
    t = m0(i1)
    m1 = ns.Model(i1, [layers.Dense(5, name="d1")(t), t], name="m1")
    i2 = layers.Input((6,))
    u, t2 = m1(i2)
    m2 = ns.Model(i2, layers.Add(name="add2")([layers.Dense(5, name="d2")(u), t2]), name="m2")
    i3 = layers.Input((6,))
    return ns.Model(i3, [layers.Dense(2, name="d3")(m2(i3)), i3], name="m3")  # the input is an output too


def _feature_extractor(ns):
    """Model(base.input, base.get_layer(...).output) nested in a Sequential."""
    layers = ns.layers
    a = layers.Input((8, 8, 3))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="b1c1")(a)
    h = layers.MaxPooling2D(name="b1p")(h)
    h = layers.Conv2D(5, 3, padding="same", activation="relu", name="b2c1")(h)
    base = ns.Model(a, layers.Conv2D(6, 3, padding="same", name="b3c1")(h), name="base")
    features = ns.Model(base.input, base.get_layer("b2c1").output, name="features")
    return ns.Sequential(
        [
            layers.Input((8, 8, 3)),
            features,
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(2, name="o"),
        ]
    )


def _keras_leaves(model):
    for layer in model.layers:
        if getattr(layer, "layers", None):
            yield from _keras_leaves(layer)
        elif layer.get_weights():
            yield layer


@pytest.mark.keras
@pytest.mark.parametrize("build", [_two_in_three_out, _three_deep, _feature_extractor])
def test_unusual_nested_graphs_match_keras(build, keras, tf):
    class Ns:
        layers = keras.layers
        Model = keras.Model
        Sequential = keras.Sequential

    class Ours:
        from numvgg import layers

        Model = Model
        Sequential = Sequential

    keras.utils.set_random_seed(0)
    k_model, model = build(Ns), build(Ours)
    for k_layer in _keras_leaves(k_model):
        model.get_layer(k_layer.name).set_weights(k_layer.get_weights())
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((3, *t.shape[1:])).astype("float32") for t in k_model.inputs]
    ys = model(xs if len(xs) > 1 else xs[0])
    ys = ys if isinstance(ys, list) else [ys]
    douts = [rng.standard_normal(y.shape).astype("float32") for y in ys]

    k_xs = [tf.constant(x) for x in xs]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(k_xs)
        k_ys = k_model(k_xs if len(xs) > 1 else k_xs[0])
        k_ys = k_ys if isinstance(k_ys, (list, tuple)) else [k_ys]
        loss = tf.add_n([tf.reduce_sum(y * d) for y, d in zip(k_ys, douts)])
    for ours, theirs in zip(ys, k_ys):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-5 * np.abs(theirs).max())

    dxs = model.backward(douts if len(ys) > 1 else douts[0])
    dxs = dxs if isinstance(dxs, list) else [dxs]
    for ours, theirs in zip(dxs, tape.gradient(loss, k_xs)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-4 * np.abs(theirs).max())
    for k_layer in _keras_leaves(k_model):
        layer = model.get_layer(k_layer.name)
        for name, ours, theirs in zip(
            layer.weight_names, layer.grads, tape.gradient(loss, k_layer.trainable_weights)
        ):
            scale = np.abs(theirs).max()
            np.testing.assert_allclose(
                ours, theirs.numpy(), rtol=0, atol=1e-4 * scale, err_msg=f"{k_layer.name}/{name}"
            )
