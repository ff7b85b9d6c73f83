"""numvgg's callbacks against Keras 3's own, driven by the same scripted logs.

A small fake model (weights, ``stop_training``, an optimizer whose learning
rate is stored in float32 like a Keras variable, ``save_weights`` writing a
file) stands in for a real one: the callbacks only use those. The same fake is
handed to Keras' callbacks, so both sides see exactly the same calls.
"""

import contextlib
import io
import os

import numpy as np
import pytest

from numvgg.callbacks import (
    HOOK_NAMES,
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    History,
    LambdaCallback,
    ModelCheckpoint,
    MonitorCallback,
    ProgbarLogger,
    ReduceLROnPlateau,
    TerminateOnNaN,
    pythonify_logs,
)
from numvgg.callbacks.monitor import infer_mode

# -- a fake model --------------------------------------------------------------


class FakeOptimizer:
    """Keeps ``learning_rate`` in float32 and returns it as a Python float, like
    Keras' optimizer variable and numvgg's optimizers."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    @property
    def learning_rate(self):
        return float(self._lr)

    @learning_rate.setter
    def learning_rate(self, value):
        self._lr = np.float32(value)


class FakeModel:
    """What callbacks use of a model, and nothing else."""

    def __init__(self, learning_rate=0.01):
        self.stop_training = False
        self.weights = [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]
        self.optimizer = FakeOptimizer(learning_rate)
        self.saved = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w, copy=True) for w in weights]

    def save_weights(self, filepath, overwrite=True):
        with open(filepath, "wb") as f:
            np.save(f, np.concatenate([w.ravel() for w in self.weights]))
        self.saved.append(os.path.basename(filepath))


class StateModel(FakeModel):
    def save_training_state(self, filepath):
        with open(filepath, "w") as f:
            f.write("state")
        self.saved.append(("state", os.path.basename(filepath)))


def run_fit(callback, model, epoch_logs, batch_logs=()):
    """Drive ``callback`` like Keras 3's ``fit`` loop, one epoch per entry of
    ``epoch_logs``; stop when ``model.stop_training`` is set. The weights of
    epoch ``e`` are filled with ``e`` (to see which epoch gets restored).

    Returns:
        (epochs run, printed text, learning rate after each epoch).
    """
    callback.set_model(model)
    model.stop_training = False
    out = io.StringIO()
    lrs = []
    with contextlib.redirect_stdout(out):
        callback.on_train_begin()
        ran, logs = 0, {}
        for epoch, logs in enumerate(epoch_logs):
            callback.on_epoch_begin(epoch)
            for batch, blogs in enumerate(batch_logs):
                callback.on_train_batch_begin(batch)
                callback.on_train_batch_end(batch, dict(blogs))
                if model.stop_training:
                    break
            model.weights = [np.full_like(w, epoch) for w in model.weights]
            callback.on_epoch_end(epoch, dict(logs))
            lrs.append(model.optimizer.learning_rate)
            ran += 1
            if model.stop_training:
                break
        callback.on_train_end(dict(logs))
    return ran, out.getvalue(), lrs


def val_losses(values):
    return [{"loss": 1.0, "val_loss": v} for v in values]


# -- Callback, CallbackList, History -------------------------------------------


def make_recorder(base):
    """A ``base`` subclass recording each hook call as (name, positional args,
    keyword args). It overrides every hook except ``on_train_batch_begin/end``,
    so those reach ``on_batch_begin/end`` through the base class's alias."""
    calls = []

    def copy(value):
        return dict(value) if isinstance(value, dict) else value

    def hook(name):
        def method(self, *args, **kwargs):
            calls.append((name, tuple(copy(a) for a in args), {k: copy(v) for k, v in kwargs.items()}))

        return method

    names = [n for n in HOOK_NAMES if n not in ("on_train_batch_begin", "on_train_batch_end")]
    cls = type("Recorder", (base,), {n: hook(n) for n in names})
    return cls, calls


