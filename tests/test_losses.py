"""numvgg.losses: values and gradients against Keras (TensorFlow backend),
float64 gradient checks, and Keras' cached-logits rule inside compiled models."""

import numpy as np
import pytest

from numvgg import losses
from numvgg.errors import ShapeError

N, C = 6, 4


# -- inputs ------------------------------------------------------------------------------------


def probabilities(rng, shape=(N, C)):
    """Random probabilities with the corner cases planted: exactly 0 and 1,
    inside the clipping margin, and on its edge."""
    p = rng.uniform(0, 1, shape).astype(np.float32)
    flat = p.reshape(-1)
    flat[:6] = [0.0, 1.0, 1e-9, 1 - 1e-9, np.float32(1e-7), 1e-3]
    return p


def logits(rng, shape=(N, C)):
    z = (rng.standard_normal(shape) * 8).astype(np.float32)
    z.reshape(-1)[:2] = [60.0, -60.0]  # beyond where float32 sigmoid saturates to 0 / 1
    return z


def binary_targets(rng, shape=(N, C)):
    return rng.integers(0, 2, shape).astype(np.float32)


def labels(rng):
    return rng.integers(0, C, N)


def one_hot(lab):
    return np.eye(C, dtype=np.float32)[lab]


def keras_value_and_grad(tf, keras_loss, y_true, y_pred, sample_weight=None):
    y_pred = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = keras_loss(y_true, y_pred, sample_weight=sample_weight)
    return float(value), tape.gradient(value, y_pred).numpy()


# (numvgg loss, keras class name, kwargs, target maker, prediction maker)
CASES = [
    ("BinaryCrossentropy", {}, binary_targets, probabilities),
    ("BinaryCrossentropy", {"label_smoothing": 0.1}, binary_targets, probabilities),
    ("BinaryCrossentropy", {"from_logits": True}, binary_targets, logits),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, binary_targets, logits),
    ("CategoricalCrossentropy", {}, lambda r: one_hot(labels(r)), probabilities),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, lambda r: one_hot(labels(r)), probabilities),
    ("CategoricalCrossentropy", {"from_logits": True}, lambda r: one_hot(labels(r)), logits),
    (
        "CategoricalCrossentropy",
        {"from_logits": True, "label_smoothing": 0.3},
        lambda r: one_hot(labels(r)),
        logits,
    ),
    ("SparseCategoricalCrossentropy", {}, labels, probabilities),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, labels, logits),
    ("MeanSquaredError", {}, binary_targets, probabilities),
]
IDS = [f"{name}-{kw}" for name, kw, _, _ in CASES]


