"""Keras 3's progress bar, printed the way ``model.fit`` prints it.

On a terminal, one line is redrawn in place (``\\r``) while an epoch runs, and
left behind when it ends::

    Epoch 1/5
    62/62 ━━━━━━━━━━━━━━━━━━━━ 407s 7s/step - acc: 0.6190 - loss: 0.6301 - val_acc: 0.6552 - val_loss: 0.5986

Anatomy of that line (Keras ``utils/progbar.py``):

* ``62/62``: steps done / steps per epoch, the first number right-aligned to
  the width of the second (``%{digits}d``); ``   1234/Unknown`` when the number
  of steps is not known yet;
* the bar: ``width=20`` heavy-line characters ``━``, the first
  ``int(20 * done / total)`` green, the rest grey (Keras 3 has no ``>`` head);
* while running, the ETA (``27s``, ``3:27``, ``1:03:27``); once finished, the
  elapsed time rounded to whole seconds (``407s``);
* the time per step in ``s``, ``ms`` or ``us`` (a value >= 1 s or exactly 0
  prints in seconds). The first step is left out of the estimate, because it
  usually includes one-off costs (Keras does the same);
* the metrics, in the order they were first seen, each ``.4f``, or ``.4e`` when
  ``|value| <= 1e-3`` so that a small learning rate does not print as
  ``0.0000``.

``verbose=2`` prints one plain line when an epoch ends
(``62/62 - 407s - 7s/step - acc: ...``), ``verbose=0`` nothing.

One deliberate difference from Keras: Keras decides that the screen can be
redrawn with ``"posix" in sys.modules``, which is true on every Linux and
macOS, so a log file or a CI log gets every ``\\b``/``\\r`` redraw and the ANSI
colour codes. numvgg redraws only on a terminal (``stream.isatty()``), in
Jupyter (``ipykernel``) or under PyCharm, exactly the other cases Keras lists.
Anywhere else ``verbose=1`` writes just the finished line of each epoch, in
plain text. The characters are the same as Keras' final line once its colour
codes are removed.
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

# ANSI styles Keras uses: bold for counts and times, green/grey for the bar.
_BOLD, _GREEN, _GREY = "1", "32", "37"
BAR_CHAR = "━"
# What the bar falls back to on a stream that cannot encode "━" (Keras 2's bar).
ASCII_BAR_CHAR = "="


def print_msg(message: str, line_break: bool = True, stream=None) -> None:
    """Write ``message`` to ``stream`` (default: the current ``sys.stdout``) and flush.

    Callbacks print through this, as Keras' callbacks print through
    ``io_utils.print_msg``. ``sys.stdout`` is looked up on each call, not at
    import, so ``contextlib.redirect_stdout`` and pytest's ``capsys`` see the
    output. On a stream whose encoding has no ``━`` (a Windows console in
    cp1252, say) the bar is drawn with ``=`` instead of raising.
    """
    stream = sys.stdout if stream is None else stream
    message = f"{message}\n" if line_break else str(message)
    try:
        stream.write(message)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        message = message.replace(BAR_CHAR, ASCII_BAR_CHAR)
        stream.write(message.encode(encoding, errors="ignore").decode(encoding))
    stream.flush()


def can_redraw(stream) -> bool:
    """True when ``stream`` shows ``\\r`` as "back to the start of the line":
    a terminal, a Jupyter kernel or PyCharm's run window (see the module
    docstring for how this differs from Keras)."""
    isatty = getattr(stream, "isatty", None)
    return bool(
        (isatty is not None and isatty()) or "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ
    )


def format_time_per_unit(seconds: float, unit_name: str = "step") -> str:
    """``7s/step``, ``250ms/step`` or ``13us/step`` (Keras ``Progbar._format_time``).

    Whole numbers only: ``1.6 s`` prints as ``2s``, ``0.9996 s`` as ``1000ms``.
    """
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


def format_eta(seconds: float) -> str:
    """Time left: ``h:mm:ss`` above an hour, ``m:ss`` above a minute, else ``Ns``.

    Each field is truncated, not rounded (``59.9`` prints ``59s``), as in Keras.
    """
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def format_metric(value, verbose: int = 1) -> str:
    """A metric as Keras prints it: ``0.6190``, or ``1.2300e-05`` when it is small.

    ``verbose=1`` switches to scientific notation when ``|value| <= 1e-3``.
    ``verbose=2`` tests ``value <= 1e-3`` without the absolute value, so a
    negative metric prints as ``-5.0000e-01`` there: a Keras quirk, kept so
    that logs can be compared with Keras' character for character.
    """
    small = abs(value) <= 1e-3 if verbose == 1 else value <= 1e-3
    return f"{value:.4e}" if small else f"{value:.4f}"


class Progbar:
    """A progress bar for ``target`` steps (Keras' ``keras.utils.Progbar``).

    Args:
        target: number of steps expected, or ``None`` if unknown.
        width: number of bar characters (Keras: 20).
        verbose: 0 silent, 1 bar, 2 one line when finished.
        interval: minimum number of seconds between two redraws of the bar.
        stateful_metrics: names of metrics shown as given. Every other metric
            is *stateless*: the bar shows its mean over the steps seen so far,
            each value weighted by the number of steps it covers.
        stateless_metrics: the other way round: names of metrics to average;
            every other metric is shown as given. Give at most one of the two.
            ``ProgbarLogger`` passes ``stateless_metrics=set()``, because
            numvgg's (and Keras 3's) logs already hold running means.
        unit_name: what one step is called in ``7s/step``.
        stream: where to write; ``None`` means the current ``sys.stdout``.
        dynamic_display: redraw one line in place with ``\\r`` (and colours).
            ``None`` decides from the stream with :func:`can_redraw`.

    Use ``update(current, [(name, value), ...])`` after each step;
    ``current`` counts steps from 1.
    """

    def __init__(
        self,
        target,
        width=20,
        verbose=1,
        interval=0.05,
        stateful_metrics=None,
        stateless_metrics=None,
        unit_name="step",
        stream=None,
        dynamic_display=None,
    ):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Progbar: give `stateful_metrics` (names shown as given) or "
                "`stateless_metrics` (names averaged), not both."
            )
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        if stateless_metrics is not None:
            self.stateful_metrics = None
            self.stateless_metrics = set(stateless_metrics)
        else:
            self.stateful_metrics = set(stateful_metrics or ())
            self.stateless_metrics = None
        self._stream = stream
        self.dynamic_display = can_redraw(self.stream) if dynamic_display is None else bool(dynamic_display)

        # name -> [sum of value * steps, steps]; a shown-as-given metric keeps [value, 1].
        self._values: dict[str, list] = {}
        self._values_order: list[str] = []
        self._seen_so_far = 0
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_total_width = 0  # visible characters of the last line drawn

    @property
    def stream(self):
        """The stream written to (the current ``sys.stdout`` unless one was given)."""
        return sys.stdout if self._stream is None else self._stream

    # -- public API (Keras' names) ----------------------------------------
    def update(self, current, values=None, finalize=None) -> None:
        """Record step ``current`` (1-based) with ``values``, a list of
        ``(name, value_for_this_step)``, and redraw if it is time to.

        ``finalize`` (default: ``current >= target``) marks the last update:
        the line then shows the elapsed time instead of the ETA, and ends
        with a newline.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._record(values or [], current, finalize)
        self._seen_so_far = current

        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return  # too soon to redraw; the values are kept
            self._draw_bar(current, now, time_per_unit, finalize)
        elif self.verbose == 2 and finalize:
            self._draw_summary(current, now, time_per_unit)
        self._last_update = now

    def add(self, n, values=None) -> None:
        """``update`` ``n`` steps further than the last one."""
        self.update(self._seen_so_far + n, values)

    # -- bookkeeping ----------------------------------------------------------
    def _is_averaged(self, name: str) -> bool:
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def _record(self, values, current, finalize) -> None:
        for name, value in values:
            if name not in self._values_order:
                self._values_order.append(name)
            if self._is_averaged(name) and not finalize:
                # Weight by the steps this value covers (several when steps
                # were skipped); at least 1 so a repeated step still counts.
                steps = max(current - self._seen_so_far, 1)
                total = self._values.setdefault(name, [0, 0])
                total[0] += value * steps
                total[1] += steps
            else:
                # Shown as given. Keras also takes a stateless metric's value
                # as given when finalizing: the caller then passes the epoch's
                # final value (with unknown steps, the last batch and the end
                # of the epoch both report the same step).
                self._values[name] = [value, 1]

    def _mean(self, name: str):
        total, count = self._values[name]
        if not isinstance(total, float):
            total = np.mean(total)  # a Python int, a NumPy scalar or an array
        return total / max(1, count)

    def _estimate_step_duration(self, current, now) -> float:
        """Seconds per step, leaving out the first step once there are more."""
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            time_per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            # Step 1, or a caller that never reported step 1 on its own.
            time_per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return time_per_unit

    # -- drawing ----------------------------------------------------------
    def _style(self, text: str, code: str) -> str:
        """``text`` in an ANSI style, only when redrawing on a screen."""
        return f"\x1b[{code}m{text}\x1b[0m" if self.dynamic_display else text

    def _metrics_text(self, verbose: int) -> str:
        return "".join(
            f" - {name}: {format_metric(self._mean(name), verbose)}" for name in self._values_order
        )

    def _draw_bar(self, current, now, time_per_unit, finalize) -> None:
        """verbose=1: the ``62/62 ━━━━ 407s 7s/step - acc: ...`` line."""
        known_target = self.target is not None and self.target > 0
        if known_target:
            digits = int(math.log10(self.target)) + 1
            done = int(self.width * float(current) / self.target)
            count = f"%{digits}d/%d" % (current, self.target)
            # Keras writes the grey part even when it is empty.
            bar_plain = f"{count} {BAR_CHAR * self.width}"
            bar = (
                self._style(count, _BOLD)
                + " "
                + (self._style(BAR_CHAR * done, _GREEN) if done > 0 else "")
                + self._style(BAR_CHAR * (self.width - done), _GREY)
            )
        else:
            bar_plain = bar = "%7d/Unknown" % current

        if known_target and not finalize:
            clock = format_eta(time_per_unit * (self.target - current))
        else:
            clock = f"{now - self._start:.0f}s"
        info_tail = " " + format_time_per_unit(time_per_unit, self.unit_name) + self._metrics_text(verbose=1)
        line = bar + " " + self._style(clock, _BOLD) + info_tail
        line_plain = bar_plain + " " + clock + info_tail

        if not self.dynamic_display:
            # A file or a pipe cannot take the line back: write only the final one.
            if finalize:
                print_msg(line_plain, stream=self.stream)
            return

        # Back over the previous line, then blank what the new line does not cover.
        total_width = len(line_plain)
        message = "\b" * self._prev_total_width + "\r" + line
        if self._prev_total_width > total_width:
            message += " " * (self._prev_total_width - total_width)
        if finalize:
            message += "\n"
        print_msg(message, line_break=False, stream=self.stream)
        self._prev_total_width = total_width

    def _draw_summary(self, current, now, time_per_unit) -> None:
        """verbose=2: ``62/62 - 407s - 7s/step - acc: ...``, once, when finished."""
        if self.target is None or self.target <= 0:
            return  # Keras prints nothing for an unknown target
        digits = int(math.log10(self.target)) + 1
        count = f"%{digits}d/%d" % (current, self.target)
        line = (
            f"{count} - {now - self._start:.0f}s"
            f" - {format_time_per_unit(time_per_unit, self.unit_name)}" + self._metrics_text(verbose=2)
        )
        print_msg(line, stream=self.stream)