def play_everything(callbacks):
    """Every hook a fit + evaluate + predict would call, with NumPy values in the logs."""
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    callbacks.on_train_batch_begin(0)
    callbacks.on_train_batch_end(0, {"loss": np.float32(0.5), "acc": np.float64(0.25)})
    callbacks.on_test_begin()
    callbacks.on_test_batch_begin(0)
    callbacks.on_test_batch_end(0, {"loss": np.array(0.75, np.float32)})
    callbacks.on_test_end({"loss": 0.75})
    callbacks.on_epoch_end(0, {"val_loss": 0.75, "loss": np.float32(0.5), "extra": {"nested": 3}})
    callbacks.on_train_end({"loss": 0.5})
    callbacks.on_predict_begin()
    callbacks.on_predict_batch_begin(0)
    callbacks.on_predict_batch_end(0, {"size": np.int64(2)})
    callbacks.on_predict_end()


def test_callback_list_calls_hooks_like_keras(keras):
    ours_cls, ours = make_recorder(Callback)
    theirs_cls, theirs = make_recorder(keras.callbacks.Callback)
    model = FakeModel()
    play_everything(CallbackList([ours_cls()], model=model, verbose=0, epochs=1, steps=1))
    play_everything(keras.callbacks.CallbackList([theirs_cls()], model=model, verbose=0, epochs=1, steps=1))
    assert ours == theirs
    # Keras 2's on_batch_* names still receive the training batches.
    assert [c[0] for c in ours[2:4]] == ["on_batch_begin", "on_batch_end"]
    # Sorted keys, Python floats, nested dicts flattened.
    assert ours[3][2] == {"logs": {"acc": 0.25, "loss": 0.5}}
    assert list(ours[3][2]["logs"]) == ["acc", "loss"]
    epoch_end = next(call for call in ours if call[0] == "on_epoch_end")
    assert epoch_end[1] == (0, {"loss": 0.5, "nested": 3.0, "val_loss": 0.75})


def test_pythonify_logs():
    logs = {
        "b": np.float32(0.5),
        "a": np.array(2.0),
        "c": {"d": np.int64(3)},
        "outputs": np.ones((1, 1)),
        "name": "x",
    }
    out = pythonify_logs(logs)
    assert list(out) == ["a", "b", "d", "name", "outputs"]
    assert [type(out[k]) for k in "abd"] == [float, float, float]
    assert out["outputs"] is logs["outputs"] and out["name"] == "x"
    assert "c" in logs and isinstance(logs["b"], np.float32)  # the input is untouched


def test_callback_list_adds_defaults_once_and_wires_the_model():
    model = FakeModel()
    history, logger = History(), ProgbarLogger()
    mine = Callback()
    callbacks = CallbackList(
        [[mine], history, logger],
        add_history=True,
        add_progbar=True,
        model=model,
        verbose=2,
        epochs=4,
        steps=7,
    )
    assert callbacks.callbacks == [mine, history, logger]
    assert model.history is history
    assert all(cb.model is model for cb in callbacks.callbacks)
    assert mine.params == {"verbose": 2, "epochs": 4, "steps": 7}
    added = CallbackList(mine, add_history=True, add_progbar=True, verbose=1, epochs=1, steps=1)
    assert [type(cb) for cb in added.callbacks] == [Callback, History, ProgbarLogger]


def test_callback_list_rejects_non_callbacks():
    with pytest.raises(TypeError, match=r"callbacks\[1\] is 'oops' of type str"):
        CallbackList([Callback(), "oops"])


def test_unmatched_end_is_an_error():
    callbacks = CallbackList([Callback()])
    with pytest.raises(ValueError, match="on_test_end was called without a matching on_test_begin"):
        callbacks.on_test_end()