@pytest.mark.parametrize("name,kwargs,make_y,make_p", CASES, ids=IDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_value_and_grad_match_keras(keras, tf, name, kwargs, make_y, make_p, weighted):
    rng = np.random.default_rng(0)
    y, p = make_y(rng), make_p(rng)
    sample_weight = rng.uniform(0, 2, N).astype(np.float32) if weighted else None
    ours = getattr(losses, name)(**kwargs)
    value, grad = ours.value_and_grad(y, p, sample_weight=sample_weight)
    keras_value, keras_grad = keras_value_and_grad(
        tf, getattr(keras.losses, name)(**kwargs), y, p, sample_weight
    )
    assert value == pytest.approx(keras_value, rel=1e-6)
    assert ours(y, p, sample_weight=sample_weight) == value
    assert grad.shape == p.shape and grad.dtype == np.float32
    np.testing.assert_allclose(grad, keras_grad, rtol=1e-5, atol=1e-6 * np.abs(keras_grad).max())


@pytest.mark.parametrize("name", ["BinaryCrossentropy", "MeanSquaredError"])
def test_rank_one_targets_against_one_column(keras, tf, name):
    """y of shape (N,) and y_pred of shape (N, 1): Keras adds the axis to y."""
    rng = np.random.default_rng(1)
    y, p = binary_targets(rng, (N,)), probabilities(rng, (N, 1))
    value, grad = getattr(losses, name)().value_and_grad(y, p)
    keras_value, keras_grad = keras_value_and_grad(tf, getattr(keras.losses, name)(), y, p)
    assert value == pytest.approx(keras_value, rel=1e-6)
    np.testing.assert_allclose(grad, keras_grad, rtol=1e-5, atol=1e-9)
    # Sparse targets may also come as (N, 1).
    lab = labels(rng)
    z = logits(rng)
    ours = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert ours(lab[:, None], z) == pytest.approx(ours(lab, z), rel=0)


@pytest.mark.parametrize("reduction", ["sum", "mean_with_sample_weight", None])
def test_other_reductions_match_keras(keras, reduction):
    rng = np.random.default_rng(2)
    y, p = binary_targets(rng), probabilities(rng)
    sample_weight = rng.uniform(0, 2, N).astype(np.float32)
    ours = losses.BinaryCrossentropy(reduction=reduction)(y, p, sample_weight=sample_weight)
    theirs = np.asarray(
        keras.losses.BinaryCrossentropy(reduction=reduction)(y, p, sample_weight=sample_weight)
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    if reduction is None:
        assert np.shape(ours) == (N,)
        with pytest.raises(ValueError, match="scalar loss"):
            losses.BinaryCrossentropy(reduction=None).value_and_grad(y, p)


@pytest.mark.parametrize(
    "name,keras_fn,kwargs,make_y,make_p",
    [
        ("binary_crossentropy", "binary_crossentropy", {}, binary_targets, probabilities),
        ("binary_crossentropy", "binary_crossentropy", {"from_logits": True}, binary_targets, logits),
        (
            "categorical_crossentropy",
            "categorical_crossentropy",
            {"label_smoothing": 0.1},
            lambda r: one_hot(labels(r)),
            probabilities,
        ),
        ("sparse_categorical_crossentropy", "sparse_categorical_crossentropy", {}, labels, probabilities),
        ("mean_squared_error", "mean_squared_error", {}, binary_targets, probabilities),
    ],
)
def test_per_sample_functions_match_keras(keras, name, keras_fn, kwargs, make_y, make_p):
    rng = np.random.default_rng(3)
    y, p = make_y(rng), make_p(rng)
    ours = getattr(losses, name)(y, p, **kwargs)
    theirs = np.asarray(getattr(keras.losses, keras_fn)(y, p, **kwargs))
    assert ours.shape == theirs.shape == (N,)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


# -- float64 gradient checks ------------------------------------------------------------------


def numerical_gradient(f, x, h=1e-6):
    """Central differences of the scalar ``f`` at ``x`` (float64), entry by entry."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = f(x)
        x[i] = old - h
        minus = f(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def rel_error(a, b):
    """Largest difference relative to the gradient's scale (entries far below
    that scale are dominated by the finite-difference round-off)."""
    return np.max(np.abs(a - b)) / np.max(np.abs(a) + np.abs(b))


@pytest.mark.parametrize("name,kwargs,make_y,make_p", CASES, ids=IDS)
def test_gradient_check_float64(name, kwargs, make_y, make_p):
    rng = np.random.default_rng(4)
    y = make_y(rng)
    # Away from the clipping edges, where the loss is smooth.
    if make_p is probabilities:
        p = rng.uniform(0.05, 0.95, (N, C))
    else:
        p = rng.standard_normal((N, C)) * 3
    sample_weight = rng.uniform(0.5, 2, N)
    loss = getattr(losses, name)(dtype="float64", **kwargs)
    value, grad = loss.value_and_grad(y, p, sample_weight=sample_weight)
    assert grad.dtype == np.float64
    numeric = numerical_gradient(lambda q: loss(y, q, sample_weight=sample_weight), p.copy())
    assert rel_error(grad, numeric) < 1e-7


def test_gradient_is_zero_where_clipping_is_active():
    y = np.array([[1.0, 0.0, 1.0]], dtype=np.float32)
    p = np.array([[1e-9, 1e-9, 0.5]], dtype=np.float32)
    value, grad = losses.BinaryCrossentropy().value_and_grad(y, p)
    assert grad[0, 0] == 0.0 and grad[0, 2] != 0.0
    # Clipped value: -log(1e-7) for the first entry.
    expected = (-np.log(np.float32(1e-7)) - np.log(1 - np.float32(1e-7)) - np.log(0.5)) / 3
    assert value == pytest.approx(expected, rel=1e-5)


def test_from_logits_is_stable_for_huge_logits():
    z = np.array([[1000.0, -1000.0, 0.0]], dtype=np.float32)
    y = np.array([[0.0, 0.0, 1.0]], dtype=np.float32)
    value, grad = losses.BinaryCrossentropy(from_logits=True).value_and_grad(y, z)
    assert value == pytest.approx((1000.0 + 0.0 + np.log(2)) / 3, rel=1e-6)
    np.testing.assert_allclose(grad, [[1 / 3, 0.0, -0.5 / 3]], atol=1e-7)
    value, grad = losses.CategoricalCrossentropy(from_logits=True).value_and_grad(y, z)  # target: the logit 0
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx(1000.0, rel=1e-6)


# -- Keras' cached logits in real models ----------------------------------------------------------


def extreme_dense(rng, units, scale=15.0):
    x = rng.standard_normal((8, 3)).astype(np.float32)
    kernel = (rng.standard_normal((3, units)) * scale).astype(np.float32)
    bias = np.zeros(units, np.float32)
    return x, kernel, bias, x @ kernel + bias


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize(
    "loss_name,activation,units",
    [
        ("binary_crossentropy", "sigmoid", 1),
        ("categorical_crossentropy", "softmax", 4),
        ("sparse_categorical_crossentropy", "softmax", 4),
    ],
)
def test_keras_models_use_cached_logits(keras, loss_name, activation, units):
    """keras.Model.evaluate on a model ending in sigmoid/softmax equals the
    numvgg loss *from logits* of the pre-activation -- not the clipped loss of
    the probabilities, which the extreme logits make clearly different."""
    rng = np.random.default_rng(5)
    x, kernel, bias, z = extreme_dense(rng, units)
    if loss_name == "binary_crossentropy":
        y = rng.integers(0, 2, (8, 1)).astype(np.float32)
        probs = 1 / (1 + np.exp(-z.astype(np.float64)))
    else:
        lab = rng.integers(0, units, 8)
        y = lab if loss_name.startswith("sparse") else np.eye(units, dtype=np.float32)[lab]
        probs = softmax(z)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units, activation=activation)])
    model.compile(loss=loss_name)
    model.set_weights([kernel, bias])
    keras_value = model.evaluate(x, y, batch_size=8, verbose=0)

    ours = losses.get(loss_name)
    assert ours.logits_activation == activation
    from_logits = ours(y, z, from_logits=True)
    from_probs = ours(y, probs.astype(np.float32))
    assert from_logits == pytest.approx(keras_value, rel=1e-6)
    assert abs(from_probs - keras_value) > 0.1, "inputs too tame: clipping changed nothing"


def test_keras_fit_step_uses_the_fused_gradient(keras):
    """One SGD step of keras.Model.fit moves the kernel by -lr * x.T @ dL/dz,
    with dL/dz from numvgg's from-logits gradient."""
    rng = np.random.default_rng(6)
    x, kernel, bias, z = extreme_dense(rng, 1)
    y = rng.integers(0, 2, (8, 1)).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="binary_crossentropy")
    model.set_weights([kernel, bias])
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)

    value, dz = losses.BinaryCrossentropy().value_and_grad(y, z, from_logits=True)
    assert history.history["loss"][0] == pytest.approx(value, rel=1e-6)
    new_kernel, new_bias = model.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - np.float32(0.1) * (x.T @ dz), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias - np.float32(0.1) * dz.sum(0), rtol=1e-5, atol=1e-7)


