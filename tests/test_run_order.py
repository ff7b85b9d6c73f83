"""A model runs its graph as one flat list of leaf-layer steps, nested models opened up
(numvgg/models/run_order.py): the same numbers as running each nested model on its own,
with no nested model's loop in between."""

from __future__ import annotations

import numpy as np
import pytest

import numvgg
from numvgg.debug.trace import step, step_backward
from numvgg.layers import Activation, Concatenate, Conv2D, Dense, GlobalAveragePooling2D, Input
from numvgg.models import Model, Sequential


def conv_base(name="base"):
    inputs = Input((6, 6, 2))
    x = Conv2D(3, 3, padding="same", activation="relu", name=f"{name}_c1")(inputs)
    left = Conv2D(2, 3, padding="same", activation="tanh", name=f"{name}_left")(x)
    right = Conv2D(2, 1, activation="sigmoid", name=f"{name}_right")(x)
    return Model(inputs, [left, right], name=name)  # a nested model with two outputs


def outer_model():
    numvgg.set_random_seed(7)
    base = conv_base()
    inputs = Input((6, 6, 2))
    left, right = base(inputs)
    x = Concatenate(name="cat")([left, right, inputs])  # reads the outer input again
    out = Dense(1, name="out")(GlobalAveragePooling2D(name="gap")(x))
    return Model(inputs, out, name="outer"), base


@pytest.fixture
def x():
    return np.random.default_rng(1).normal(size=(3, 6, 6, 2)).astype("float32")


def test_steps_are_the_leaf_layers_with_paths(x):
    model, _ = outer_model()
    order = model.run_order
    paths = [s.path for s in order.steps if not s.layer.is_input_layer]
    assert paths == ["base/base_c1", "base/base_left", "base/base_right", "cat", "gap", "out"]
    assert [name for name, *_ in step(model, x)] == paths


def test_flat_forward_and_backward_equal_the_nested_models_run_alone(x):
    model, base = outer_model()
    y = model(x)
    dy = np.random.default_rng(2).normal(size=y.shape).astype("float32")
    dx = model.backward(dy)
    grads = {leaf.name: [g.copy() for g in leaf.grads] for leaf in model.leaf_layers()}

    # The same computation by hand: the nested model as a layer of its own.
    left, right = base(x)
    cat = model.get_layer("cat")
    gap, out = model.get_layer("gap"), model.get_layer("out")
    y_hand = out(gap(cat([left, right, x])))
    np.testing.assert_array_equal(y_hand, y)
    d_cat = cat.backward(gap.backward(out.backward(dy)))
    d_base = base.backward(d_cat[:2])
    np.testing.assert_allclose(d_base + d_cat[2], dx, rtol=1e-6, atol=1e-7)
    for leaf in model.leaf_layers():
        for g, g_hand in zip(grads[leaf.name], leaf.grads):
            np.testing.assert_allclose(g, g_hand, rtol=1e-6, atol=1e-7)


def test_step_backward_walks_the_same_steps_as_backward(x):
    model, _ = outer_model()
    y = model(x)
    dy = np.ones_like(y)
    names = []
    gen = step_backward(model, dy)
    while True:
        try:
            names.append(next(gen).name)
        except StopIteration as done:
            dx_steps = done.value
            break
    assert names == ["out", "gap", "cat", "base/base_right", "base/base_left", "base/base_c1"]
    model(x)
    np.testing.assert_array_equal(model.backward(dy), dx_steps)


def test_a_nested_model_called_twice_runs_backward_once_per_call(x):
    """Each call's backward uses its own cache; the shared kernel gets the sum."""
    numvgg.set_random_seed(0)
    tower = Sequential([Input((6, 6, 2)), Conv2D(2, 3, padding="same", name="shared_conv")], name="tower")
    a, b = Input((6, 6, 2)), Input((6, 6, 2))
    model = Model([a, b], Concatenate()([tower(a), tower(b)]), name="siamese")
    y = model([x, 2 * x])
    dy = np.random.default_rng(2).normal(size=y.shape).astype("float32")
    da, db = model.backward(dy)
    kernel_grad = tower.get_layer("shared_conv").grads[0]
    # The same two calls, each on its own: a forward, then its backward.
    expected = []
    for inp, half in ((x, slice(0, 2)), (2 * x, slice(2, 4))):
        np.testing.assert_allclose(tower(inp), y[..., half], rtol=1e-6)
        d = dy[..., half]
        expected.append((tower.backward(d), tower.get_layer("shared_conv").grads[0]))
    np.testing.assert_allclose(da, expected[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, expected[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kernel_grad, expected[0][1] + expected[1][1], rtol=1e-5, atol=1e-5)


def test_changing_a_nested_sequential_opens_the_graph_again():
    numvgg.set_random_seed(0)
    inner = Sequential([Input((4,)), Dense(3, name="d1")], name="inner")
    outer = Sequential([inner, Activation("relu", name="act")], name="outer")
    x = np.ones((2, 4), "float32")
    outer(x)
    assert [s.path for s in outer.run_order.steps][1:] == ["inner/d1", "act"]
    inner.add(Dense(3, name="d2"))
    # Keras' outer graph keeps the call it recorded; numvgg re-reads the nested graph,
    # so its steps follow the layers the nested model holds now.
    assert [s.path for s in outer.run_order.steps][1:] == ["inner/d1", "inner/d2", "act"]


def test_a_nested_models_backward_knows_the_outer_forward_filled_its_caches(x):
    model, base = outer_model()
    model(x)
    d = [np.ones((3, 6, 6, 2), "float32")] * 2
    base.backward(d)  # its layers ran in the outer forward: their caches are that forward's
    model(x)
    base.get_layer("base_c1")(x)  # ...until one of them runs again
    with pytest.raises(RuntimeError, match="'base_c1' ran again"):
        base.backward(d)


def test_predict_frees_activations_inside_nested_models():
    """The flat loop lets go of a nested model's activations as soon as no later step
    reads them: a 10-layer chain split over nested models peaks near two activations."""
    import tracemalloc

    def chain(n, name):
        return Sequential([Input((1000,)), *[Activation("tanh") for _ in range(n)]], name=name)

    model = Sequential([Input((1000,)), chain(4, "a"), chain(3, "b"), Sequential([chain(3, "c")], name="d")])
    x = np.ones((250, 1000), "float32")  # one activation: 1 MB
    model.predict(x, batch_size=250, verbose=0)
    tracemalloc.start()
    model.predict(x, batch_size=250, verbose=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * x.nbytes, f"peak {peak / 1e6:.1f} MB for 1 MB activations"
