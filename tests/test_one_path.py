"""One path per thing: every layer runs through ``layer(x)`` -> ``forward`` wherever it is
called from (model(x), predict, evaluate, fit), caches know which forward they belong to,
and the training step is public and overridable (Keras' contract)."""

from __future__ import annotations

import numpy as np
import pytest

import numvgg
from numvgg.debug.trace import step, trace
from numvgg.layers import Conv2D, Dense, GlobalAveragePooling2D, Input, MaxPooling2D
from numvgg.models import Model, Sequential


def small_model():
    numvgg.set_random_seed(3)
    inputs = Input((8, 8, 3))
    x = Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = MaxPooling2D(name="pool")(x)
    x = GlobalAveragePooling2D(name="gap")(x)
    out = Dense(1, activation="sigmoid", name="out")(x)
    return Model(inputs, out, name="small")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 8, 8, 3)).astype("float32"), np.array([[0], [1]] * 3, "float32")


@pytest.mark.parametrize("how", ["call", "predict", "evaluate", "fit", "train_on_batch"])
def test_every_entry_point_runs_every_layers_forward(how, data):
    """A breakpoint in MaxPooling2D.forward fires from every entry point, and trace sees
    every layer (pooling included) whatever runs the model."""
    x, y = data
    model = small_model()
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    with trace(model, record="output") as t:
        if how == "call":
            model(x)
        elif how == "predict":
            model.predict(x, verbose=0)
        elif how == "evaluate":
            model.evaluate(x, y, verbose=0)
        elif how == "fit":
            model.fit(x, y, epochs=1, batch_size=3, verbose=0)
        else:
            model.train_on_batch(x, y)
    for name in ("conv", "pool", "gap", "out"):
        assert t[name].n_forward >= 1, f"{name} did not run through forward() in {how}"
        assert t[name].output is not None


def test_predict_keeps_no_cache_and_pooling_skips_the_winners(data):
    x, _ = data
    model = small_model()
    model.predict(x, verbose=0)
    assert all(layer._cache is None for layer in model.leaf_layers())


def test_backward_after_a_broken_off_step_names_the_stale_layer(data):
    """Full forward, then step() on another image broken off early, then backward: the
    gradients would mix two forwards' caches. numvgg refuses, naming the layer."""
    x, _ = data
    model = small_model()
    out = model(x)
    steps = step(model, x[:2] * 2.0)
    next(steps)  # 'conv' ran again on another input
    with pytest.raises(RuntimeError, match="layer 'conv' ran again after the model's last forward"):
        model.backward(np.ones_like(out))
    model(x)  # a complete forward makes it consistent again
    assert model.backward(np.ones_like(out)).shape == x.shape


def test_a_complete_step_is_a_forward(data):
    x, _ = data
    model = small_model()
    for _ in step(model, x):
        pass
    dx_step = model.backward(np.ones((6, 1), "float32"))
    model(x)
    np.testing.assert_array_equal(dx_step, model.backward(np.ones((6, 1), "float32")))


def test_direct_forward_after_predict_keeps_its_cache(data):
    """keep_cache=False applies to one call only."""
    x, _ = data
    model = small_model()
    model.predict(x, verbose=0)
    out = model.forward(x)
    assert model.backward(np.ones_like(out)).shape == x.shape


def test_train_step_is_public_and_overridable(data):
    """Keras' contract: a subclass's train_step is what fit runs."""
    x, y = data
    calls = []

    class Counting(Sequential):
        def train_step(self, data):
            calls.append(len(data[0]))
            return super().train_step(data)

    model = Counting([Input((8, 8, 3)), Conv2D(2, 3), GlobalAveragePooling2D(), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert calls == [4, 2, 4, 2]
    assert len(history.history["loss"]) == 2


def test_test_and_predict_steps_are_public(data):
    x, y = data
    model = small_model()
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["acc"])
    logs = model.test_step((x, y))
    assert set(logs) == {"loss", "acc"}
    np.testing.assert_array_equal(model.predict_step((x,)), model.predict(x, verbose=0))


def test_backward_stops_at_the_lowest_trained_layer(data, monkeypatch):
    """The frozen bottom keeps no caches and gets no backward (one training step)."""
    from numvgg.ops import conv as conv_ops

    x, y = data
    model = small_model()
    model.get_layer("conv").trainable = False
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    calls = []
    real = conv_ops.conv2d_backward
    monkeypatch.setattr(conv_ops, "conv2d_backward", lambda *a, **k: calls.append(1) or real(*a, **k))
    model.train_on_batch(x, y)
    assert calls == []


def test_predict_holds_only_the_activations_still_needed():
    """The forward loop lets go of each activation once no later node reads it: the peak of a
    10-layer chain stays near two activations, not ten (predict's memory goal needs it)."""
    import tracemalloc

    from numvgg.layers import Activation

    model = Sequential([Input((1000,)), *[Activation("tanh") for _ in range(10)]])
    x = np.ones((250, 1000), "float32")  # one activation: 1 MB
    model.predict(x, batch_size=250, verbose=0)  # warm-up
    tracemalloc.start()
    model.predict(x, batch_size=250, verbose=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * x.nbytes, f"peak {peak / 1e6:.1f} MB for 1 MB activations"
