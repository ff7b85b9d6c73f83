"""Ctrl-C during ``fit``: finish the batch, let the callbacks save, then stop.

A ``KeyboardInterrupt`` can arrive between any two bytecodes. Inside a
training step that may be half-way through ``optimizer.apply``: some weights
updated, others not, and ``optimizer.iterations`` not yet counted. A
checkpoint written from there would hold a state that no run ever had.

So while ``fit`` runs, :class:`InterruptGuard` replaces Python's SIGINT
handler. A Ctrl-C that lands inside a step is only *recorded*: the step
completes, the batch-end callbacks run (a ``ModelCheckpoint`` due on that
batch saves), and then ``fit`` raises ``KeyboardInterrupt`` itself. A second
Ctrl-C stops at once: the way out of a step that seems to hang. Outside a
step (reading data, callbacks, validation) Ctrl-C raises at once as usual:
the model is consistent there.

Python only lets the main thread install signal handlers, and a debugger or
notebook may have installed its own. In those cases the guard stays out of
the way and records in :attr:`InterruptGuard.torn` whether the interrupt
arrived inside a step, so ``fit`` knows not to save a torn state.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

from ..progbar import print_msg


class InterruptGuard:
    """Context manager used by ``fit``: ``with InterruptGuard() as guard:``.

    Attributes:
        installed: the SIGINT handler is in place (main thread, default handler before).
        pending: a Ctrl-C arrived during a step and waits for its end.
        torn: a ``KeyboardInterrupt`` escaped from inside a step, so weights
            and optimizer may be half-updated.
        training_started: set by ``fit`` once the epochs begin (after
            ``on_train_begin`` restored any backup); before that there is
            nothing worth saving.
    """

    def __init__(self):
        self.installed = False
        self.pending = False
        self.torn = False
        self.training_started = False
        self._in_step = False
        self._previous = None

    def __enter__(self) -> InterruptGuard:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
            self.installed = True
        return self

    def __exit__(self, *exc_info) -> bool:
        if self.installed:
            signal.signal(signal.SIGINT, self._previous)
            self.installed = False
        return False

    def _on_sigint(self, signum, frame) -> None:
        if self._in_step and not self.pending:
            self.pending = True
            print_msg(
                "\nCtrl-C: finishing this batch, then stopping (press Ctrl-C again to stop at once).",
                stream=sys.stderr,
            )
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def step(self):
        """Wrap one training step: a Ctrl-C inside waits for its end."""
        self._in_step = True
        try:
            yield
        except KeyboardInterrupt:
            self.torn = True
            raise
        finally:
            self._in_step = False

    def raise_if_pending(self) -> None:
        """Raise the ``KeyboardInterrupt`` that a Ctrl-C during the last step deferred."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt
