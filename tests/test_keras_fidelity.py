"""Keras fidelity: the same script, run in Keras 3 and in numvgg, does the same thing.

Every test here runs *one* piece of code twice -- once with ``K = keras``, once
with ``K = numvgg`` (which exposes ``Input``, ``Model``, ``Sequential``,
``layers``, ``optimizers``, ``applications`` under Keras' names) -- and
compares what happened: which layers the code picked, which layers trained,
the losses and weights, the gradients. A divergence makes a test fail.
"""

from __future__ import annotations

import numpy as np
import pytest

import numvgg

pytestmark = pytest.mark.keras


def _changed(model, before):
    return [l.name for l, b in zip(_dense_layers(model), before) if not np.array_equal(l.get_weights()[0], b)]


def _dense_layers(model):
    return [l for l in model.layers if l.get_weights()]


def _snapshot(model):
    return [l.get_weights()[0].copy() for l in _dense_layers(model)]


# -- 1. layer lists and indexing ------------------------------------------------------
@pytest.mark.parametrize("include_top", [False, True])
def test_vgg16_layers_count_and_index_like_keras(keras, include_top):
    """Code that counts layers from the front picks the same layers in both."""
    names = {}
    for K in (keras, numvgg):
        base = K.applications.VGG16(
            weights=None, include_top=include_top, input_shape=(224, 224, 3) if include_top else (32, 32, 3)
        )
        base.trainable = True
        for layer in base.layers[:15]:  # the seed's "unfreeze block5" idiom
            layer.trainable = False
        names[K.__name__] = dict(
            count=len(base.layers),
            first=type(base.layers[0]).__name__,
            trainable=[l.name for l in base.layers if l.trainable and l.weights],
            last4=[l.name for l in base.layers[-4:]],
            n_trainable_weights=len(base.trainable_weights),
        )
    assert names["numvgg"] == names["keras"]
    assert names["numvgg"]["count"] == (23 if include_top else 19)


def test_sequential_with_input_lists_no_input_layer(keras):
    for K in (keras, numvgg):
        model = K.Sequential([K.Input((8,)), K.layers.Dense(4), K.layers.Dense(1)])
        assert [type(l).__name__ for l in model.layers] == ["Dense", "Dense"], K.__name__
        model.build()  # Keras 3: no argument with an Input
        popped = model.pop()
        assert type(popped).__name__ == "Dense" and len(model.layers) == 1


def test_functional_layers_start_with_the_input_layer(keras):
    for K in (keras, numvgg):
        inputs = K.Input((8,), name="inp")
        a = K.layers.Dense(4, name="a")(inputs)
        b = K.layers.Dense(4, name="b")(inputs)
        out = K.layers.Dense(1, name="out")(K.layers.Concatenate(name="cat")([a, b]))
        model = K.Model(inputs, out)
        assert [l.name for l in model.layers] == ["inp", "a", "b", "cat", "out"], K.__name__
        assert model.get_layer(index=0).name == "inp"
        assert model.input.shape == (None, 8) and tuple(model.output.shape) == (None, 1)


# -- 2. when the trainable flags are read ---------------------------------------------------
def _tob(n):
    return lambda m, x, y: m.train_on_batch(x[:n], y[:n])


def _fit(batch_size=8, n=8):
    return lambda m, x, y: m.fit(x[:n], y[:n], batch_size=batch_size, verbose=0, shuffle=False)


def _evaluate(m, x, y):
    m.evaluate(x, y, verbose=0)


def _freeze(m, x, y):
    m.layers[0].trainable = False


def _unfreeze(m, x, y):
    m.layers[0].trainable = True


def _recompile(m, x, y):
    m.compile(optimizer="sgd", loss="mse")


MARK = "mark"
# (name, steps): after "mark", which Dense layers change is compared between Keras and numvgg.
SCENARIOS = [
    ("compile, freeze, fit", [_freeze, MARK, _fit()]),
    ("fit, freeze, fit (no recompile)", [_fit(), _freeze, MARK, _fit()]),
    ("train_on_batch, freeze, train_on_batch", [_tob(8), _freeze, MARK, _tob(8)]),
    ("evaluate, freeze, fit", [_evaluate, _freeze, MARK, _fit()]),
    ("fit, freeze, train_on_batch", [_fit(), _freeze, MARK, _tob(8)]),
    ("train_on_batch, freeze, fit", [_tob(8), _freeze, MARK, _fit()]),
    ("fit, freeze, recompile, fit", [_fit(), _freeze, _recompile, MARK, _fit()]),
    ("fit, freeze, evaluate, fit", [_fit(), _freeze, _evaluate, MARK, _fit()]),
    ("tob(8), freeze, tob(4): a new batch shape traces again", [_tob(8), _freeze, MARK, _tob(4)]),
    (
        "tob(8), tob(4), freeze, tob(2): the relaxed trace is reused",
        [_tob(8), _tob(4), _freeze, MARK, _tob(2)],
    ),
    ("fit bs 8, freeze, fit bs 4: another batch shape", [_fit(8), _freeze, MARK, _fit(4)]),
    ("fit bs 8, freeze, fit bs 3: a partial batch", [_fit(8), _freeze, MARK, _fit(3)]),
    ("frozen at compile, fit, unfreeze, fit", [_freeze, _fit(), _unfreeze, MARK, _fit()]),
    (
        "frozen, fit, unfreeze, fit with a new batch shape (unknown variable)",
        [_freeze, _fit(), _unfreeze, MARK, _fit(4)],
    ),
]


def _run_scenario(K, steps, weights, x, y):
    model = K.Sequential([K.Input((4,)), K.layers.Dense(3, name="a"), K.layers.Dense(1, name="b")])
    model.set_weights(weights)
    model.compile(optimizer="sgd", loss="mse")
    before = None
    for step in steps:
        if step == MARK:
            before = _snapshot(model)
            continue
        try:
            step(model, x, y)
        except ValueError as e:
            assert "Unknown variable" in str(e), str(e)
            return "ValueError: Unknown variable"
    return _changed(model, before)


@pytest.mark.parametrize("name,steps", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_trainable_flags_are_read_when_keras_reads_them(keras, name, steps):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    weights = [rng.normal(size=s).astype("float32") for s in [(4, 3), (3,), (3, 1), (1,)]]
    theirs = _run_scenario(keras, steps, weights, x, y)
    ours = _run_scenario(numvgg, steps, weights, x, y)
    assert ours == theirs, f"{name}: Keras changed {theirs}, numvgg changed {ours}"


def test_run_eagerly_reads_the_flags_every_step(keras):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    weights = [rng.normal(size=s).astype("float32") for s in [(4, 3), (3,), (3, 1), (1,)]]
    result = {}
    for K in (keras, numvgg):
        model = K.Sequential([K.Input((4,)), K.layers.Dense(3, name="a"), K.layers.Dense(1, name="b")])
        model.set_weights(weights)
        model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
        model.fit(x, y, verbose=0, shuffle=False)
        model.layers[0].trainable = False
        before = _snapshot(model)
        model.fit(x, y, verbose=0, shuffle=False)
        result[K.__name__] = _changed(model, before)
    assert result["numvgg"] == result["keras"] == ["b"]


# -- 3. the functional API: branches, fan-out, gradients --------------------------------------
def _two_branch(K, weights=None):
    inputs = K.Input((6,), name="x")
    h = K.layers.Dense(5, activation="relu", name="h")(inputs)
    a = K.layers.Dense(4, activation="tanh", name="a")(h)
    b = K.layers.Dense(3, activation="sigmoid", name="b")(h)  # h fans out to a and b
    c = K.layers.Concatenate(name="cat")([a, b])
    s = K.layers.Add(name="add")([K.layers.Dense(7, name="pa")(c), K.layers.Dense(7, name="pb")(c)])
    out = K.layers.Dense(2, name="out")(s)
    model = K.Model(inputs, [out, a], name="two_branch")
    if weights is not None:
        model.set_weights(weights)
    return model


def test_two_branch_model_forward_and_backward_match_keras(keras, tf):
    ours = _two_branch(numvgg)
    theirs = _two_branch(keras, ours.get_weights())
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 6)).astype("float32")
    d_out, d_a = rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(3, 4)).astype("float32")

    out, a = ours(x)
    dx = ours.backward([d_out, d_a])
    ours_grads = [g for layer in ours.leaf_layers() for g in layer.grads]

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        k_out, k_a = theirs(xt)
        fake_loss = tf.reduce_sum(k_out * d_out) + tf.reduce_sum(k_a * d_a)
    k_grads = tape.gradient(fake_loss, [xt] + theirs.trainable_weights)

    np.testing.assert_allclose(out, k_out.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, k_a.numpy(), rtol=1e-5, atol=1e-6)
    scale = max(np.abs(g.numpy()).max() for g in k_grads)
    assert np.abs(dx - k_grads[0].numpy()).max() <= 1e-5 * scale
    for ours_g, k_g in zip(ours_grads, k_grads[1:]):
        assert np.abs(ours_g - k_g.numpy()).max() <= 1e-5 * scale


