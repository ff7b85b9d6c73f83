"""numvgg.metrics against keras.metrics, batch after batch, and against how
keras.Model.fit aggregates the loss and 'acc' over an epoch."""

import numpy as np
import pytest

from numvgg import losses, metrics
from numvgg.errors import ShapeError


def batches(make, sizes=(5, 7, 3), seed=0):
    """(y_true, y_pred, sample_weight) for batches of different sizes."""
    rng = np.random.default_rng(seed)
    return [(*make(rng, n), rng.uniform(0, 2, n).astype(np.float32)) for n in sizes]


def binary_batch(rng, n):
    y_pred = rng.uniform(0, 1, (n, 1)).astype(np.float32)
    y_pred[0, 0] = 0.5  # exactly on the threshold: not "greater"
    return rng.integers(0, 2, (n,)), y_pred


def binary_multi_batch(rng, n):
    return rng.integers(0, 2, (n, 3)).astype(np.float32), rng.uniform(0, 1, (n, 3)).astype(np.float32)


def categorical_batch(rng, n):
    y_pred = rng.integers(0, 3, (n, 4)).astype(np.float32)  # small integers: many ties
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)], y_pred


def sparse_batch(rng, n):
    return rng.integers(0, 4, (n,)), rng.uniform(0, 1, (n, 4)).astype(np.float32)


def sparse_column_batch(rng, n):
    return rng.integers(0, 4, (n, 1)).astype(np.float32), rng.uniform(0, 1, (n, 4)).astype(np.float32)


def exact_batch(rng, n):
    return rng.integers(0, 3, (n,)), rng.integers(0, 3, (n,)).astype(np.float32)


CASES = [
    ("BinaryAccuracy", {}, binary_batch),
    ("BinaryAccuracy", {"threshold": 0.3}, binary_batch),
    ("BinaryAccuracy", {}, binary_multi_batch),
    ("CategoricalAccuracy", {}, categorical_batch),
    ("SparseCategoricalAccuracy", {}, sparse_batch),
    ("SparseCategoricalAccuracy", {}, sparse_column_batch),
    ("Accuracy", {}, exact_batch),
]


@pytest.mark.parametrize("name,kwargs,make", CASES, ids=[f"{n}-{m.__name__}-{k}" for n, k, m in CASES])
@pytest.mark.parametrize("weighted", [False, True])
def test_accuracies_match_keras_batch_by_batch(keras, name, kwargs, make, weighted):
    ours = getattr(metrics, name)(**kwargs)
    theirs = getattr(keras.metrics, name)(**kwargs)
    results = []
    for y_true, y_pred, sample_weight in batches(make):
        sw = sample_weight if weighted else None
        ours.update_state(y_true, y_pred, sample_weight=sw)
        theirs.update_state(y_true, y_pred, sample_weight=sw)
        assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-6)
        results.append(ours.result())
    assert len(set(results)) > 1, "the result never changed: the batches prove nothing"
    assert ours.name == theirs.name
    assert ours.direction == theirs._direction == "up"
    ours.reset_state()
    assert ours.result() == 0.0 and ours.count == 0


@pytest.mark.parametrize(
    "values,sample_weight",
    [
        (lambda r: r.standard_normal(5), None),
        (lambda r: r.standard_normal((5, 3)), None),
        (lambda r: r.standard_normal((5, 3)), lambda r: r.uniform(0, 2, 5)),
        (lambda r: r.standard_normal((5, 1)), lambda r: r.uniform(0, 2, 5)),
        (lambda r: r.standard_normal((5, 3)), lambda r: r.uniform(0, 2, (5, 3))),
        (lambda r: np.float32(r.standard_normal()), lambda r: 16),  # the loss tracker's call
    ],
)
def test_mean_matches_keras(keras, values, sample_weight):
    rng = np.random.default_rng(1)
    ours, theirs = metrics.Mean(name="loss"), keras.metrics.Mean(name="loss")
    for _ in range(3):
        v = values(rng)
        sw = sample_weight(rng) if sample_weight else None
        ours.update_state(v, sample_weight=sw)
        theirs.update_state(v, sample_weight=sw)
        assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-6)
        assert ours.count == pytest.approx(float(theirs.count.numpy()), rel=1e-6)