def test_history_matches_keras(keras):
    logs = [{"loss": 1.0 / (e + 1), "acc": 0.5 + e / 10, "val_loss": 0.9 - e / 20} for e in range(4)]
    ours, theirs = FakeModel(), FakeModel()
    ours_list = CallbackList(None, add_history=True, model=ours, verbose=0, epochs=4, steps=2)
    theirs_list = keras.callbacks.CallbackList(
        None, add_history=True, model=theirs, verbose=0, epochs=4, steps=2
    )
    run_fit(ours_list, ours, logs)
    run_fit(theirs_list, theirs, logs)
    assert ours.history.history == theirs.history.history
    assert ours.history.epoch == theirs.history.epoch == [0, 1, 2, 3]
    assert ours.history.params == theirs.history.params
    assert ours.history.model is ours


def test_stop_training_stops_the_loop_after_the_batch():
    stopper = LambdaCallback(
        on_train_batch_end=lambda batch, logs: setattr(stopper.model, "stop_training", batch == 1)
    )
    seen = []
    recorder = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    model = FakeModel()
    ran, _, _ = run_fit(
        CallbackList([stopper, recorder], model=model),
        model,
        val_losses([1, 1, 1]),
        batch_logs=[{"loss": 1}] * 4,
    )
    assert ran == 1 and seen == [0]


# -- EarlyStopping -------------------------------------------------------------

SEQ = [1.0, 0.9, 0.95, 0.97, 0.85, 0.9, 0.91, 0.92, 0.93, 0.94]


@pytest.mark.parametrize(
    "kwargs, values",
    [
        ({}, SEQ),
        ({"patience": 1}, SEQ),
        ({"patience": 2}, SEQ),
        ({"patience": 3, "restore_best_weights": True}, SEQ),
        ({"patience": 2, "min_delta": 0.06}, SEQ),
        ({"patience": 2, "baseline": 0.8, "restore_best_weights": True}, SEQ),
        ({"patience": 1, "baseline": 0.95}, SEQ),
        ({"patience": 1, "start_from_epoch": 3}, SEQ),
        ({"patience": 0, "restore_best_weights": True}, [0.5, 0.6]),
        ({"patience": 2, "mode": "max", "monitor": "val_acc"}, [0.5, 0.6, 0.55, 0.58, 0.7, 0.6]),
        ({"patience": 1, "mode": "min", "restore_best_weights": True}, [np.nan, 1.0, 0.9, 1.0, 1.1]),
    ],
)
def test_early_stopping_matches_keras(keras, kwargs, values):
    monitor = kwargs.get("monitor", "val_loss")
    logs = [{"loss": 1.0, monitor: v} for v in values]
    ours_model, theirs_model = FakeModel(), FakeModel()
    ours = EarlyStopping(verbose=1, **kwargs)
    theirs = keras.callbacks.EarlyStopping(verbose=1, **kwargs)
    ours_run = run_fit(ours, ours_model, logs)
    theirs_run = run_fit(theirs, theirs_model, logs)
    assert ours_run[:2] == theirs_run[:2]  # epochs run, printed text
    assert (ours.stopped_epoch, ours.wait, ours.best_epoch) == (
        theirs.stopped_epoch,
        theirs.wait,
        theirs.best_epoch,
    )
    np.testing.assert_equal(ours.best, theirs.best)
    for a, b in zip(ours_model.weights, theirs_model.weights):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_auto_mode_on_accuracy_maximises(keras):
    logs = [{"val_acc": v} for v in [0.5, 0.6, 0.55, 0.58, 0.7, 0.6, 0.6]]
    ours = EarlyStopping(monitor="val_acc", patience=1)
    theirs = keras.callbacks.EarlyStopping(monitor="val_acc", patience=1, mode="max")
    # 0.5, 0.6 (best), 0.55: no improvement with patience 1 -> stop after 3 epochs.
    assert run_fit(ours, FakeModel(), logs)[0] == run_fit(theirs, FakeModel(), logs)[0] == 3
    assert ours.best == 0.6


