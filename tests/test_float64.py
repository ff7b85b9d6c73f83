"""A float64 numvgg, end to end: ``numvgg.config.set_floatx('float64')`` (or
``dtype='float64'``) against Keras with ``keras.config.set_floatx('float64')``.

Both sides in float64 agree to ~1e-12 at every layer, forward and backward, and
after an Adam step of ``train_on_batch``. numvgg in float64 against Keras in
float32 shows Keras' own float32 rounding (~1e-7 .. 1e-5) at every layer: the
bounds below fail if either side silently ran in the other precision.
"""

import numpy as np
import pytest

from numvgg import config, initializers, losses, metrics, optimizers
from numvgg.applications.vgg16 import VGG16
from numvgg.debug.trace import trace
from numvgg.layers import Dense, GlobalAveragePooling2D, Input
from numvgg.models import Sequential

F64_TIGHT = 1e-11  # float64 on both sides: ~1e-14 .. 1e-12 is what runs
SHAPE = (32, 32, 3)


@pytest.fixture
def set_floatx():
    """``set_floatx('float64')`` for one test; 'float32' comes back afterwards, whatever happens."""
    yield config.set_floatx
    config.set_floatx("float32")


def set_keras_precision(keras, dtype: str) -> None:
    """Keras' floatx *and* its global dtype policy: Keras caches the policy when its first
    layer is made, and from then on ``set_floatx`` alone no longer changes new layers."""
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)


@pytest.fixture
def keras_floatx(keras):
    """``keras_floatx('float64')`` for one test; Keras' precision is put back afterwards."""
    previous = keras.config.floatx(), keras.config.dtype_policy()
    yield lambda dtype: set_keras_precision(keras, dtype)
    keras.config.set_floatx(previous[0])
    keras.config.set_dtype_policy(previous[1])