# -- names and errors ---------------------------------------------------------------------------


def test_get_resolves_names_and_objects():
    for name, cls in [
        ("binary_crossentropy", losses.BinaryCrossentropy),
        ("bce", losses.BinaryCrossentropy),
        ("BinaryCrossentropy", losses.BinaryCrossentropy),
        ("categorical_crossentropy", losses.CategoricalCrossentropy),
        ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
        ("mse", losses.MeanSquaredError),
        ("mean_squared_error", losses.MeanSquaredError),
    ]:
        assert type(losses.get(name)) is cls
    loss = losses.BinaryCrossentropy(from_logits=True)
    assert losses.get(loss) is loss
    assert type(losses.get(losses.MeanSquaredError)) is losses.MeanSquaredError
    again = losses.get({"class_name": "BinaryCrossentropy", "config": loss.get_config()})
    assert again.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="Unknown loss 'hinge'.*binary_crossentropy"):
        losses.get("hinge")
    with pytest.raises(ValueError, match="gradient"):
        losses.get(lambda y_true, y_pred: 0.0)


def test_config_matches_keras(keras):
    for name, kwargs in [
        ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}),
        ("CategoricalCrossentropy", {}),
        ("SparseCategoricalCrossentropy", {}),
        ("MeanSquaredError", {}),
    ]:
        theirs = getattr(keras.losses, name)(**kwargs).get_config()
        for key, value in getattr(losses, name)(**kwargs).get_config().items():
            assert theirs[key] == value, (name, key)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ShapeError, match=r"y_true has shape \(6, 3\) but y_pred has shape \(6, 4\)"):
        losses.BinaryCrossentropy()(np.zeros((6, 3)), np.full((6, 4), 0.5))
    with pytest.raises(ShapeError, match="one class index per sample"):
        losses.SparseCategoricalCrossentropy()(np.zeros((5,)), np.full((6, 4), 0.25))
    with pytest.raises(ValueError, match="label value of 4 which is outside the valid range of \\[0, 4\\)"):
        losses.SparseCategoricalCrossentropy()(np.array([0, 4]), np.full((2, 4), 0.25))
    with pytest.raises(ShapeError, match="sample_weight of shape \\(3,\\)"):
        losses.MeanSquaredError()(np.zeros((6, 2)), np.zeros((6, 2)), sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="average")
    with pytest.raises(ValueError, match="no logits form"):
        losses.MeanSquaredError()(np.zeros((2, 2)), np.zeros((2, 2)), from_logits=True)