def test_fit_reports_the_batch_size_weighted_mean_loss_and_acc(keras):
    """Keras 3 fit: loss = sum(batch_loss * batch_size) / samples, over the
    epoch; 'acc' keeps its name and is binary accuracy over all samples."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.integers(0, 2, (10, 1)).astype(np.float32)
    kernel = rng.standard_normal((3, 1)).astype(np.float32) * 2
    bias = np.zeros(1, np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    # learning_rate 0: the weights stay put, so every batch loss is known in advance.
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="binary_crossentropy", metrics=["acc"]
    )
    model.set_weights([kernel, bias])
    history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history
    assert sorted(history) == ["acc", "loss"]

    bce = losses.get("binary_crossentropy")
    loss_tracker = metrics.Mean(name="loss")
    acc = metrics.get("acc", loss=bce, output_shape=(None, 1))
    batch_losses = []
    for start in range(0, 10, 4):  # batches of 4, 4, 2
        xb, yb = x[start : start + 4], y[start : start + 4]
        z = xb @ kernel + bias
        batch_loss = bce(yb, z, from_logits=True)
        batch_losses.append(batch_loss)
        loss_tracker.update_state(batch_loss, sample_weight=len(xb))
        acc.update_state(yb, 1 / (1 + np.exp(-z)))
    assert acc.name == "acc" and isinstance(acc, metrics.BinaryAccuracy)
    assert history["loss"][0] == pytest.approx(loss_tracker.result(), rel=1e-6)
    assert history["acc"][0] == pytest.approx(acc.result(), rel=1e-6)
    assert abs(np.mean(batch_losses) - loss_tracker.result()) > 1e-4, (
        "batch losses too alike to tell a weighted mean from a plain one"
    )


@pytest.mark.parametrize(
    "y_true_shape,y_pred_shape",
    [
        ((8,), (8, 1)),
        ((8, 1), (8, 1)),
        ((8,), (8, 10)),
        ((8, 1), (8, 10)),
        ((8, 10), (8, 10)),
    ],
)
def test_acc_resolution_matches_keras_compile_utils(keras, y_true_shape, y_pred_shape):
    from keras.src.trainers.compile_utils import get_metric

    theirs = get_metric("acc", np.zeros(y_true_shape), np.zeros(y_pred_shape))
    ours = metrics.get("acc", output_shape=(None, *y_pred_shape[1:]), y_true_shape=y_true_shape)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.name == theirs.name == "acc"


@pytest.mark.parametrize(
    "loss,output_shape,expected",
    [
        ("binary_crossentropy", (None, 1), metrics.BinaryAccuracy),
        (losses.BinaryCrossentropy(), None, metrics.BinaryAccuracy),
        ("mse", (None, 1), metrics.BinaryAccuracy),
        (losses.SparseCategoricalCrossentropy(), (None, 10), metrics.SparseCategoricalAccuracy),
        ("sparse_categorical_crossentropy", None, metrics.SparseCategoricalAccuracy),
        ("categorical_crossentropy", (None, 10), metrics.CategoricalAccuracy),
        (None, (None, 10), metrics.CategoricalAccuracy),
    ],
)
def test_acc_resolution_from_loss_and_output_shape(loss, output_shape, expected):
    for name in ("acc", "accuracy", "Accuracy"):
        metric = metrics.get(name, loss=loss, output_shape=output_shape)
        assert type(metric) is expected and metric.name == name


def test_get_names_objects_and_errors(keras):
    with pytest.raises(ValueError, match="pass `loss=` or `output_shape=`"):
        metrics.get("acc")
    with pytest.raises(ValueError, match="Unknown metric 'f1_score'.*'binary_accuracy'"):
        metrics.get("f1_score")
    m = metrics.BinaryAccuracy(threshold=0.7)
    assert metrics.get(m) is m
    assert metrics.get("binary_accuracy").name == "binary_accuracy"
    assert type(metrics.get("SparseCategoricalAccuracy")) is metrics.SparseCategoricalAccuracy
    assert type(metrics.get(metrics.Mean)) is metrics.Mean
    assert metrics.BinaryAccuracy(threshold=0.7).get_config()["threshold"] == 0.7

    # A numvgg loss as a metric: the mean per-sample loss, like keras.metrics.BinaryCrossentropy.
    rng = np.random.default_rng(3)
    ours, theirs = metrics.get(losses.BinaryCrossentropy()), keras.metrics.BinaryCrossentropy()
    for n in (4, 6):
        y, p = rng.integers(0, 2, (n, 2)).astype(np.float32), rng.uniform(0, 1, (n, 2)).astype(np.float32)
        ours.update_state(y, p)
        theirs.update_state(y, p)
    assert ours.name == "binary_crossentropy"
    assert ours.direction == theirs._direction == "down"
    assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-6)

    def hits(y_true, y_pred):
        return (np.asarray(y_true) == np.asarray(y_pred)).astype(np.float32)

    custom = metrics.get(hits)
    assert custom.name == "hits" and custom([1, 2, 3], [1, 0, 3]) == pytest.approx(2 / 3)


def test_shape_errors_are_clear():
    with pytest.raises(
        ShapeError, match=r"one-hot y_true of shape \(4,\) must match y_pred of shape \(4, 3\)"
    ):
        metrics.CategoricalAccuracy().update_state(np.zeros(4), np.zeros((4, 3)))
    with pytest.raises(ShapeError, match="one class index per sample"):
        metrics.SparseCategoricalAccuracy().update_state(np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ShapeError, match=r"sample_weight of shape \(3,\)"):
        metrics.Mean().update_state(np.zeros(4), sample_weight=np.ones(3))


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ((8,), (8, 1), ((8, 1), (8, 1))),
        ((8, 1), (8,), ((8, 1), (8, 1))),
        ((8, 5, 1), (8, 5), ((8, 5), (8, 5))),
        ((8, 5), (8, 5, 1), ((8, 5), (8, 5))),
        ((8, 3), (8,), ((8, 3), (8,))),
    ],
)
def test_squeeze_or_expand_matches_keras(keras, a, b, expected):
    from keras.src.losses.loss import squeeze_or_expand_to_same_rank as keras_rule

    ours = metrics.squeeze_or_expand_to_same_rank(np.zeros(a), np.zeros(b))
    theirs = keras_rule(keras.ops.zeros(a), keras.ops.zeros(b))
    assert tuple(x.shape for x in ours) == tuple(tuple(x.shape) for x in theirs) == expected