def rel_to_max(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    diff = np.max(np.abs(ours - theirs), initial=0.0)
    return 0.0 if diff == 0.0 else diff / max(np.max(np.abs(theirs)), 1e-300)


def keras_leaves(model):
    return [l for l in model.layers if type(l).__name__ != "InputLayer"]


def per_layer_errors(tf, ours, theirs, x, dout_seed=5):
    """Relative error of every layer's output and of the gradient reaching its input."""
    with trace(ours, record=("output", "grad_input")) as t:
        out = ours(x)
        dout = np.random.default_rng(dout_seed).standard_normal(out.shape)
        ours.backward(dout.astype(out.dtype))
    records = list(t.records.values())
    leaves = keras_leaves(theirs)
    k_dtype = theirs.layers[-1].compute_dtype
    xt = tf.constant(x.astype(k_dtype))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        outs = [xt]
        for layer in leaves:
            outs.append(layer(outs[-1], training=False))
        loss = tf.reduce_sum(outs[-1] * tf.constant(dout.astype(k_dtype)))
    grads = tape.gradient(loss, outs[:-1])  # dL/d(input of each layer)
    rows = []
    for rec, layer, o, g in zip(records, leaves, outs[1:], grads):
        assert rec.name == layer.name
        rows.append(
            (
                rec.name,
                rel_to_max(rec.output, o),
                rel_to_max(rec.grad_input, g),
                rec.output.dtype,
                np.asarray(o).dtype,
            )
        )
    return rows


def make_pair(keras, dtype_ours, dtype_keras, seed=7):
    initializers.set_seed(seed)
    ours = VGG16(include_top=False, weights=None, input_shape=SHAPE, dtype=dtype_ours)
    previous = keras.config.floatx(), keras.config.dtype_policy()
    set_keras_precision(keras, dtype_keras)
    try:
        theirs = keras.applications.VGG16(include_top=False, weights=None, input_shape=SHAPE)
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def test_set_floatx_gives_float64_everywhere(set_floatx):
    set_floatx("float64")
    model = VGG16(include_top=False, weights=None, input_shape=SHAPE)
    assert {w.dtype for w in model.get_weights()} == {np.dtype("float64")}
    assert model(np.zeros((1, *SHAPE), np.float32)).dtype == np.float64  # inputs are cast
    assert Input((4,)).dtype == "float64"
    assert losses.BinaryCrossentropy().dtype == np.float64
    assert metrics.BinaryAccuracy().dtype == np.float64
    assert metrics.binary_accuracy(np.ones(3), np.ones(3)).dtype == np.float64
    assert type(optimizers.Adam(1e-3)._current_learning_rate()) is np.float64
    set_floatx("float32")
    assert VGG16(include_top=False, weights=None, input_shape=SHAPE).get_weights()[0].dtype == np.float32


def test_dtype_argument_without_floatx():
    model = VGG16(include_top=False, weights=None, input_shape=SHAPE, dtype="float64")
    assert config.floatx() == "float32"
    assert {l.dtype for l in model.leaf_layers()} == {np.dtype("float64")}
    assert model(np.ones((1, *SHAPE))).dtype == np.float64


def test_float32_weights_file_loads_into_float64_exactly(tmp_path, set_floatx):
    """Keras assigns a file's float32 values into float64 variables (an exact cast)."""
    initializers.set_seed(3)
    small = VGG16(include_top=False, weights=None, input_shape=SHAPE)
    path = tmp_path / "w32.weights.h5"
    small.save_weights(str(path))
    set_floatx("float64")
    big = VGG16(include_top=False, weights=None, input_shape=SHAPE)
    big.load_weights(str(path))
    for w32, w64 in zip(small.get_weights(), big.get_weights()):
        assert w64.dtype == np.float64
        np.testing.assert_array_equal(w64, w32.astype(np.float64))


@pytest.mark.keras
@pytest.mark.slow
def test_vgg16_float64_matches_keras_float64_every_layer(keras, tf):
    ours, theirs = make_pair(keras, "float64", "float64")
    x = np.random.default_rng(0).standard_normal((2, *SHAPE))
    rows = per_layer_errors(tf, ours, theirs, x)
    table = "\n".join(f"{n:14} fwd {f:.1e} bwd {b:.1e} {d1}/{d2}" for n, f, b, d1, d2 in rows)
    assert all(d1 == d2 == np.float64 for *_, d1, d2 in rows), table
    assert max(max(f, b) for _, f, b, *_ in rows) < F64_TIGHT, table


@pytest.mark.keras
@pytest.mark.slow
def test_vgg16_float64_against_keras_float32_shows_keras_rounding(keras, tf):
    ours, theirs = make_pair(keras, "float64", "float32")
    x = np.random.default_rng(1).standard_normal((2, *SHAPE)).astype(np.float32).astype(np.float64)
    rows = per_layer_errors(tf, ours, theirs, x)
    table = "\n".join(f"{n:14} fwd {f:.1e} bwd {b:.1e} {d1}/{d2}" for n, f, b, d1, d2 in rows)
    assert all(d1 == np.float64 and d2 == np.float32 for *_, d1, d2 in rows), table
    # Every layer shows float32's rounding: far above float64's, far below a bug.
    assert all(1e-9 < f < 1e-4 and 1e-9 < b < 1e-4 for _, f, b, *_ in rows), table


@pytest.mark.keras
@pytest.mark.slow
def test_float64_adam_train_on_batch_matches_keras_float64(keras, set_floatx, keras_floatx):
    set_floatx("float64")
    keras_floatx("float64")
    initializers.set_seed(11)
    ours = Sequential(
        [
            VGG16(include_top=False, weights=None, input_shape=SHAPE),
            GlobalAveragePooling2D(),
            Dense(8, activation="relu"),
            Dense(1, activation="sigmoid"),
        ]
    )
    ours.build((None, *SHAPE))
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=SHAPE)
    theirs = keras.Sequential(
        [
            keras.Input(SHAPE),
            base,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    theirs.set_weights(ours.get_weights())
    start = ours.get_weights()
    ours.compile(optimizer=optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    theirs.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((4, *SHAPE)), np.array([[0.0], [1.0], [1.0], [0.0]])
    for _ in range(2):  # the second step uses Adam's moments
        ours_logs = ours.train_on_batch(x, y, return_dict=True)
        theirs_logs = theirs.train_on_batch(x, y, return_dict=True)
    assert abs(ours_logs["loss"] - theirs_logs["loss"]) < 1e-12
    assert ours_logs["accuracy"] == pytest.approx(theirs_logs["accuracy"])
    assert all(w.dtype == np.float64 for w in ours.get_weights())
    # Compare the change of every weight over the two steps, not the weights themselves
    # (a learning rate of 1e-3 would hide an error in the update behind the weight).
    errors = [
        rel_to_max(a - w0, np.asarray(b) - w0)
        for a, b, w0 in zip(ours.get_weights(), theirs.get_weights(), start)
    ]
    assert max(errors) < 1e-10, errors


@pytest.mark.keras
@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
def test_preprocess_input_under_float64_matches_keras(keras, set_floatx, keras_floatx, dtype):
    """Keras casts integer pixels to floatx and keeps a float input's dtype."""
    from numvgg.applications.vgg16 import preprocess_input

    set_floatx("float64")
    keras_floatx("float64")
    x = np.random.default_rng(4).integers(0, 256, (2, 5, 7, 3)).astype(dtype)
    theirs = keras.applications.vgg16.preprocess_input(x.copy())
    ours = preprocess_input(x)
    assert ours.dtype == np.asarray(theirs).dtype
    np.testing.assert_array_equal(ours, theirs)


OPTIMIZER_CASES = {
    "sgd-nesterov": ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    "rmsprop-centered": ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
    "adagrad": ("Adagrad", {"learning_rate": 0.1}),
    "adadelta": ("Adadelta", {"learning_rate": 1.0}),
    "adam-amsgrad-decay": ("Adam", {"learning_rate": 0.01, "amsgrad": True, "weight_decay": 0.01}),
}


@pytest.mark.keras
@pytest.mark.parametrize("case", list(OPTIMIZER_CASES))
def test_every_optimizer_in_float64_matches_keras_float64(keras, set_floatx, keras_floatx, case):
    """Slots in the weight's dtype and hyperparameters cast where Keras casts them: three
    float64 steps of a small dense model agree with Keras to float64 rounding."""
    set_floatx("float64")
    keras_floatx("float64")
    name, kwargs = OPTIMIZER_CASES[case]
    initializers.set_seed(5)
    ours = Sequential([Dense(6, activation="tanh", input_shape=(5,)), Dense(3, activation="softmax")])
    theirs = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(6, activation="tanh"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    theirs.set_weights(ours.get_weights())
    start = ours.get_weights()
    ours.compile(optimizer=getattr(optimizers, name)(**kwargs), loss="categorical_crossentropy")
    theirs.compile(optimizer=getattr(keras.optimizers, name)(**kwargs), loss="categorical_crossentropy")
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((8, 5)), np.eye(3)[rng.integers(0, 3, 8)]
    for _ in range(3):
        ours.train_on_batch(x, y)
        theirs.train_on_batch(x, y)
    assert {s.dtype for s in ours.optimizer._variables} == {np.dtype("float64")}
    errors = [
        rel_to_max(a - w0, np.asarray(b) - w0)
        for a, b, w0 in zip(ours.get_weights(), theirs.get_weights(), start)
    ]
    assert max(errors) < 1e-10, errors
