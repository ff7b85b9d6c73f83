"""Sample-weighted losses, class_weight, Precision/Recall/AUC and LearningRateScheduler against Keras 3."""

from __future__ import annotations

import types

import numpy as np
import pytest

from numvgg import losses
from numvgg.callbacks import LearningRateScheduler
from numvgg.metrics import AUC, Precision, Recall
from numvgg.metrics import get as get_metric
from numvgg.models.sample_weights import (
    batch_sample_weight,
    check_class_weight,
    check_sample_weight,
    class_weight_to_sample_weights,
    num_classes_of,
    unpack_x_y_sample_weight,
)
from numvgg.optimizers.sgd import SGD

REDUCTIONS = ["sum_over_batch_size", "sum", "mean_with_sample_weight", "none"]


def _loss_case(name, rng):
    n = 6
    if name == "BinaryCrossentropy":
        return rng.integers(0, 2, (n, 1)).astype(np.float32), rng.uniform(0.05, 0.95, (n, 1)).astype(
            np.float32
        )
    if name == "CategoricalCrossentropy":
        p = rng.uniform(0.1, 1, (n, 4)).astype(np.float32)
        return np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)], p / p.sum(1, keepdims=True)
    if name == "SparseCategoricalCrossentropy":
        p = rng.uniform(0.1, 1, (n, 4)).astype(np.float32)
        return rng.integers(0, 4, n), p / p.sum(1, keepdims=True)
    return rng.standard_normal((n, 3)).astype(np.float32), rng.standard_normal((n, 3)).astype(np.float32)


@pytest.mark.keras
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "name",
    ["BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "MeanSquaredError"],
)
def test_weighted_losses_equal_keras(keras, tf, rng, name, reduction):
    y_true, y_pred = _loss_case(name, rng)
    weights = rng.uniform(0, 3, len(y_true)).astype(np.float32)
    ours = getattr(losses, name)(reduction=reduction)
    theirs = getattr(keras.losses, name)(reduction=reduction)
    expected = theirs(y_true, y_pred, sample_weight=weights).numpy()
    np.testing.assert_allclose(ours(y_true, y_pred, sample_weight=weights), expected, rtol=1e-6)
    if reduction == "none":
        return
    yp = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(yp)
        value = theirs(y_true, yp, sample_weight=weights)
    loss, grad = ours.value_and_grad(y_true, y_pred, sample_weight=weights)
    np.testing.assert_allclose(loss, value.numpy(), rtol=1e-6)
    np.testing.assert_allclose(grad, tape.gradient(value, yp).numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.keras
@pytest.mark.parametrize("kind", ["binary", "sparse", "one_hot"])
def test_class_weight_to_sample_weights_equals_keras(keras, rng, kind):
    from keras.src.trainers.data_adapters.data_adapter_utils import (
        class_weight_to_sample_weights as theirs,
    )

    labels = rng.integers(0, 3 if kind != "binary" else 2, 12)
    y = {
        "binary": labels[:, None].astype(np.float32),
        "sparse": labels,
        "one_hot": np.eye(3, dtype=np.float32)[labels],
    }[kind]
    class_weight = {0: 0.5, 1: 3.0}  # class 2 missing: weight 1
    np.testing.assert_array_equal(class_weight_to_sample_weights(y, class_weight), theirs(y, class_weight))


@pytest.mark.keras
def test_fit_with_class_weight_reports_keras_weighted_loss(keras, rng):
    """Keras' fit loss with class_weight is sum(l_i * w_i) / N: check one step with a zero learning rate."""
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.integers(0, 2, (8, 1)).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="binary_crossentropy")
    class_weight = {0: 0.25, 1: 4.0}
    history = model.fit(x, y, batch_size=8, epochs=1, class_weight=class_weight, verbose=0, shuffle=False)
    weights = batch_sample_weight(y, None, check_class_weight(class_weight, num_classes_of((None, 1))))
    ours = losses.BinaryCrossentropy()(y, model.predict(x, verbose=0), sample_weight=weights)
    np.testing.assert_allclose(history.history["loss"][0], ours, rtol=1e-5)


def test_unpack_and_batch_weights():
    x, y, sw = np.zeros((3, 2)), np.array([0, 1, 1]), np.array([1.0, 2.0, 3.0])
    assert unpack_x_y_sample_weight(x)[1] is None
    assert unpack_x_y_sample_weight((x, y))[2] is None
    assert unpack_x_y_sample_weight((x, y, sw))[2] is sw
    np.testing.assert_array_equal(batch_sample_weight(y, sw), sw.astype(np.float32))
    np.testing.assert_array_equal(batch_sample_weight(y, None, {1: 2.0}), [1.0, 2.0, 2.0])
    assert batch_sample_weight(y) is None
    with pytest.raises(ValueError, match="cannot `class_weight` and `sample_weight`"):
        batch_sample_weight(y, sw, {0: 1.0})


