"""numvgg vs Keras 3, numerically: every layer type alone, then whole VGG16 models.

For each case both sides get the same float32 weights and input. Forward
outputs are compared first (shape, then dtype, then values); then the
gradients of the fake loss ``L = sum(out * dout)`` for a random ``dout`` (the
llm.c trick): numvgg's ``backward(dout)`` against ``tf.GradientTape``, for the
input and every weight.

Error measure, per tensor: ``max |numvgg - keras| / max |keras|``. numvgg's
promise is forward <= 1e-4 and gradients <= 1e-3 (FORWARD_CONTRACT,
GRADIENT_CONTRACT); both sides compute in float32, so in practice the errors
are ~1e-6 and the tests hold them to TIGHT = 1e-5. A failure prints the
error of every tensor of the case.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

from numvgg.debug.trace import trace
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

FORWARD_CONTRACT = 1e-4
GRADIENT_CONTRACT = 1e-3
TIGHT = 1e-5


def rel_to_max(ours, theirs) -> float:
    """``max |ours - theirs| / max |theirs|`` (0 when both are all zeros)."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    scale = np.max(np.abs(theirs), initial=0.0)
    diff = np.max(np.abs(ours - theirs), initial=0.0)
    return 0.0 if diff == 0.0 else diff / max(scale, 1e-30)


def assert_parity(forward_pairs, gradient_pairs, tight=TIGHT):
    """Check ``[(name, ours, keras), ...]`` lists; on failure print every tensor's error.

    Shapes and dtypes must match exactly; values within the contract
    (1e-4 forward, 1e-3 gradients) and within ``tight``.
    """
    rows, failed = [], []
    for kind, pairs, contract in (
        ("forward", forward_pairs, FORWARD_CONTRACT),
        ("gradient", gradient_pairs, GRADIENT_CONTRACT),
    ):
        for name, ours, theirs in pairs:
            theirs = np.asarray(theirs)
            if ours is None or ours.shape != theirs.shape or ours.dtype != np.float32:
                got = None if ours is None else (ours.shape, ours.dtype)
                rows.append(f"  {kind:8} {name:32} BAD SHAPE/DTYPE numvgg {got} keras {theirs.shape}")
                failed.append(name)
                continue
            err = rel_to_max(ours, theirs)
            verdict = (
                "ok"
                if err <= min(contract, tight)
                else ("ABOVE TIGHT BOUND" if err <= contract else "BREAKS CONTRACT")
            )
            rows.append(f"  {kind:8} {name:32} {err:.2e}  {verdict}")
            if verdict != "ok":
                failed.append(name)
    assert not failed, (
        f"{len(failed)} tensor(s) differ from Keras: {failed}\n"
        "relative error max|numvgg-keras|/max|keras| per tensor:\n" + "\n".join(rows)
    )


# -- one layer at a time ------------------------------------------------------------------