def test_early_stopping_missing_metric_warns_like_keras(keras):
    logs = [{"loss": 1.0, "acc": 0.5}] * 3
    with pytest.warns(UserWarning) as ours_warnings:
        ran, _, _ = run_fit(EarlyStopping(monitor="val_loss"), FakeModel(), logs)
    with pytest.warns(UserWarning) as theirs_warnings:
        run_fit(keras.callbacks.EarlyStopping(monitor="val_loss"), FakeModel(), logs)
    assert ran == 3
    ours_text = [str(w.message) for w in ours_warnings]
    assert ours_text == [str(w.message) for w in theirs_warnings]
    assert ours_text[0] == (
        "Early stopping conditioned on metric `val_loss` which is not "
        "available. Available metrics are: loss,acc"
    )


def test_early_stopping_can_be_reused_across_fits():
    stopper = EarlyStopping(patience=0)
    assert run_fit(stopper, FakeModel(), val_losses([1.0, 2.0, 3.0]))[0] == 2
    assert run_fit(stopper, FakeModel(), val_losses([5.0, 4.0, 3.0]))[0] == 3


# -- ReduceLROnPlateau ---------------------------------------------------------

PLATEAU = [1.0, 0.9, 0.9, 0.9, 0.9, 0.85, 0.85, 0.85, 0.85, 0.85, 0.8, 0.8, 0.8, 0.8, 0.8]


@pytest.mark.parametrize(
    "kwargs, values",
    [
        ({"patience": 2}, PLATEAU),
        ({"patience": 0, "factor": 0.5}, PLATEAU),
        ({"patience": 1, "cooldown": 2}, PLATEAU),
        ({"patience": 1, "min_lr": 1e-3}, PLATEAU),
        ({"patience": 1, "min_delta": 0.06}, PLATEAU),
        (
            {"patience": 1, "factor": 0.3, "mode": "max", "monitor": "val_acc"},
            [0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.7, 0.71],
        ),
    ],
)
def test_reduce_lr_on_plateau_matches_keras(keras, kwargs, values):
    monitor = kwargs.get("monitor", "val_loss")
    logs = [{"loss": 1.0, monitor: v} for v in values]
    ours = ReduceLROnPlateau(verbose=1, **kwargs)
    theirs = keras.callbacks.ReduceLROnPlateau(verbose=1, **kwargs)
    _, ours_text, ours_lrs = run_fit(ours, FakeModel(0.01), logs)
    _, theirs_text, theirs_lrs = run_fit(theirs, FakeModel(0.01), logs)
    assert ours_lrs == theirs_lrs
    assert ours_text == theirs_text
    assert len(set(ours_lrs)) > 1


def test_reduce_lr_puts_the_rate_in_history_and_progbar(keras):
    # ReduceLROnPlateau writes "learning_rate" into the epoch logs before History
    # and ProgbarLogger see them: history and bar show it, after the val_ keys.
    logs = val_losses([1.0, 1.0, 1.0])
    ours_model, theirs_model = FakeModel(0.01), FakeModel(0.01)
    out = io.StringIO()
    ours = CallbackList(
        [ReduceLROnPlateau(patience=1, factor=0.5), ProgbarLogger(stream=out, dynamic_display=False)],
        add_history=True,
        model=ours_model,
        verbose=2,
        epochs=3,
        steps=1,
    )
    theirs = keras.callbacks.CallbackList(
        [keras.callbacks.ReduceLROnPlateau(patience=1, factor=0.5)],
        add_history=True,
        model=theirs_model,
        verbose=2,
        epochs=3,
        steps=1,
    )
    run_fit(ours, ours_model, logs)
    run_fit(theirs, theirs_model, logs)
    assert ours_model.history.history == theirs_model.history.history
    assert ours_model.history.history["learning_rate"] == [
        float(np.float32(0.01)),
        float(np.float32(0.01)),
        float(np.float32(0.005)),
    ]
    assert out.getvalue().split("\n")[1].endswith("val_loss: 1.0000 - learning_rate: 0.0100")


