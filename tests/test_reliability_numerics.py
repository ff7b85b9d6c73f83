"""Numerics: non-float32 inputs are converted as Keras converts them; NaN and inf are caught.

* float64, integer, uint8 and boolean inputs give what Keras gives (both cast
  to float32 in the first layer), and training on them is bit-identical to
  training on the float32 cast: the weights stay float32.
* NaN or inf in ``x`` or ``y`` is an error *before* training, naming the
  samples (arrays) or the epoch and step (a dataset's batch); nothing is
  trained on it. ``predict`` only warns.
* A loss that turns NaN or inf while training (the model blew up) gets one
  warning per ``fit`` that names the epoch and step and what went bad first:
  the weights, the predictions, or the loss alone.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from reliability_helpers import assert_same_state, small_data, small_model, snapshot

from numvgg.callbacks import TerminateOnNaN
from numvgg.errors import NonFiniteError
from numvgg.layers import Conv2D, Dense, GlobalAveragePooling2D
from numvgg.models import Sequential
from numvgg.optimizers import SGD
from numvgg.random import set_random_seed


def plain_model():
    set_random_seed(3)
    model = Sequential(
        [
            Conv2D(4, (3, 3), activation="relu", input_shape=(16, 16, 3)),
            GlobalAveragePooling2D(),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


INPUTS = {
    "float64": lambda r: r.normal(0, 50, (4, 16, 16, 3)),
    "int64": lambda r: r.integers(-300, 300, (4, 16, 16, 3)),
    "uint8": lambda r: r.integers(0, 256, (4, 16, 16, 3)).astype(np.uint8),
    "bool": lambda r: r.random((4, 16, 16, 3)) > 0.5,
}


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_other_input_dtypes_predict_like_keras(keras, kind):
    x = INPUTS[kind](np.random.default_rng(0))
    ours = plain_model()
    theirs = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    theirs.set_weights(ours.get_weights())
    got = ours.predict(x, verbose=0)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ours.predict(x.astype(np.float32), verbose=0))
    np.testing.assert_allclose(got, theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_training_on_float64_and_integer_targets_equals_training_on_float32():
    rng = np.random.default_rng(1)
    x64 = rng.normal(size=(12, 16, 16, 3))
    y_int = rng.integers(0, 2, 12)
    a, b = plain_model(), plain_model()
    a.fit(x64, y_int, batch_size=4, epochs=2, shuffle=False, verbose=0)
    b.fit(x64.astype(np.float32), y_int.astype(np.float32), batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert all(w.dtype == np.float32 for w in a.get_weights())
    assert_same_state(a, b)


# -- NaN and inf in the data ------------------------------------------------------------------
def poisoned(value, sample, where="x"):
    x, y = small_data(10)
    if where == "x":
        x[sample, 3, 4, 1] = value
    else:
        y[sample] = value
    return x, y


@pytest.mark.parametrize("call", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
@pytest.mark.parametrize(
    "value, where, counts",
    [
        (np.nan, "x", "1 NaN and 0 infinite"),
        (-np.inf, "x", "0 NaN and 1 infinite"),
        (np.inf, "y", "0 NaN and 1 infinite"),
    ],
)
def test_non_finite_arrays_are_refused_before_training(call, value, where, counts):
    model = small_model()
    x, y = poisoned(value, 7, where)
    before = snapshot(model)
    kwargs = {"verbose": 0} if call in ("fit", "evaluate") else {}
    with pytest.raises(NonFiniteError) as info:
        getattr(model, call)(x, y, **kwargs)
    message = str(info.value)
    index = "x[7, 3, 4, 1]" if where == "x" else "y[7]"
    for part in (
        f"{call}():",
        f"{where} holds {counts}",
        "in 1 sample(s) [7]",
        index,
        f"np.isfinite({where})",
    ):
        assert part in message, part
    assert isinstance(info.value, ValueError)
    assert_same_state(before, model)


def test_validation_data_is_checked_too():
    model = small_model()
    x, y = small_data(10)
    vx, vy = poisoned(np.nan, 2)
    with pytest.raises(NonFiniteError, match=r"fit\(validation_data=...\): x holds 1 NaN.*\[2\]"):
        model.fit(x, y, validation_data=(vx, vy), verbose=0)


def test_predict_warns_and_only_the_bad_samples_are_nan():
    model = small_model()
    x, _ = poisoned(np.nan, 4)
    with pytest.warns(RuntimeWarning, match=r"predict\(\): x holds 1 NaN .* \[4\].*not be finite"):
        out = model.predict(x, verbose=0)
    assert np.isnan(out[4]).all() and np.isfinite(np.delete(out, 4, axis=0)).all()


def test_nan_in_a_dataset_batch_names_epoch_and_step_and_trains_nothing_on_it():
    model = small_model()
    x, y = small_data(12)

    class Batches:
        """A re-iterable dataset of 3 batches; the 3rd batch of the 2nd pass holds a NaN."""

        passes = 0

        def __len__(self):
            return 3

        def __iter__(self):
            Batches.passes += 1
            for k in range(3):
                xb = x[4 * k : 4 * k + 4].copy()
                if Batches.passes == 2 and k == 2:
                    xb[1, 0, 0, 0] = np.nan
                yield xb, y[4 * k : 4 * k + 4]

    with pytest.raises(
        NonFiniteError,
        match=r"fit\(\): epoch 2/3, step 3/3: the batch's x holds 1 "
        r"NaN .*sample\(s\) \[1\]",
    ):
        model.fit(Batches(), epochs=3, verbose=0)
    assert model.optimizer.iterations == 5  # 3 + 2 batches, not the bad one
    assert all(np.isfinite(w).all() for w in model.get_weights())


# -- a loss that blows up while training ----------------------------------------------------------
def linear_model(learning_rate):
    set_random_seed(0)
    model = Sequential([Dense(1, input_shape=(8,))])
    model.compile(optimizer=SGD(learning_rate=learning_rate), loss="mse")
    return model


def nonfinite_warnings(caught):
    return [
        str(w.message)
        for w in caught
        if issubclass(w.category, RuntimeWarning) and "the loss of this batch" in str(w.message)
    ]


def fit_and_catch(model, x, y, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=4, shuffle=False, verbose=0, **kwargs)
    return nonfinite_warnings(caught)


def test_weights_that_blew_up_are_named_with_epoch_and_step():
    x = np.ones((8, 8), np.float32)
    messages = fit_and_catch(linear_model(1e38), x, np.zeros(8, np.float32), epochs=3)
    assert len(messages) == 1  # once per fit, not once per batch
    assert messages[0].startswith("fit(): epoch 1/3, step 2/2: the loss of this batch is")
    assert "the weights of 'dense" in messages[0] and "already hold NaN or inf" in messages[0]
    assert "TerminateOnNaN" in messages[0]


def test_predictions_that_overflow_are_named():
    x = np.full((8, 8), 3e38, np.float32)
    messages = fit_and_catch(linear_model(0.01), x, np.zeros(8, np.float32))
    assert "step 1/2" in messages[0] and "predictions are not" in messages[0]


def test_loss_that_overflows_on_its_own_is_named():
    y = np.full(8, 1e30, np.float32)  # (y - y_pred)**2 overflows float32
    messages = fit_and_catch(linear_model(0.01), np.ones((8, 8), np.float32), y)
    assert "step 1/2" in messages[0] and "the loss itself overflowed" in messages[0]


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_terminate_on_nan_stops_at_that_batch(capsys):
    model = linear_model(1e38)
    x = np.ones((16, 8), np.float32)
    with pytest.warns(RuntimeWarning, match="step 2/4"):
        history = model.fit(
            x,
            np.zeros(16, np.float32),
            batch_size=4,
            epochs=5,
            shuffle=False,
            verbose=0,
            callbacks=[TerminateOnNaN()],
        )
    assert model.optimizer.iterations == 2 and len(history.epoch) == 1
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out