LAYER_CASES = {
    "conv3x3-same-s1-relu": (
        lambda: Conv2D(5, (3, 3), padding="same", activation="relu"),
        lambda k: k.layers.Conv2D(5, (3, 3), padding="same", activation="relu"),
        (2, 7, 6, 3),
    ),
    "conv3x3-same-s2-even": (
        lambda: Conv2D(4, (3, 3), strides=2, padding="same"),
        lambda k: k.layers.Conv2D(4, (3, 3), strides=2, padding="same"),
        (2, 6, 8, 3),
    ),  # odd total padding: the extra pixel goes after
    "conv3x3-valid-s2": (
        lambda: Conv2D(4, (3, 3), strides=2, padding="valid", activation="tanh"),
        lambda k: k.layers.Conv2D(4, (3, 3), strides=2, padding="valid", activation="tanh"),
        (3, 7, 8, 2),
    ),
    "conv1x2-same-s1-sigmoid": (
        lambda: Conv2D(3, (1, 2), padding="same", activation="sigmoid"),
        lambda k: k.layers.Conv2D(3, (1, 2), padding="same", activation="sigmoid"),
        (2, 5, 7, 4),
    ),
    "conv1x2-valid-s21-nobias": (
        lambda: Conv2D(3, (1, 2), strides=(2, 1), use_bias=False),
        lambda k: k.layers.Conv2D(3, (1, 2), strides=(2, 1), use_bias=False),
        (2, 5, 7, 4),
    ),
    "dense-relu": (
        lambda: Dense(6, activation="relu"),
        lambda k: k.layers.Dense(6, activation="relu"),
        (4, 9),
    ),
    "dense-sigmoid": (
        lambda: Dense(1, activation="sigmoid"),
        lambda k: k.layers.Dense(1, activation="sigmoid"),
        (4, 9),
    ),
    "dense-softmax": (
        lambda: Dense(5, activation="softmax"),
        lambda k: k.layers.Dense(5, activation="softmax"),
        (3, 7),
    ),
    "dense-linear": (lambda: Dense(5), lambda k: k.layers.Dense(5), (3, 7)),
    "flatten": (lambda: Flatten(), lambda k: k.layers.Flatten(), (2, 3, 4, 5)),
    "dropout-inference": (lambda: Dropout(0.5), lambda k: k.layers.Dropout(0.5), (3, 4, 5)),
    "activation-relu": (lambda: Activation("relu"), lambda k: k.layers.Activation("relu"), (2, 3, 5)),
    "activation-sigmoid": (
        lambda: Activation("sigmoid"),
        lambda k: k.layers.Activation("sigmoid"),
        (2, 3, 5),
    ),
    "activation-tanh": (lambda: Activation("tanh"), lambda k: k.layers.Activation("tanh"), (2, 3, 5)),
    "activation-softmax": (
        lambda: Activation("softmax"),
        lambda k: k.layers.Activation("softmax"),
        (2, 3, 5),
    ),
    "maxpool2x2-odd": (lambda: MaxPooling2D(), lambda k: k.layers.MaxPooling2D(), (2, 7, 5, 3)),
    "maxpool3x3-s2-valid": (
        lambda: MaxPooling2D(3, strides=2),
        lambda k: k.layers.MaxPooling2D(3, strides=2),
        (2, 9, 8, 3),
    ),
    "maxpool3x3-s2-same": (
        lambda: MaxPooling2D(3, strides=2, padding="same"),
        lambda k: k.layers.MaxPooling2D(3, strides=2, padding="same"),
        (2, 6, 7, 3),
    ),
    "maxpool2x2-same-odd": (
        lambda: MaxPooling2D(padding="same"),
        lambda k: k.layers.MaxPooling2D(padding="same"),
        (2, 5, 7, 3),
    ),
    "global-avg": (
        lambda: GlobalAveragePooling2D(),
        lambda k: k.layers.GlobalAveragePooling2D(),
        (2, 5, 7, 3),
    ),
    "global-max": (lambda: GlobalMaxPooling2D(), lambda k: k.layers.GlobalMaxPooling2D(), (2, 5, 7, 3)),
}


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_layer_matches_keras(case, keras, tf):
    make_ours, make_theirs, shape = LAYER_CASES[case]
    rng = np.random.default_rng(len(case))
    x = rng.standard_normal(shape).astype(np.float32)

    ours = make_ours()
    ours.build((None, *shape[1:]))
    for w in ours.weights:  # random biases too: zeros would test less
        w[...] = rng.normal(0.0, 0.5, w.shape)
    theirs = make_theirs(keras)
    theirs.build((None, *shape[1:]))
    theirs.set_weights(ours.get_weights())

    out = ours.forward(x, training=False)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = ours.backward(dout)

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        k_out = theirs(xt, training=False)
        loss = tf.reduce_sum(k_out * dout)
    k_grads = tape.gradient(loss, [xt, *theirs.trainable_weights])

    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    assert_parity(
        [("out", out, k_out)],
        [("dx", dx, k_grads[0])]
        + [(f"d{name}", g, kg) for name, g, kg in zip(ours.weight_names, ours.grads, k_grads[1:])],
    )