def test_reduce_lr_missing_metric_warns_like_keras(keras):
    logs = [{"loss": 1.0}] * 2
    with pytest.warns(UserWarning) as ours_warnings:
        run_fit(ReduceLROnPlateau(), FakeModel(), logs)
    with pytest.warns(UserWarning) as theirs_warnings:
        run_fit(keras.callbacks.ReduceLROnPlateau(), FakeModel(), logs)
    assert [str(w.message) for w in ours_warnings] == [str(w.message) for w in theirs_warnings]
    assert "Available metrics are: loss,learning_rate." in str(ours_warnings[0].message)


def test_reduce_lr_rejects_factor_of_one_or_more():
    with pytest.raises(ValueError, match="factor >= 1.0"):
        ReduceLROnPlateau(factor=1.0)


def test_reduce_lr_without_optimizer_says_compile_first():
    model = FakeModel()
    model.optimizer = None
    with pytest.raises(AttributeError, match="model.compile"):
        run_fit(ReduceLROnPlateau(), model, val_losses([1.0]))


# -- TerminateOnNaN ------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_terminate_on_nan_matches_keras(keras, bad):
    batches = [{"loss": 1.0}, {"loss": 0.5}, {"loss": bad}, {"loss": 0.1}]
    ours_model, theirs_model = FakeModel(), FakeModel()
    ours = run_fit(TerminateOnNaN(), ours_model, val_losses([1.0, 1.0]), batches)
    theirs = run_fit(keras.callbacks.TerminateOnNaN(), theirs_model, val_losses([1.0, 1.0]), batches)
    assert ours[:2] == theirs[:2] == (1, "Batch 2: Invalid loss, terminating training\n")
    with pytest.raises(RuntimeError) as ours_error:
        run_fit(TerminateOnNaN(raise_error=True), FakeModel(), val_losses([1.0]), batches)
    with pytest.raises(RuntimeError) as theirs_error:
        run_fit(keras.callbacks.TerminateOnNaN(raise_error=True), FakeModel(), val_losses([1.0]), batches)
    assert str(ours_error.value) == str(theirs_error.value)


def test_terminate_on_nan_ignores_finite_and_missing_losses():
    model = FakeModel()
    ran, text, _ = run_fit(TerminateOnNaN(), model, val_losses([1.0, 1.0]), [{"acc": 0.5}, {"loss": 3.0}])
    assert (ran, text, model.stop_training) == (2, "", False)


# -- CSVLogger -----------------------------------------------------------------


def csv_bytes(make_logger, runs, path):
    for logs in runs:
        run_fit(make_logger(path), FakeModel(), logs)
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize(
    "kwargs, runs",
    [
        ({}, [[{"loss": 0.5, "acc": 0.25, "val_loss": 0.75, "val_acc": 0.125}] * 3]),
        ({}, [[{"loss": 0.5, "acc": 1 / 3}, {"loss": 0.25, "acc": 2 / 3}]]),  # NA columns
        ({"separator": ";"}, [[{"loss": 0.5, "val_loss": 0.75}] * 2]),
        ({"append": True}, [[{"loss": 0.5, "val_loss": 0.7}] * 2, [{"loss": 0.4, "val_loss": 0.6}]]),
        ({}, [[{"loss": 0.5, "per_class": [0.25, 0.5], "note": "ok"}]]),
    ],
)
def test_csv_logger_file_matches_keras(keras, tmp_path, kwargs, runs):
    ours = csv_bytes(lambda p: CSVLogger(p, **kwargs), runs, tmp_path / "ours.csv")
    theirs = csv_bytes(lambda p: keras.callbacks.CSVLogger(str(p), **kwargs), runs, tmp_path / "theirs.csv")
    assert ours == theirs
    assert ours.startswith(b"epoch")


