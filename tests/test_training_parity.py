"""The seed's two-phase recipe, step for step against Keras 3 from the same weights."""

import numpy as np
import pytest

import numvgg.ops.conv as conv_ops
from numvgg import initializers
from numvgg.applications.vgg16 import VGG16
from numvgg.layers import Dense, GlobalAveragePooling2D
from numvgg.models import Sequential
from numvgg.optimizers import Adam

SIZE = 32


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def build_numvgg(units=16):
    initializers.set_seed(0)  # the same weights in every run (checked with seeds 0, 3, 5, 9)
    base = VGG16(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    model = Sequential(
        [base, GlobalAveragePooling2D(), Dense(units, activation="relu"), Dense(1, activation="sigmoid")]
    )
    return model, base


def build_keras(keras, model):
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    kmodel = keras.Sequential(
        [
            base,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(model.layers[2].units, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    kmodel.build((None, SIZE, SIZE, 3))
    kmodel.set_weights(model.get_weights())
    return kmodel, base


def unfreeze_block5(base):
    """The seed's loop: everything from block5_conv1 on trains."""
    base.trainable = True
    set_trainable = False
    for layer in base.layers:
        if layer.name == "block5_conv1":
            set_trainable = True
        layer.trainable = set_trainable


@pytest.fixture(scope="module")
def batches():
    rng = np.random.default_rng(7)
    x = rng.uniform(-60, 60, size=(4, 8, SIZE, SIZE, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=(4, 8, 1)).astype(np.float32)
    return x, y


@pytest.mark.slow
def test_seed_recipe_two_phases_match_keras_step_by_step(keras, batches):
    xs, ys = batches
    model, base = build_numvgg()
    kmodel, kbase = build_keras(keras, model)

    # Phase 1: frozen base.
    base.trainable = False
    kbase.trainable = False
    model.compile(optimizer=Adam(learning_rate=1e-3), loss="binary_crossentropy", metrics=["acc"])
    kmodel.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy", metrics=["acc"]
    )
    frozen_before = base.get_weights()
    for x, y in zip(xs, ys):
        ours = model.train_on_batch(x, y)
        theirs = kmodel.train_on_batch(x, y)
        assert rel(ours[0], theirs[0]) < 1e-4, (ours, theirs)
        assert ours[1] == pytest.approx(theirs[1])
    for a, b in zip(base.get_weights(), frozen_before):
        assert np.array_equal(a, b), "a frozen weight changed in phase 1"
    for ours, theirs in zip(model.get_weights()[-4:], kmodel.get_weights()[-4:]):
        assert rel(ours, theirs) < 1e-4

    # Phase 2: block5 unfrozen, recompiled with a small rate.
    unfreeze_block5(base)
    unfreeze_block5(kbase)
    model.compile(optimizer=Adam(learning_rate=1e-4), loss="binary_crossentropy", metrics=["acc"])
    kmodel.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-4), loss="binary_crossentropy", metrics=["acc"]
    )
    below_block5 = [w.copy() for l in base.layers[:14] for w in l.weights]
    for x, y in zip(xs, ys):
        ours = model.train_on_batch(x, y)
        theirs = kmodel.train_on_batch(x, y)
        assert rel(ours[0], theirs[0]) < 1e-4, (ours, theirs)
    for a, b in zip([w for l in base.layers[:14] for w in l.weights], below_block5):
        assert np.array_equal(a, b), "a weight below block5 changed in phase 2"
    names = [f"{l.name}/{k}" for l in base.layers[14:] for k in l.params]
    ours_b5 = [w for l in base.layers[14:] for w in l.weights]
    theirs_b5 = [w.numpy() for l in kbase.layers[-4:] for w in l.weights]
    steps = len(xs)
    scales = {l.name: float(np.abs(l.params["kernel"]).max()) for l in base.layers[14:] if l.params}
    for name, a, b in zip(names, ours_b5, theirs_b5):
        # Adam divides by sqrt(v): where a gradient is float32 noise around 0 (the two
        # libraries sum in other orders), the step is +-lr either way. So: nearly every
        # entry within 1e-4 of the layer's largest kernel weight (biases start at 0: their
        # own size is no scale), and none further than that sign flip can move it
        # (2 * lr per step) -- a real bug moves many entries, far more.
        diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
        tight = diff <= 1e-4 * scales[name.split("/")[0]]
        assert tight.mean() >= 0.99, (name, float(tight.mean()))
        assert diff.max() <= 2 * 1e-4 * steps, (name, float(diff.max()))
    for a, b in zip(model.get_weights()[-4:], kmodel.get_weights()[-4:]):
        assert rel(a, b) < 1e-4


def test_phase1_never_backpropagates_into_the_conv_base(monkeypatch, batches):
    calls = []
    real = conv_ops.conv2d_backward

    def counting(*args, **kwargs):
        calls.append(args[1].kernel.shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(conv_ops, "conv2d_backward", counting)
    xs, ys = batches
    model, base = build_numvgg()
    base.trainable = False
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc"])
    model.train_on_batch(xs[0], ys[0])
    assert calls == [], "phase 1 ran a conv backward"

    unfreeze_block5(base)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.train_on_batch(xs[0], ys[0])
    assert len(calls) == 3, "phase 2 must backpropagate through block5's three convs only"


@pytest.mark.slow
def test_fit_history_matches_keras(keras, batches):
    xs, ys = batches
    x, y = xs.reshape(-1, SIZE, SIZE, 3), ys.reshape(-1, 1)
    model, base = build_numvgg()
    kmodel, kbase = build_keras(keras, model)
    base.trainable = False
    kbase.trainable = False
    model.compile(optimizer=Adam(learning_rate=1e-3), loss="binary_crossentropy", metrics=["acc"])
    kmodel.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy", metrics=["acc"]
    )
    h = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, validation_data=(x[:8], y[:8]), verbose=0)
    kh = kmodel.fit(x, y, batch_size=8, epochs=2, shuffle=False, validation_data=(x[:8], y[:8]), verbose=0)
    assert sorted(h.history) == sorted(kh.history) == ["acc", "loss", "val_acc", "val_loss"]
    for key in kh.history:
        assert np.allclose(h.history[key], kh.history[key], rtol=1e-4, atol=1e-6), key
    assert h.epoch == [0, 1]


def test_trainable_change_between_compile_and_fit_is_honoured(batches):
    """Keras 3 reads the flags at the first fit after compile, not at compile
    (tests/test_keras_fidelity.py compares every such case with Keras)."""
    xs, ys = batches
    model, base = build_numvgg()
    base.trainable = False
    model.compile(optimizer="adam", loss="binary_crossentropy")
    base.trainable = True
    before = base.get_weights()
    model.fit(xs[0], ys[0], epochs=1, verbose=0)
    assert not all(np.array_equal(a, b) for a, b in zip(base.get_weights(), before))