def test_two_branch_summary_is_keras_table_with_connected_to(keras):
    ours = _two_branch(numvgg)
    theirs = _two_branch(keras, ours.get_weights())
    lines = []
    theirs.summary(print_fn=lambda line, **kwargs: lines.append(line))
    text = ours.summary(print_fn=None)
    assert "Connected to" in text and "a[0][0], b[0][0]" in text
    assert text.splitlines() == "\n".join(lines).splitlines()


def _keras_leaves(model):
    """A Keras model's layers in order, nested models opened."""
    out = []
    for layer in model.layers:
        out.extend(_keras_leaves(layer) if hasattr(layer, "layers") else [layer])
    return out


class _FedDropout:
    """Uniform draws shared by both frameworks, so Dropout masks are equal."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.draws = []

    def random(self, shape):
        u = self.rng.random(shape).astype(np.float32)
        self.draws.append(u)
        return u


def test_functional_transfer_learning_two_phases_match_keras(keras):
    """Input -> VGG16 base -> GAP -> Dropout -> Dense(1, sigmoid); phase 1 frozen base,
    phase 2 block5 unfrozen (base.layers[15:]): losses and weights as Keras'."""
    import tensorflow as tf

    from numvgg import initializers

    initializers.set_seed(0)  # the same weights in every run (checked with seeds 0-3)
    rate = 0.5
    draws = _FedDropout(7)

    class KerasFedDropout(keras.layers.Layer):
        """Keras' inverted dropout with numvgg's uniform draws (the same masks)."""

        def __init__(self, source, **kwargs):
            super().__init__(**kwargs)
            self.source = source
            self.used = 0

        def call(self, x, training=False):
            if not training:
                return x
            u = self.source.draws[self.used]
            self.used += 1
            return x * tf.cast(u >= rate, x.dtype) / (1.0 - rate)

    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
    y = np.array([[0], [1]] * 4, dtype="float32")

    def build(K, dropout):
        base = K.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
        inputs = K.Input((32, 32, 3))
        h = K.layers.GlobalAveragePooling2D()(base(inputs))
        out = K.layers.Dense(1, activation="sigmoid")(dropout(h))
        return base, K.Model(inputs, out)

    ours_dropout = numvgg.layers.Dropout(rate)
    ours_dropout.rng = draws
    base, ours = build(numvgg, ours_dropout)
    k_base, theirs = build(keras, KerasFedDropout(draws))
    theirs.set_weights(ours.get_weights())

    # numvgg runs first each phase, so its draws are there when Keras' layer reads them.
    histories = []
    for phase in (1, 2):
        for b in (base, k_base):
            b.trainable = phase == 2
            if phase == 2:
                for layer in b.layers[:15]:
                    layer.trainable = False
        lr = 1e-3 if phase == 1 else 1e-5
        ours.compile(
            optimizer=numvgg.optimizers.Adam(learning_rate=lr), loss="binary_crossentropy", metrics=["acc"]
        )
        # Eager, so the fed dropout layer reads a new draw each step (a traced
        # call would bake the first draw into the graph).
        theirs.compile(
            optimizer=keras.optimizers.Adam(learning_rate=lr),
            loss="binary_crossentropy",
            metrics=["acc"],
            run_eagerly=True,
        )
        h1 = ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
        h2 = theirs.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
        histories.append((h1.history, h2.history))
        np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-4)
        assert h1.history["acc"] == pytest.approx(h2.history["acc"])
        k_weighted = [l for l in _keras_leaves(theirs) if l.get_weights()]
        for layer, k_layer in zip([l for l in ours.leaf_layers() if l.params], k_weighted):
            # Adam divides by sqrt(v): a gradient that is float32 noise around 0 moves a
            # weight by up to lr either way. Compare each weight on its layer's scale.
            scale = max(np.abs(w).max() for w in k_layer.get_weights())
            for w_ours, w_theirs in zip(layer.get_weights(), k_layer.get_weights()):
                assert np.abs(w_ours - w_theirs).max() <= 1e-4 * scale, layer.name
    # Phase 1 left the base alone; phase 2 changed block5 only.
    assert [l.name for l in base.layers if l.trainable and l.weights] == [
        "block5_conv1",
        "block5_conv2",
        "block5_conv3",
    ]