def test_csv_logger_content(tmp_path):
    path = tmp_path / "log.csv"
    run_fit(CSVLogger(path), FakeModel(), [{"loss": 0.5, "acc": 0.25}])
    assert path.read_bytes() == b"epoch,acc,loss,val_acc,val_loss\r\n0,0.25,0.5,NA,NA\r\n"


# -- ModelCheckpoint -----------------------------------------------------------

CKPT_LOGS = [
    {"loss": 1.0, "val_loss": v, "val_acc": a}
    for v, a in [(0.9, 0.5), (0.7, 0.6), (0.8, 0.65), (0.6, 0.6), (0.65, 0.7)]
]


@pytest.mark.parametrize(
    "pattern, kwargs, batches",
    [
        ("{epoch:02d}-{val_loss:.2f}.weights.h5", {}, ()),
        ("{epoch:02d}-{val_loss:.2f}.weights.h5", {"save_best_only": True}, ()),
        ("best.weights.h5", {"save_best_only": True, "initial_value_threshold": 0.75}, ()),
        ("{epoch:02d}.weights.h5", {"save_best_only": True, "monitor": "val_acc", "mode": "max"}, ()),
        ("e{epoch}-b{batch}.weights.h5", {"save_freq": 3}, [{"loss": 1.0}] * 4),
    ],
)
def test_model_checkpoint_matches_keras(keras, tmp_path, pattern, kwargs, batches):
    ours_model, theirs_model = FakeModel(), FakeModel()
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours = ModelCheckpoint(str(tmp_path / "ours" / pattern), save_weights_only=True, verbose=1, **kwargs)
    theirs = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "theirs" / pattern), save_weights_only=True, verbose=1, **kwargs
    )
    _, ours_text, _ = run_fit(ours, ours_model, CKPT_LOGS, batches)
    _, theirs_text, _ = run_fit(theirs, theirs_model, CKPT_LOGS, batches)
    assert ours_model.saved == theirs_model.saved
    assert ours_text.replace(str(tmp_path / "ours"), "DIR") == theirs_text.replace(
        str(tmp_path / "theirs"), "DIR"
    )
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "theirs"))


def test_model_checkpoint_names_and_contents(tmp_path):
    model = FakeModel()
    run_fit(
        ModelCheckpoint(
            tmp_path / "ckpt" / "{epoch:02d}-{val_loss:.2f}.weights.h5",
            save_weights_only=True,
            save_best_only=True,
        ),
        model,
        CKPT_LOGS,
    )
    assert sorted(os.listdir(tmp_path / "ckpt")) == [
        "01-0.90.weights.h5",
        "02-0.70.weights.h5",
        "04-0.60.weights.h5",
    ]
    # The file holds the weights of its own epoch (epoch 4 of 5 is index 3).
    saved = np.load(tmp_path / "ckpt" / "04-0.60.weights.h5")
    np.testing.assert_array_equal(saved, np.full(9, 3.0, np.float32))


def test_model_checkpoint_saves_training_state_when_the_model_can(tmp_path):
    model = StateModel()
    run_fit(ModelCheckpoint(tmp_path / "{epoch}.ckpt"), model, CKPT_LOGS[:2])
    assert model.saved == [("state", "1.ckpt"), ("state", "2.ckpt")]


def test_model_checkpoint_falls_back_to_weights_and_warns_once(tmp_path):
    model = FakeModel()
    with pytest.warns(UserWarning, match="no save_training_state") as caught:
        run_fit(ModelCheckpoint(tmp_path / "{epoch}.ckpt"), model, CKPT_LOGS[:3])
    assert len(caught) == 1
    assert model.saved == ["1.ckpt", "2.ckpt", "3.ckpt"]


def test_model_checkpoint_missing_field_names_the_keys(tmp_path):
    with pytest.raises(KeyError, match=r"val_f1.*Available fields are: loss, val_loss, val_acc"):
        run_fit(ModelCheckpoint(tmp_path / "{val_f1:.2f}.h5", save_weights_only=True), FakeModel(), CKPT_LOGS)


