"""``EarlyStopping``: stop ``fit`` when a metric stops improving (Keras 3's rules)."""

from __future__ import annotations

import warnings

from ..progbar import print_msg
from .monitor import MonitorCallback, skip_if_no_samples


class EarlyStopping(MonitorCallback):
    """Stop training once ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: the epoch-log key to watch (``"val_loss"``).
        min_delta: a change smaller than this is no improvement.
        patience: epochs without improvement to wait before stopping
            (``0``: stop at the first epoch that does not improve).
        verbose: 1 prints ``Epoch 7: early stopping`` when training ends.
        mode: ``"auto"``, ``"min"`` or ``"max"`` (see :mod:`.monitor`).
        baseline: a value to beat. Epochs that improve on the best so far but
            not on ``baseline`` still count towards ``patience``, so training
            stops after ``patience`` epochs if the baseline is never beaten.
        restore_best_weights: when training ends, put back the weights of the
            best epoch (``model.set_weights``), even if that epoch did not beat
            ``baseline``.
        start_from_epoch: epochs to ignore at the start (a warm-up).

    How Keras counts, epoch by epoch: ``wait`` grows by one; an improvement
    sets ``best`` and resets ``wait`` to 0 (if it also beats ``baseline``); else,
    once ``wait >= patience`` (and not in epoch 0), ``model.stop_training`` is set.
    """

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        # As in Keras, ``baseline`` is not the starting ``best``: it only
        # decides whether an improvement resets ``wait``.
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        # Reset, so one instance can serve several fit() calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if skip_if_no_samples(current, self.monitor, "EarlyStopping"):
            return
        if self.restore_best_weights and self.best_weights is None:
            # Until something better comes, this epoch's weights are the best.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return

        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        """``logs[monitor]``, or ``None`` with a warning listing the keys there are."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs.keys())}",
                stacklevel=2,
            )
        return value