def _tie_gradients(ours, theirs, x, tf):
    out = ours.forward(x)
    dout = np.arange(1.0, 1.0 + out.size, dtype=np.float32).reshape(out.shape)
    dx = ours.backward(dout)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(theirs(xt) * dout)
    return dx, tape.gradient(loss, xt).numpy()


@pytest.mark.parametrize("pool, strides", [((2, 2), None), ((3, 3), (1, 1)), ((2, 3), (1, 2))])
def test_max_pool_ties_go_where_keras_sends_them(pool, strides, keras, tf):
    """All-equal windows: TensorFlow, like numvgg, gives each window's gradient to its
    first element in row-major order (no splitting)."""
    x = np.full((2, 5, 6, 3), 0.5, dtype=np.float32)
    dx, k_dx = _tie_gradients(
        MaxPooling2D(pool, strides=strides), keras.layers.MaxPooling2D(pool, strides=strides), x, tf
    )
    np.testing.assert_array_equal(dx, k_dx)


def test_global_max_pool_ties_like_keras(keras, tf):
    x = np.full((1, 3, 4, 2), 0.5, dtype=np.float32)
    dx, k_dx = _tie_gradients(GlobalMaxPooling2D(), keras.layers.GlobalMaxPooling2D(), x, tf)
    np.testing.assert_allclose(dx, k_dx, rtol=1e-6)


def test_dropout_training_statistics_match_keras(keras):
    """Masks come from different generators; the rule (scale 1/(1-rate), rate dropped) is the same."""
    x = np.ones((200, 100), dtype=np.float32)
    ours = Dropout(0.25, seed=0).forward(x, training=True)
    theirs = np.asarray(keras.layers.Dropout(0.25, seed=0)(x, training=True))
    for out in (ours, theirs):
        values = np.unique(out)
        assert len(values) == 2 and values[0] == 0.0 and np.isclose(values[1], 1 / 0.75, rtol=1e-6)
        assert abs((out == 0).mean() - 0.25) < 0.02


# -- whole models -------------------------------------------------------------------------
#
# Models are compared as chains of leaf layers (a nested VGG16 base is opened up), so
# every layer's output is checked, and a failure names the first layer that drifts.
#
# A gradient comparison is only meaningful when both sides took the same branch at every
# kink. float32 rounding differs between NumPy and TensorFlow by ~1e-7, so a ReLU input of
# ~1e-8 can be positive on one side and zero on the other, or two nearly equal values can
# swap the winner of a max-pool window. Both answers are then correct, and the gradients
# differ there by the whole upstream value. The helper checks the forward pass first and,
# if it finds such a crossed kink, draws a new input (and says so if it gives up).


