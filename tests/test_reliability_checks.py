"""Issue 15, the late checks: validation_data checked before the first step;
binary_crossentropy targets outside [0, 1] warned about."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from reliability_helpers import small_data, small_model

from numvgg.errors import ShapeError
from numvgg.models.checks import check_binary_targets, check_validation_data


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda x, y: (x[:8], y[:5]),
            (
                r"validation_data.*x_val has 8 samples \(shape \(8, 16, 16, 3\)\) "
                r"but y_val has 5 \(shape \(5,\)\)"
            ),
        ),
        (
            lambda x, y: (x[:8], np.zeros((8, 3))),
            (
                r"validation_data.*y_val has shape \(8, 3\) but the "
                r"model's output has shape \(None, 1\)"
            ),
        ),
        (lambda x, y: (x[:8, :8], y[:8]), r"validation_data.*\(None, 16, 16, 3\).*\(8, 8, 16, 3\)"),
        (lambda x, y: (x[:8], y[:8], np.ones(3)), r"sample_weight has shape \(3,\)"),
    ],
)
def test_bad_validation_data_is_refused_naming_both_shapes(make, match):
    model = small_model()
    x, y = small_data(16)
    with pytest.raises(ShapeError, match=match):
        check_validation_data(model, make(x, y))


@pytest.mark.parametrize("y_val", [np.zeros(8), np.zeros((8, 1)), np.full((8, 1), 0.3)])
def test_good_validation_data_passes(y_val):
    model = small_model()
    x, _ = small_data(8)
    check_validation_data(model, (x, y_val))
    check_validation_data(model, iter([]))  # datasets: checked batch by batch


@pytest.mark.parametrize("make", [lambda x, y: (x[:8], y[:5]), lambda x, y: (x[:8], np.zeros((8, 3)))])
def test_fit_refuses_bad_validation_data_before_the_first_step(make):
    model = small_model()
    x, y = small_data(16)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ShapeError, match="validation_data"):
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_data=make(x, y))
    assert model.optimizer.iterations == 0  # before: after a whole epoch
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fit_warns_once_about_0_255_labels_arrays_and_datasets():
    x, y = small_data(16)
    with pytest.warns(UserWarning, match="hold 0, 255") as record:
        small_model().fit(x, y * 255, epochs=2, batch_size=8, verbose=0)
    assert sum("binary_crossentropy expects" in str(w.message) for w in record) == 1

    class Batches:  # a re-iterable dataset of (x, y) batches
        def __iter__(self):
            return one_shot(x, y * 2 - 1, 2)

    with pytest.warns(UserWarning, match="hold -1, 1") as record:
        small_model().fit(Batches(), epochs=2, verbose=0)
    assert sum("binary_crossentropy expects" in str(w.message) for w in record) == 1


@pytest.mark.parametrize(
    "y, shown, hint",
    [
        (np.array([0, 255, 255, 0]), "0, 255", "Divide by 255"),
        (np.array([-1.0, 1.0, 1.0]), "-1, 1", "Map -1 to 0"),
        (np.array([0.0, 2.0, 3.0]), "0, 2, 3", ""),
    ],
)
def test_binary_targets_outside_0_1_warn_naming_the_values(y, shown, hint):
    with pytest.warns(UserWarning, match=rf"expects targets in \[0, 1\].*hold {shown}\..*{hint}"):
        assert check_binary_targets(y, "fit()")


def test_binary_targets_in_range_are_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not check_binary_targets(np.array([0.0, 1.0, 0.25]), "fit()")
        assert not check_binary_targets(np.array([True, False]), "fit()")


# -- 1. zero-sample epochs ----------------------------------------------------------------------------
def one_shot(x, y, n):
    for i in range(n):
        yield x[8 * i : 8 * i + 8], y[8 * i : 8 * i + 8]


def test_a_one_shot_generator_stops_training_with_keras_warning():
    x, y = small_data(24)
    with pytest.warns(UserWarning, match="Your input ran out of data; interrupting training"):
        history = small_model().fit(one_shot(x, y, 3), epochs=3, verbose=0)
    assert history.epoch == [0] and len(history.history["loss"]) == 1
    assert history.history["loss"][0] > 0.1  # a real loss, never 0.0


def test_an_empty_generator_logs_nothing():
    x, y = small_data(8)
    with pytest.warns(UserWarning, match="ran out of data"):
        history = small_model().fit(one_shot(x, y, 0), epochs=2, verbose=0)
    assert history.history == {} and history.epoch == []


def test_an_exhausted_validation_generator_is_not_a_number_and_never_checkpointed(tmp_path):
    from numvgg.callbacks import EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
    from numvgg.callbacks.logs import NoSamples

    x, y = small_data(24)
    best = tmp_path / "best.weights.h5"
    checkpoint = ModelCheckpoint(str(best), save_best_only=True, save_weights_only=True)
    stopping = EarlyStopping(patience=1)
    plateau = ReduceLROnPlateau(patience=1)
    with pytest.warns(UserWarning, match="computed over zero samples"):
        history = small_model().fit(
            x,
            y,
            epochs=4,
            batch_size=8,
            verbose=0,
            validation_data=one_shot(x, y, 3),
            callbacks=[checkpoint, stopping, plateau],
        )
    val_loss = history.history["val_loss"]
    assert np.isfinite(val_loss[0]) and all(isinstance(v, NoSamples) for v in val_loss[1:])
    assert all(np.isnan(v) for v in val_loss[1:])  # not a number, never 0.0
    assert history.epoch == [0, 1, 2, 3]  # EarlyStopping ignored them
    assert stopping.wait == 0 and plateau.wait == 0
    assert checkpoint.best == val_loss[0]


def test_evaluate_on_no_data_is_not_a_number():
    x, y = small_data(8)
    with pytest.warns(UserWarning, match="ran out of data"):
        logs = small_model().evaluate(one_shot(x, y, 0), verbose=0, return_dict=True)
    assert "loss" in logs and all(np.isnan(v) for v in logs.values())  # acc: not resolved yet


def test_a_dataset_of_unreadable_files_trains_nothing_and_logs_nothing(tmp_path):
    from numvgg.utils import image_dataset_from_directory

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "1.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning) as record:
        dataset = image_dataset_from_directory(
            tmp_path, image_size=(16, 16), batch_size=2, label_mode="binary", verbose=False
        )
        history = small_model().fit(dataset, epochs=2, verbose=0)
    assert any("ran out of data" in str(w.message) for w in record)
    assert history.history == {}  # was {'loss': [0.0]}
