"""numvgg's progress output against Keras 3's, character for character.

Both progress bars read the time with ``time.time()``; a fake clock replaces it
so that the elapsed times, ETAs and ms/step figures are the same on both sides.
Keras writes to ``sys.stdout``; it is redirected into a buffer that claims to
be a terminal, so both sides redraw in place (Keras also does so whenever
``"posix" in sys.modules``).
"""

import contextlib
import io
import re
import sys
import time

import pytest

from numvgg.callbacks import CallbackList, ProgbarLogger
from numvgg.progbar import Progbar, can_redraw, format_eta, format_metric, format_time_per_unit, print_msg

ANSI = re.compile(r"\x1b\[\d+m")


# -- fixtures and helpers -----------------------------------------------------


class FakeClock:
    """Stands in for ``time.time``: returns ``now`` until the test moves it."""

    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(keras, monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(time, "time", fake)
    return fake


class TTYBuffer(io.StringIO):
    """A text buffer that says it is a terminal."""

    def isatty(self):
        return True


def run_on_tty(fn):
    """Call ``fn()`` with ``sys.stdout`` redirected to a terminal-like buffer;
    return what was written."""
    buffer = TTYBuffer()
    with contextlib.redirect_stdout(buffer):
        fn()
    return buffer.getvalue()


def drive_bar(bar, clock, script):
    """Play ``script`` (``(seconds, current, values, finalize)`` rows) into ``bar``."""
    for seconds, current, values, finalize in script:
        clock.advance(seconds)
        bar.update(current, values, finalize=finalize)


def both_bars(keras, clock, script, **kwargs):
    """The text Keras' Progbar and numvgg's write for the same script and clock."""
    start = clock.now
    theirs = run_on_tty(lambda: drive_bar(keras.utils.Progbar(**kwargs), clock, script))
    clock.now = start
    ours = run_on_tty(lambda: drive_bar(Progbar(**kwargs), clock, script))
    return ours, theirs


def epoch_script(steps, seconds_per_step, first_step=None, final_extra=None):
    """Running-mean metrics for ``steps`` batches, then a finalize with val_ metrics."""
    rows = []
    for step in range(1, steps + 1):
        seconds = first_step if (step == 1 and first_step is not None) else seconds_per_step
        values = [("acc", 0.5 + 0.01 * step), ("loss", 0.9 / step)]
        rows.append((seconds, step, values, False))
    final = [("acc", 0.6190), ("loss", 0.6301), ("val_acc", 0.6552), ("val_loss", 0.5986)]
    rows.append((0.0, steps, final + (final_extra or []), True))
    return rows


# -- the bar, byte for byte ---------------------------------------------------


@pytest.mark.parametrize(
    "seconds_per_step, first_step",
    [
        (6.5, 10.0),  # s/step, ETAs above a minute
        (0.25, 1.0),  # ms/step
        (2e-5, 1e-4),  # us/step
        (0.0, 0.0),  # 0s/step
        (5.0, 5.0),  # ETAs above an hour (target 1000)
    ],
)
def test_bar_matches_keras_byte_for_byte(keras, clock, seconds_per_step, first_step):
    steps = 1000 if seconds_per_step == 5.0 else 62
    script = epoch_script(steps, seconds_per_step, first_step)
    ours, theirs = both_bars(keras, clock, script, target=steps, stateless_metrics=set())
    assert ours == theirs
    assert "\r" in ours and "\x1b[32m" in ours


def test_final_line_of_the_brief_example(keras, clock):
    # A 4.4 s first step, then 61 steps of 6.6 s: 407 s in all, "7s/step".
    script = epoch_script(62, 6.6, first_step=4.4)
    ours, theirs = both_bars(keras, clock, script, target=62, stateless_metrics=set())
    assert ours == theirs
    final = ANSI.sub("", ours.split("\r")[-1])
    assert final == (
        "62/62 ━━━━━━━━━━━━━━━━━━━━ 407s 7s/step - acc: 0.6190 - loss: 0.6301"
        " - val_acc: 0.6552 - val_loss: 0.5986\n"
    )


def test_averaged_metrics_and_skipped_steps_match_keras(keras, clock):
    # Default Progbar: metrics are averaged, weighted by the steps each value
    # covers; "lr" is stateful and shown as given. Steps jump by 3 at one point.
    script = [
        (1.0, 1, [("loss", 2.0), ("lr", 0.1)], False),
        (1.0, 2, [("loss", 1.0), ("lr", 0.05)], False),
        (3.0, 5, [("loss", 0.5), ("lr", 0.01)], False),
        (1.0, 6, [("loss", 0.25), ("lr", 1e-5)], False),
        (1.0, 8, [("loss", 0.125), ("lr", 1e-5), ("extra", -2.5)], None),
    ]
    ours, theirs = both_bars(keras, clock, script, target=8, stateful_metrics=["lr"])
    assert ours == theirs
    assert "lr: 1.0000e-05" in ours


def test_redraw_interval_matches_keras(keras, clock):
    # Updates 10 ms apart with interval=0.05: only some are drawn.
    script = [(0.01, step, [("loss", 1.0 / step)], False) for step in range(1, 30)]
    script.append((0.01, 30, [("loss", 0.03)], True))
    ours, theirs = both_bars(keras, clock, script, target=30)
    assert ours == theirs
    assert 1 < ours.count("\r") < 30


def test_shorter_line_is_padded_like_keras(keras, clock):
    # The ETA shrinks from "2:13:20" to "1s" and the loss from 11 to 6 digits:
    # the second line is shorter and must blank the first one's tail.
    script = [
        (4000.0, 1, [("loss", 123456.0)], False),
        (1.0, 2, [("loss", 1.0)], False),
        (1.0, 3, [("loss", 1.0)], True),
    ]
    ours, theirs = both_bars(keras, clock, script, target=3, stateful_metrics=["loss"])
    assert ours == theirs
    assert "loss: 1.0000             \b" in ours


def test_unknown_target_matches_keras(keras, clock):
    script = [(0.5, step, [("loss", 1.0 / step)], False) for step in range(1, 6)]
    script.append((0.5, 5, [("loss", 0.2)], True))
    ours, theirs = both_bars(keras, clock, script, target=None)
    assert ours == theirs
    assert "      5/Unknown" in ours


@pytest.mark.parametrize("target", [62, None])
def test_verbose_2_matches_keras(keras, clock, target):
    script = epoch_script(62, 6.6, 4.4, final_extra=[("neg", -0.5), ("tiny", 3e-6)])
    ours, theirs = both_bars(keras, clock, script, target=target, verbose=2, stateless_metrics=set())
    assert ours == theirs
    if target is None:
        assert ours == ""  # Keras prints nothing without a target
    else:
        # Keras' verbose=2 formats negatives in scientific notation; so do we.
        assert ours == (
            "62/62 - 407s - 7s/step - acc: 0.6190 - loss: 0.6301 - val_acc: 0.6552"
            " - val_loss: 0.5986 - neg: -5.0000e-01 - tiny: 3.0000e-06\n"
        )


def test_verbose_0_prints_nothing(clock):
    out = run_on_tty(lambda: drive_bar(Progbar(62, verbose=0), clock, epoch_script(62, 1.0)))
    assert out == ""


# -- output that is not a terminal --------------------------------------------


def test_non_tty_gets_only_the_final_line_in_plain_text(keras, clock, monkeypatch):
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    script = epoch_script(62, 6.5, 10.0)
    start = clock.now
    theirs = run_on_tty(lambda: drive_bar(keras.utils.Progbar(62, stateless_metrics=set()), clock, script))
    clock.now = start
    log = io.StringIO()  # a file: isatty() is False
    bar = Progbar(62, stateless_metrics=set(), stream=log)
    assert bar.dynamic_display is False
    drive_bar(bar, clock, script)
    ours = log.getvalue()
    assert not set(ours) & {"\r", "\b", "\x1b"}
    assert ours.count("\n") == 1
    # The same characters as the line Keras leaves on screen, colours removed.
    assert ours == ANSI.sub("", theirs.split("\r")[-1])


def test_can_redraw(monkeypatch):
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert can_redraw(TTYBuffer()) is True
    assert can_redraw(io.StringIO()) is False
    monkeypatch.setenv("PYCHARM_HOSTED", "1")
    assert can_redraw(io.StringIO()) is True


def test_default_stream_is_the_current_stdout(clock):
    # Looked up when writing, so redirecting stdout after creation still works.
    bar = Progbar(2, dynamic_display=False)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        bar.update(1, [("loss", 0.5)])
        bar.update(2, [("loss", 0.25)])
    # The final update shows the value it is given (Keras' rule), not the mean.
    assert buffer.getvalue() == "2/2 ━━━━━━━━━━━━━━━━━━━━ 0s 0s/step - loss: 0.2500\n"


def test_print_msg_falls_back_to_ascii_bar():
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    print_msg("3/3 ━━━ 1s", stream=stream)
    assert raw.getvalue() == b"3/3 === 1s\n"


# -- formatting helpers, against Keras' own -----------------------------------


@pytest.mark.parametrize("seconds", [0, 1e-7, 4.4e-4, 9.99e-4, 1e-3, 0.25, 0.9996, 1, 7.4, 407])
def test_time_per_step_format_matches_keras(keras, seconds):
    reference = keras.utils.Progbar(1, verbose=0)._format_time(seconds, "step")
    assert " " + format_time_per_unit(seconds, "step") == reference


@pytest.mark.parametrize(
    "seconds, expected", [(59.9, "59s"), (60, "60s"), (61, "1:01"), (3600, "60:00"), (3725.5, "1:02:05")]
)
def test_eta_format(seconds, expected):
    assert format_eta(seconds) == expected


@pytest.mark.parametrize(
    "value, verbose, expected",
    [
        (0.61904, 1, "0.6190"),
        (1e-3, 1, "1.0000e-03"),
        (0.0011, 1, "0.0011"),
        (0.0, 1, "0.0000e+00"),
        (-0.5, 1, "-0.5000"),
        (-0.5, 2, "-5.0000e-01"),
        (12345.678, 1, "12345.6780"),
    ],
)
def test_metric_format(value, verbose, expected):
    assert format_metric(value, verbose) == expected


def test_stateful_and_stateless_together_is_an_error():
    with pytest.raises(ValueError, match="not both"):
        Progbar(3, stateful_metrics=["a"], stateless_metrics=["b"])


# -- ProgbarLogger: fit / evaluate / predict ----------------------------------


def _logs(epoch, step):
    return {"acc": 0.5 + 0.01 * step + 0.1 * epoch, "loss": 1.0 / (step + 1 + epoch)}


def play_fit(callbacks, clock, epochs, steps_seen, validation=True):
    """Call the hooks in the order of Keras 3's ``fit`` with sorted float logs."""
    callbacks.on_train_begin()
    logs = {}
    for epoch in range(epochs):
        callbacks.on_epoch_begin(epoch)
        for step in range(steps_seen):
            clock.advance(0.25)
            callbacks.on_train_batch_begin(step)
            logs = _logs(epoch, step)
            callbacks.on_train_batch_end(step, logs)
        epoch_logs = dict(logs)
        if validation:
            callbacks.on_test_begin()
            for step in range(2):
                clock.advance(0.01)
                callbacks.on_test_batch_begin(step)
                callbacks.on_test_batch_end(step, {"acc": 0.6, "loss": 0.7})
            callbacks.on_test_end({"acc": 0.6, "loss": 0.7})
            epoch_logs.update(val_acc=0.6, val_loss=0.7)
        callbacks.on_epoch_end(epoch, epoch_logs)
    callbacks.on_train_end(logs)


def play_evaluate(callbacks, clock, steps):
    callbacks.on_test_begin()
    for step in range(steps):
        clock.advance(0.003)
        callbacks.on_test_batch_begin(step)
        callbacks.on_test_batch_end(step, {"acc": 0.75, "loss": 0.5 + step})
    callbacks.on_test_end({"acc": 0.75, "loss": 0.5 + steps - 1})


def play_predict(callbacks, clock, steps):
    callbacks.on_predict_begin()
    for step in range(steps):
        clock.advance(0.002)
        callbacks.on_predict_batch_begin(step)
        callbacks.on_predict_batch_end(step, {"outputs": [[0.1], [0.9]]})
    callbacks.on_predict_end()


def both_loggers(keras, clock, play, params):
    """Keras' ProgbarLogger, then numvgg's (inside a CallbackList), fed the same play."""
    start = clock.now

    def theirs():
        logger = keras.callbacks.ProgbarLogger()
        logger.set_params(params)
        play(logger, clock)

    def ours():
        play(CallbackList(None, add_progbar=True, **params), clock)

    keras_text = run_on_tty(theirs)
    clock.now = start
    return run_on_tty(ours), keras_text


@pytest.mark.parametrize("verbose", [1, 2, "auto"])
@pytest.mark.parametrize("epochs", [1, 3])
def test_fit_output_matches_keras(keras, clock, verbose, epochs):
    params = {"verbose": verbose, "epochs": epochs, "steps": 5}
    ours, theirs = both_loggers(keras, clock, lambda cb, c: play_fit(cb, c, epochs, 5), params)
    assert ours == theirs
    assert ours.count("Epoch ") == (epochs if epochs > 1 else 0)
    assert "val_acc: 0.6000 - val_loss: 0.7000\n" in ours


def test_fit_with_unknown_steps_matches_keras(keras, clock):
    # Epoch 1 counts up "/Unknown"; epoch 2 then knows it has 4 steps.
    params = {"verbose": 1, "epochs": 2, "steps": None}
    ours, theirs = both_loggers(keras, clock, lambda cb, c: play_fit(cb, c, 2, 4), params)
    assert ours == theirs
    assert "/Unknown" in ours and "4/4" in ours


@pytest.mark.parametrize("verbose", [1, 2])
def test_evaluate_and_predict_output_match_keras(keras, clock, verbose):
    params = {"verbose": verbose, "epochs": 1, "steps": 3}
    ours, theirs = both_loggers(keras, clock, lambda cb, c: play_evaluate(cb, c, 3), params)
    assert ours == theirs and "loss: 2.5000" in ours
    ours, theirs = both_loggers(keras, clock, lambda cb, c: play_predict(cb, c, 3), params)
    assert ours == theirs and "3/3" in ours and "outputs" not in ours


def test_verbose_0_adds_no_progbar(clock):
    callbacks = CallbackList(None, add_progbar=False, verbose=0, epochs=2, steps=3)
    assert not any(isinstance(cb, ProgbarLogger) for cb in callbacks.callbacks)
    assert run_on_tty(lambda: play_fit(callbacks, clock, 2, 3)) == ""
    silent = ProgbarLogger()
    silent.set_params({"verbose": 0, "epochs": 2, "steps": 3})
    assert run_on_tty(lambda: play_fit(silent, clock, 2, 3)) == ""


def test_fit_to_a_log_file_is_one_clean_line_per_epoch(clock):
    log = io.StringIO()
    callbacks = CallbackList([ProgbarLogger(stream=log)], add_progbar=True, verbose=1, epochs=2, steps=4)
    assert sum(isinstance(cb, ProgbarLogger) for cb in callbacks.callbacks) == 1
    play_fit(callbacks, clock, 2, 4)
    lines = log.getvalue().split("\n")
    # 257ms: the silent validation pass (20 ms) falls inside the epoch's time, as in Keras.
    assert lines == [
        "Epoch 1/2",
        "4/4 ━━━━━━━━━━━━━━━━━━━━ 1s 257ms/step - acc: 0.5300 - loss: 0.2500 - val_acc: 0.6000"
        " - val_loss: 0.7000",
        "Epoch 2/2",
        "4/4 ━━━━━━━━━━━━━━━━━━━━ 1s 257ms/step - acc: 0.6300 - loss: 0.2000 - val_acc: 0.6000"
        " - val_loss: 0.7000",
        "",
    ]


def test_invalid_verbose_is_rejected():
    with pytest.raises(ValueError, match="verbose=3"):
        CallbackList(None, add_progbar=True, verbose=3, epochs=1, steps=1)
