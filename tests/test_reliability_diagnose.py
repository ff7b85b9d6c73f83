"""Issue 15: the NaN / divergence diagnosis (numvgg.models.diagnose) looks at
weights and logits, and flags divergence, not only NaN."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from reliability_helpers import small_data, small_model

from numvgg.models import diagnose
from numvgg.optimizers import SGD, Adam


def train_until(model, n_batches=12):
    """Train batch by batch; return ``[(loss, logits)]`` (weights as used by each batch)."""
    x, y = small_data(8 * n_batches)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            for i in range(n_batches):
                xb, yb = x[8 * i : 8 * i + 8], y[8 * i : 8 * i + 8]
                y_pred = model(xb)  # the weights of this batch
                logits = model.layers[-1].last_logits
                diag = diagnose.diagnose_nonfinite_loss(model, y_pred, logits, 1e10)
                loss = model.train_on_batch(xb, yb)
                seen.append((float(np.ravel(loss)[0]), diag))
    return seen


def test_sgd_at_1e10_is_blamed_on_the_updates_not_the_targets():
    seen = train_until(small_model(optimizer=SGD(learning_rate=1e10)))
    nan_batches = [diag for loss, diag in seen if not np.isfinite(loss)]
    assert nan_batches, "SGD at lr=1e10 should reach a NaN loss"
    first = nan_batches[0]
    assert first.kind in (diagnose.EXPLODED_WEIGHTS, diagnose.NONFINITE_WEIGHTS)
    assert "learning rate too high (learning_rate=1e+10)" in first.message
    assert all(diag.kind != diagnose.TARGETS for diag in nan_batches)


def test_adam_at_1e10_is_flagged_as_diverging_before_any_nan():
    model = small_model(optimizer=Adam(learning_rate=1e10))
    x, y = small_data(64)
    monitor = diagnose.DivergenceMonitor()
    flagged = []
    with np.errstate(all="ignore"):
        for i in range(8):
            loss = float(np.ravel(model.train_on_batch(x[8 * i : 8 * i + 8], y[8 * i : 8 * i + 8]))[0])
            assert np.isfinite(loss)
            diag = monitor.update(loss, model, model.layers[-1].last_logits, 1e10)
            if diag is not None:
                flagged.append((i, diag))
    assert len(flagged) == 1 and flagged[0][0] <= 2  # once, and early
    assert flagged[0][1].kind == diagnose.DIVERGING
    assert "training is diverging" in flagged[0][1].message and "weights reach" in flagged[0][1].message


def test_a_sane_run_is_never_flagged():
    model = small_model(optimizer=Adam(learning_rate=1e-3))
    x, y = small_data(64)
    monitor = diagnose.DivergenceMonitor()
    for _ in range(3):
        for i in range(8):
            loss = float(np.ravel(model.train_on_batch(x[8 * i : 8 * i + 8], y[8 * i : 8 * i + 8]))[0])
            assert monitor.update(loss, model) is None


def test_nonfinite_weights_are_named():
    model = small_model()
    model.layers[0].params["bias"][1] = np.nan
    diag = diagnose.diagnose_nonfinite_loss(model, np.zeros((2, 1)))
    assert diag.kind == diagnose.NONFINITE_WEIGHTS and f"'{model.layers[0].name}/bias'" in diag.message


@pytest.mark.parametrize(
    "y_pred, kind",
    [
        (np.array([[np.inf], [0.5]]), diagnose.ACTIVATION_OVERFLOW),
        (np.array([[0.2], [0.5]]), diagnose.TARGETS),
    ],
)
def test_with_sane_weights_predictions_then_targets(y_pred, kind):
    diag = diagnose.diagnose_nonfinite_loss(small_model(), y_pred, logits=np.array([[1.0], [0.0]]))
    assert diag.kind == kind


def test_a_loss_near_zero_first_does_not_make_everything_diverge():
    monitor = diagnose.DivergenceMonitor()
    assert monitor.update(0.0) is None
    assert monitor.update(0.5) is None  # 0.5 < 1000 * 1e-3
    assert monitor.update(float("nan")) is None
    assert monitor.update(5.0).kind == diagnose.DIVERGING
