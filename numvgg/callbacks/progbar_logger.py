"""``ProgbarLogger``: prints ``fit``/``evaluate``/``predict`` progress (Keras 3's).

What it prints for each ``verbose``:

* ``0``: nothing (``CallbackList`` does not even add it);
* ``1`` or ``"auto"``: ``Epoch 1/5`` (only when ``epochs > 1``), then the bar of
  :class:`numvgg.progbar.Progbar`, redrawn after every batch on a terminal;
* ``2``: ``Epoch 1/5``, then one line per epoch: ``62/62 - 407s - 7s/step - ...``.

Inside ``fit`` the validation pass is silent: its ``val_*`` results show up at
the end of the training line instead. ``evaluate`` and ``predict`` on their own
get a bar of their own (``predict``'s without metrics).

When the number of steps is unknown (``steps=None``, a generator), the first
epoch counts up ``     12/Unknown``; once it ends, the count it reached is used
as the target of the following epochs.
"""

from __future__ import annotations

from ..progbar import Progbar, print_msg
from .callback import Callback

VERBOSE_CHOICES = ("auto", 0, 1, 2)


def resolve_verbose(verbose) -> int:
    """``"auto"`` -> 1 (Keras' meaning outside of distributed training);
    0, 1 and 2 unchanged; anything else is an error."""
    if verbose not in VERBOSE_CHOICES or isinstance(verbose, bool):
        raise ValueError(f"verbose must be one of 'auto', 0, 1 or 2; received verbose={verbose!r}.")
    return 1 if verbose == "auto" else verbose


class ProgbarLogger(Callback):
    """Prints metrics and a progress bar.

    Args:
        stream: where to write; ``None`` (default) means the current ``sys.stdout``.
            Pass your own ``ProgbarLogger(stream=f)`` in ``callbacks=`` to send
            the progress elsewhere: ``CallbackList`` then adds no second one.
        dynamic_display: see :class:`numvgg.progbar.Progbar`; ``None`` decides
            from the stream (redraw on a terminal, final lines elsewhere).
    """

    def __init__(self, stream=None, dynamic_display=None):
        super().__init__()
        self.stream = stream
        self.dynamic_display = dynamic_display
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        self.verbose = resolve_verbose(params.get("verbose", 1))
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    # -- hooks --------------------------------------------------------------
    def on_train_begin(self, logs=None):
        # From here on, test hooks are fit's validation pass: stay quiet.
        self._called_in_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        self._new_progbar()
        if self.verbose and self.epochs > 1:
            print_msg(f"Epoch {epoch + 1}/{self.epochs}", stream=self.stream)

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize(logs)

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._new_progbar()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize(logs)

    def on_predict_begin(self, logs=None):
        self._new_progbar()

    def on_predict_batch_end(self, batch, logs=None):
        self._update(batch, None)  # the predictions are not metrics

    def on_predict_end(self, logs=None):
        self._finalize(logs)

    # -- the bar ------------------------------------------------------------
    def _new_progbar(self) -> None:
        self.seen = 0
        # stateless_metrics=set(): the logs already hold running means, show them as given.
        self.progbar = Progbar(
            target=self.target,
            verbose=self.verbose,
            unit_name="step",
            stateless_metrics=set(),
            stream=self.stream,
            dynamic_display=self.dynamic_display,
        )

    def _update(self, batch, logs) -> None:
        if self.progbar is None:
            self._new_progbar()
        self.seen = batch + 1  # batches count from 0, the bar from 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize(self, logs) -> None:
        if self.progbar is None:
            self._new_progbar()
        if self.target is None:
            # Steps were unknown: the count reached becomes the target, now and
            # for the epochs that follow.
            self.target = self.seen
            self.progbar.target = self.target
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)