def keras_leaves(model):
    """A Keras model's layers in order, nested models opened, the InputLayer dropped."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            out.extend(keras_leaves(layer))
        elif type(layer).__name__ != "InputLayer":
            out.append(layer)
    return out


def crossed_kinks(leaves, ours_outs, keras_outs) -> list[str]:
    """Where numvgg and Keras took different branches: ReLU outputs zero on one side and
    positive on the other, or max-pool windows (with a positive max) won by another element."""
    from numvgg.ops.pooling import maxpool2d_forward

    found = []
    for i, layer in enumerate(leaves):
        if getattr(layer, "activation_name", None) == "relu":
            n = int(np.count_nonzero((ours_outs[i + 1] > 0) != (keras_outs[i + 1] > 0)))
            if n:
                found.append(f"{layer.name}: {n} ReLU input(s) on the other side of 0")
        if isinstance(layer, MaxPooling2D):
            args = (layer.pool_size, layer.strides, layer.padding)
            out, ours_cache = maxpool2d_forward(ours_outs[i], *args)
            _, keras_cache = maxpool2d_forward(keras_outs[i], *args)
            n = int(np.count_nonzero((ours_cache.argmax != keras_cache.argmax) & (out > 0)))
            if n:
                found.append(f"{layer.name}: {n} window(s) with another winner")
    return found


def assert_chain_parity(keras, tf, ours_model, theirs_model, x_shape, seed, tries=4):
    """Forward (every layer) and backward (input and every weight) parity of two models."""
    from numvgg.models import leaf_layers

    leaves = list(leaf_layers(ours_model))
    k_leaves = keras_leaves(theirs_model)
    assert [type(l).__name__ for l in leaves] == [type(l).__name__ for l in k_leaves]
    k_weights = [w for layer in k_leaves for w in layer.trainable_weights]
    weight_names = [f"{leaf.name}/{k}" for leaf in leaves for k in leaf.params]
    assert [w.shape for w in ours_model.weights] == [tuple(w.shape) for w in k_weights]

    skipped = []
    for attempt in range(tries):
        rng = np.random.default_rng(seed + attempt)
        x = rng.standard_normal(x_shape).astype(np.float32)
        with trace(ours_model, record="output") as t:  # every layer's output, by name
            ours_model(x)
        outs = [x] + [rec.output for rec in t.records.values()]
        dout = rng.standard_normal(outs[-1].shape).astype(np.float32)

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            k_outs = [xt]
            for layer in k_leaves:
                k_outs.append(layer(k_outs[-1], training=False))
            loss = tf.reduce_sum(k_outs[-1] * dout)
        k_outs = [np.asarray(o) for o in k_outs]
        forward_pairs = [(layer.name, o, ko) for layer, o, ko in zip(leaves, outs[1:], k_outs[1:])]
        if attempt == 0:
            assert_parity(forward_pairs, [])

        kinks = crossed_kinks(leaves, outs, k_outs)
        if kinks:
            ours_model.clear_cache()
            skipped.append(f"seed {seed + attempt}: " + "; ".join(kinks))
            continue
        dx = ours_model.backward(dout)
        k_grads = tape.gradient(loss, [xt, *k_weights])
        assert_parity(
            forward_pairs,
            [("input", dx, k_grads[0])]
            + [(n, g, kg) for n, g, kg in zip(weight_names, ours_model.grads, k_grads[1:])],
        )
        if skipped:
            warnings.warn(
                f"gradient parity checked on another input; crossed kinks at {skipped}", stacklevel=2
            )
        return
    pytest.fail(f"every input crossed a kink, so gradients could not be compared: {skipped}")


@pytest.mark.parametrize(
    "input_shape, pooling, batch",
    [
        ((32, 32, 3), None, 2),
        ((48, 40, 3), None, 2),  # odd sizes inside: 5 -> 2 and 3 -> 1 at the pools
        ((64, 72, 3), "avg", 1),  # block5 ends at 2x2, so the global pools really pool
        ((64, 72, 3), "max", 1),
    ],
    ids=["32x32", "48x40", "64x72-avg", "64x72-max"],
)
def test_vgg16_no_top_matches_keras(input_shape, pooling, batch, keras, tf, vgg16_pair_factory):
    pair = vgg16_pair_factory(include_top=False, input_shape=input_shape, pooling=pooling)
    assert_chain_parity(keras, tf, pair.numvgg, pair.keras, (batch, *input_shape), seed=11)


@pytest.mark.slow
def test_vgg16_with_small_top_matches_keras(keras, tf, vgg16_pair_factory):
    pair = vgg16_pair_factory(include_top=True, input_shape=(32, 32, 3), classes=10)
    assert_chain_parity(keras, tf, pair.numvgg, pair.keras, (2, 32, 32, 3), seed=12)


def test_seed_model_matches_keras(keras, tf, vgg16_pair):
    """The transfer-learning recipe, with the shared 32x32 VGG16 nested inside."""
    from numvgg.models import Sequential

    ours = Sequential(
        [
            vgg16_pair.numvgg,
            GlobalAveragePooling2D(),
            Dense(8, activation="relu"),
            Dense(1, activation="sigmoid"),
        ]
    )
    theirs = keras.Sequential(
        [
            vgg16_pair.keras,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    theirs.build((None, 32, 32, 3))
    theirs.set_weights(ours.get_weights())
    assert_chain_parity(keras, tf, ours, theirs, (3, 32, 32, 3), seed=14)


def test_kink_detection_sees_a_crossed_relu_and_a_swapped_pool_winner():
    """The guard above must notice the two ways float32 noise can change a branch."""
    relu = Conv2D(1, (1, 1), activation="relu", name="k_relu")
    pool = MaxPooling2D(name="k_pool")
    x = np.zeros((1, 2, 2, 1), dtype=np.float32)
    ours = [x, np.array([[[[1e-8], [2.0]], [[3.0], [4.0]]]], np.float32), np.array([[[[4.0]]]], np.float32)]
    theirs = [x, np.array([[[[0.0], [2.0]], [[3.0], [4.0]]]], np.float32), np.array([[[[4.0]]]], np.float32)]
    assert crossed_kinks([relu, pool], ours, theirs) == ["k_relu: 1 ReLU input(s) on the other side of 0"]
    theirs[1] = np.array([[[[1e-8], [4.0]], [[3.0], [4.0 - 1e-6]]]], np.float32)
    assert crossed_kinks([relu, pool], ours, theirs) == ["k_pool: 1 window(s) with another winner"]


@pytest.mark.slow
def test_vgg16_with_top_at_224_matches_keras(keras, tf, vgg16_top_224):
    """The full 138M-parameter model, batch 1: every layer's output (forward only)."""
    ours = vgg16_top_224
    theirs = keras.applications.VGG16(include_top=True, weights=None)
    theirs.set_weights(ours.get_weights())
    x = np.random.default_rng(14).uniform(-120.0, 140.0, (1, 224, 224, 3)).astype(np.float32)
    leaves = ours.leaf_layers()
    outs, y = [], x
    for layer in leaves:
        y = layer(y, keep_cache=False)
        outs.append(y)
    k_outs, k_y = [], tf.constant(x)
    for layer in keras_leaves(theirs):
        k_y = layer(k_y, training=False)
        k_outs.append(k_y.numpy())
    assert_parity([(layer.name, o, ko) for layer, o, ko in zip(leaves, outs, k_outs)], [])
    assert outs[-1].shape == (1, 1000) and abs(outs[-1].sum() - 1.0) < 1e-5
    assert outs[-1].argmax() == k_outs[-1].argmax()


# -- the conftest policy for a missing Keras ----------------------------------------------


@pytest.mark.parametrize(
    "env, outcome",
    [
        ({}, pytest.skip.Exception),
        ({"CI": "true"}, pytest.fail.Exception),
        ({"CI": "false"}, pytest.skip.Exception),
        ({"NUMVGG_REQUIRE_KERAS": "1"}, pytest.fail.Exception),
    ],
)
def test_missing_keras_policy(env, outcome, monkeypatch):
    from conftest import import_keras

    for name in ("CI", "NUMVGG_REQUIRE_KERAS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
    with pytest.raises(outcome, match="cannot be imported"):
        import_keras()


def test_missing_keras_fails_a_ci_run_end_to_end(tmp_path):
    """Through the fixture, in a fresh pytest: TensorFlow hidden, CI set -> an error, not a skip."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("raise ImportError('no tensorflow here')\n")
    shutil.copy(pathlib.Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_needs_keras.py").write_text("def test_uses_keras(keras):\n    assert keras\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMVGG_REQUIRE_KERAS"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={**env, "CI": "true", "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "1 error" in result.stdout.strip().splitlines()[-1], result.stdout
    assert "no tensorflow here" in result.stdout and "refusing to skip" in result.stdout