# -- 4. summary after training, and Keras' warnings ----------------------------------------
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_summary_after_fit_counts_optimizer_params_like_keras(keras, optimizer):
    texts = {}
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(4, 5)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")
    for K in (keras, numvgg):
        model = K.Sequential([K.Input((5,), name="x"), K.layers.Dense(3, name="d")], name="m")
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, verbose=0)
        lines = []
        model.summary(print_fn=lambda line, lines=lines, **kwargs: lines.append(line))
        texts[K.__name__] = "\n".join(lines).splitlines()
    assert texts["numvgg"] == texts["keras"]
    assert any("Optimizer params" in line for line in texts["numvgg"])


def test_input_shape_on_a_layer_warns_like_keras(keras):
    for K in (keras, numvgg):
        with pytest.warns(UserWarning, match="prefer using an `Input\\(shape\\)` object"):
            K.layers.Dense(3, input_shape=(4,))


def test_batchnorm_frozen_without_recompiling_keeps_its_traced_mode(keras):
    """Keras reads BatchNormalization's flag when the step is traced: frozen after a fit
    (no recompile), it still normalizes with batch statistics and updates them."""
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(16, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    results = {}
    weights = None
    for K in (numvgg, keras):
        model = K.Sequential(
            [K.Input((4,)), K.layers.Dense(3), K.layers.BatchNormalization(name="bn"), K.layers.Dense(1)]
        )
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        model.get_layer("bn").trainable = False  # forgot to recompile
        h = model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        results[K.__name__] = (h.history["loss"][0], model.get_layer("bn").get_weights())
    ours, theirs = results["numvgg"], results["keras"]
    assert ours[0] == pytest.approx(theirs[0], rel=1e-5)
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_multi_output_fit_and_evaluate_match_keras(keras):
    """A list (or dict) of targets, one loss per output, loss_weights: the same history keys
    (each output's unweighted loss too) and values; several inputs predict as one array each."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3)).astype("float32")
    y1 = rng.normal(size=(6, 1)).astype("float32")
    y2 = (rng.random((6, 1)) > 0.5).astype("float32")
    results, weights = {}, None
    for K in (numvgg, keras):
        inputs = K.Input((3,))
        h = K.layers.Dense(4)(inputs)
        model = K.Model(
            inputs, [K.layers.Dense(1, name="o1")(h), K.layers.Dense(1, name="o2", activation="sigmoid")(h)]
        )
        weights = weights or model.get_weights()
        model.set_weights(weights)
        model.compile(optimizer="sgd", loss=["mse", "binary_crossentropy"], loss_weights=[0.5, 2.0])
        history = model.fit(x, [y1, y2], epochs=2, batch_size=3, verbose=0, shuffle=False)
        evaluated = model.evaluate(x, {"o1": y1, "o2": y2}, verbose=0)
        a, b = K.Input((3,)), K.Input((3,))
        two_in = K.Model([a, b], K.layers.Concatenate()([a, b]))
        results[K.__name__] = (history.history, evaluated, two_in.predict([x, 2 * x], verbose=0))
    (h_ours, e_ours, p_ours), (h_theirs, e_theirs, p_theirs) = results["numvgg"], results["keras"]
    assert sorted(h_ours) == sorted(h_theirs) == ["loss", "o1_loss", "o2_loss"]
    for key in h_theirs:
        np.testing.assert_allclose(h_ours[key], h_theirs[key], rtol=1e-5)
    np.testing.assert_allclose(e_ours, e_theirs, rtol=1e-5)
    np.testing.assert_array_equal(p_ours, p_theirs)


def test_layer_input_output_and_a_feature_extractor_like_keras(keras):
    """``Model(vgg.input, vgg.get_layer(name).output)``: the classic feature extractor."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    outs = {}
    weights = None
    for K in (numvgg, keras):
        vgg = K.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
        weights = weights or vgg.get_weights()
        vgg.set_weights(weights)
        extractor = K.Model(
            vgg.input, [vgg.get_layer("block3_pool").output, vgg.get_layer("block4_conv1").output]
        )
        dense = K.layers.Dense(2, name="d")
        with pytest.raises(AttributeError, match="has never been called"):
            _ = dense.output
        dense(K.Input((3,)))
        outs[K.__name__] = (
            extractor.predict(x, verbose=0),
            extractor.output_names,
            tuple(vgg.get_layer("block1_conv1").input.shape),
            tuple(dense.output.shape),
        )
    (p_ours, n_ours, *s_ours), (p_theirs, n_theirs, *s_theirs) = outs["numvgg"], outs["keras"]
    assert n_ours == n_theirs == ["block3_pool", "block4_conv1"] and s_ours == s_theirs
    for a, b in zip(p_ours, p_theirs):
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


def test_preprocess_input_inside_a_functional_model_like_keras(keras, tf):
    """Chollet's ch. 8: `x = preprocess_input(x)` on the symbolic tensor, then the conv base."""
    rng = np.random.default_rng(10)
    pixels = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    got, weights = {}, None
    for K, pre in (
        (numvgg, numvgg.applications.vgg16.preprocess_input),
        (keras, keras.applications.vgg16.preprocess_input),
    ):
        inputs = K.Input((32, 32, 3))
        out = K.layers.Dense(1)(K.layers.Flatten()(K.layers.Conv2D(2, 3)(pre(inputs))))
        model = K.Model(inputs, out)
        weights = weights or model.get_weights()
        model.set_weights(weights)
        got[K.__name__] = model.predict(pixels.copy(), verbose=0)
        if K is numvgg:
            dy = rng.normal(size=(2, 1)).astype("float32")
            model(pixels.copy())
            dx = model.backward(dy)
    np.testing.assert_allclose(got["numvgg"], got["keras"], rtol=1e-5, atol=1e-4)
    xt = tf.constant(pixels)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(model(xt) * dy)
    k_dx = tape.gradient(loss, xt).numpy()
    assert np.abs(dx - k_dx).max() <= 1e-5 * np.abs(k_dx).max()


@pytest.mark.parametrize("graph", [False, True])
def test_summary_show_trainable_like_keras(keras, graph):
    """The keras-io transfer-learning guide prints `summary(show_trainable=True)`."""
    texts = {}
    for K in (numvgg, keras):
        if graph:
            i = K.Input((5,), name="x")
            a, b = K.layers.Dense(3, name="a")(i), K.layers.Dense(3, name="b")(i)
            model = K.Model(i, K.layers.Concatenate(name="c")([a, b]), name="g")
        else:
            model = K.Sequential(
                [
                    K.Input((5,), name="x"),
                    K.layers.Dense(3, name="a"),
                    K.layers.Dropout(0.1, name="dr"),
                    K.layers.Dense(1, name="e"),
                ],
                name="m",
            )
        model.get_layer("a").trainable = False
        lines = []
        model.summary(show_trainable=True, print_fn=lambda line, lines=lines, **kwargs: lines.append(line))
        texts[K.__name__] = "\n".join(lines).splitlines()
    assert texts["numvgg"] == texts["keras"]