@pytest.mark.parametrize(
    "class_weight, message",
    [
        ({0: 1.0, 5: 2.0}, r"names class 5, but the model predicts 2 classes \(0..1\)"),
        ({"cats": 1.0}, r"keys must be class indices \(0..1\); got key 'cats'"),
        ({0: -1.0}, r"class 0 must be a finite number >= 0"),
        ([1.0, 2.0], r"must be a dict"),
    ],
)
def test_bad_class_weight_is_explained(class_weight, message):
    with pytest.raises(ValueError, match=message):
        check_class_weight(class_weight, num_classes=2)


def test_bad_sample_weight_is_explained():
    with pytest.raises(ValueError, match=r"`sample_weight` has 3 weights but there are 4 samples"):
        check_sample_weight([1, 2, 3], 4)
    with pytest.raises(ValueError, match=r"one weight per sample, shape \(2,\); got shape \(2, 3\)"):
        check_sample_weight(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="NaN"):
        check_sample_weight([1.0, np.nan], 2)


METRICS = {
    "precision": (lambda k: k.metrics.Precision(), lambda: Precision()),
    "precision_thresholds": (
        lambda k: k.metrics.Precision(thresholds=[0.3, 0.6]),
        lambda: Precision(thresholds=[0.3, 0.6]),
    ),
    "recall": (lambda k: k.metrics.Recall(), lambda: Recall()),
    "recall_class_id": (lambda k: k.metrics.Recall(class_id=2), lambda: Recall(class_id=2)),
    "auc_roc": (lambda k: k.metrics.AUC(), lambda: AUC()),
    "auc_pr": (lambda k: k.metrics.AUC(curve="PR"), lambda: AUC(curve="PR")),
    "auc_minoring": (
        lambda k: k.metrics.AUC(num_thresholds=20, summation_method="minoring"),
        lambda: AUC(num_thresholds=20, summation_method="minoring"),
    ),
    "auc_majoring_pr": (
        lambda k: k.metrics.AUC(curve="PR", summation_method="majoring"),
        lambda: AUC(curve="PR", summation_method="majoring"),
    ),
    "auc_thresholds": (
        lambda k: k.metrics.AUC(thresholds=[0.2, 0.5, 0.7]),
        lambda: AUC(thresholds=[0.2, 0.5, 0.7]),
    ),
    "auc_logits": (lambda k: k.metrics.AUC(from_logits=True), lambda: AUC(from_logits=True)),
}


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(METRICS))
def test_confusion_metrics_equal_keras(keras, rng, name):
    make_keras, make_ours = METRICS[name]
    theirs, ours = make_keras(keras), make_ours()
    columns = 3 if "class_id" in name else 1
    for batch in range(3):  # running counts over several batches
        y_true = rng.integers(0, 2, (10, columns)).astype(np.float32)
        y_pred = rng.uniform(0, 1, (10, columns)).astype(np.float32)
        if "logits" in name:
            y_pred = (y_pred - 0.5) * 8
        weights = rng.uniform(0, 2, 10).astype(np.float32) if batch != 1 else None
        theirs.update_state(y_true, y_pred, sample_weight=weights)
        ours.update_state(y_true, y_pred, sample_weight=weights)
        np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=1e-5, atol=1e-6)
    ours.reset_state()
    assert np.all(np.asarray(ours.result()) == 0)


def test_metrics_by_name():
    assert isinstance(get_metric("auc"), AUC) and isinstance(get_metric("Precision"), Precision)
    assert get_metric("recall").name == "recall"
    with pytest.raises(ValueError, match="curve"):
        AUC(curve="ROCK")


@pytest.mark.keras
def test_learning_rate_scheduler_equals_keras(keras):
    def two_args(epoch, lr):
        return lr if epoch < 2 else lr * 0.5

    def one_arg(epoch):
        return 0.1 / (epoch + 1)

    for schedule in (two_args, one_arg):
        theirs = keras.callbacks.LearningRateScheduler(schedule)
        keras_model = types.SimpleNamespace(optimizer=keras.optimizers.SGD(0.1))
        theirs.set_model(keras_model)
        ours = LearningRateScheduler(schedule)
        ours.set_model(types.SimpleNamespace(optimizer=SGD(0.1)))
        for epoch in range(5):
            keras_logs, our_logs = {"loss": 1.0}, {"loss": 1.0}  # Keras drops an empty dict
            theirs.on_epoch_begin(epoch)
            ours.on_epoch_begin(epoch)
            theirs.on_epoch_end(epoch, keras_logs)
            ours.on_epoch_end(epoch, our_logs)
            assert our_logs["learning_rate"] == pytest.approx(keras_logs["learning_rate"], rel=1e-7)
    bad = LearningRateScheduler(lambda epoch, lr: 1)
    bad.set_model(types.SimpleNamespace(optimizer=SGD(0.1)))
    with pytest.raises(ValueError, match="should be a float"):
        bad.on_epoch_begin(0)