def test_model_checkpoint_refuses_a_directory(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError, match="existing directory"):
        run_fit(ModelCheckpoint(tmp_path / "taken", save_weights_only=True), FakeModel(), CKPT_LOGS)


def test_model_checkpoint_missing_monitor_warns_and_saves(tmp_path):
    model = FakeModel()
    with pytest.warns(UserWarning, match="Available metrics are: loss"):
        run_fit(
            ModelCheckpoint(tmp_path / "w.h5", save_best_only=True, save_weights_only=True),
            model,
            [{"loss": 1.0}],
        )
    assert model.saved == ["w.h5"]


@pytest.mark.parametrize("bad", ["batch", 0, 2.5, True])
def test_model_checkpoint_rejects_bad_save_freq(tmp_path, bad):
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint(tmp_path / "w.h5", save_freq=bad)


# -- monitor direction ---------------------------------------------------------


class FakeMetric:
    def __init__(self, name, direction):
        self.name, self._direction = name, direction


@pytest.mark.parametrize(
    "monitor, expected",
    [
        ("val_loss", "min"),
        ("loss", "min"),
        ("val_acc", "max"),
        ("acc", "max"),
        ("val_binary_accuracy", "max"),
        ("val_mean_squared_error", "min"),
        ("auc", "max"),
    ],
)
def test_auto_mode_from_the_name(monitor, expected):
    assert infer_mode(monitor) == expected


def test_auto_mode_from_the_model_metrics():
    model = FakeModel()
    model.metrics = [FakeMetric("dice", "up"), FakeMetric("val_acc_gap", "down")]
    assert infer_mode("val_dice", model) == "max"
    assert infer_mode("acc_gap", model) == "max"  # falls back to the "acc" rule
    with pytest.raises(ValueError, match="monitor=val_foo.*mode='max'"):
        infer_mode("val_foo", model, "EarlyStopping")


def test_unknown_mode_warns_and_falls_back_to_auto():
    with pytest.warns(UserWarning, match="EarlyStopping mode 'biggest' is unknown"):
        stopper = EarlyStopping(mode="biggest")
    assert stopper.mode == "auto"


@pytest.mark.parametrize(
    "mode, values, improves",
    [
        ("min", (0.85, 1.0), True),
        ("min", (0.95, 1.0), False),
        ("max", (1.15, 1.0), True),
        ("max", (1.05, 1.0), False),
    ],
)
def test_min_delta_must_be_exceeded(mode, values, improves):
    monitor = MonitorCallback(mode=mode, min_delta=-0.1)  # the sign is ignored
    monitor._set_monitor_op()
    assert monitor._is_improvement(*values) is improves
    assert monitor._is_improvement(values[0], None) is True


# -- LambdaCallback ------------------------------------------------------------


def test_lambda_callback_runs_its_functions():
    seen = []
    callback = LambdaCallback(
        on_train_begin=lambda logs: seen.append("begin"),
        on_epoch_end=lambda epoch, logs: seen.append(("epoch", epoch, logs["val_loss"])),
        on_train_batch_end=lambda batch, logs: seen.append(("batch", batch)),
        on_train_end=lambda logs: seen.append("end"),
        on_test_end=lambda logs: seen.append("test"),
    )
    run_fit(CallbackList([callback]), FakeModel(), val_losses([0.5, 0.25]), [{"loss": 1.0}])
    callback.on_test_end({})
    assert seen == ["begin", ("batch", 0), ("epoch", 0, 0.5), ("batch", 0), ("epoch", 1, 0.25), "end", "test"]


def test_lambda_callback_rejects_unknown_hooks():
    with pytest.raises(TypeError, match="on_epoch_ends"):
        LambdaCallback(on_epoch_ends=print)
