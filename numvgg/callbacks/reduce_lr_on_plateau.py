"""``ReduceLROnPlateau``: divide the learning rate when a metric stalls (Keras 3's rules)."""

from __future__ import annotations

import warnings

import numpy as np

from ..progbar import print_msg
from .monitor import MonitorCallback, skip_if_no_samples


class ReduceLROnPlateau(MonitorCallback):
    """Multiply ``model.optimizer.learning_rate`` by ``factor`` after ``patience``
    epochs without improvement, never going below ``min_lr``.

    Args:
        monitor: the epoch-log key to watch.
        factor: ``new_lr = lr * factor``; must be below 1.
        patience: epochs without improvement before reducing.
        verbose: 1 prints ``Epoch 5: ReduceLROnPlateau reducing learning rate to 0.0001.``
        mode: ``"auto"``, ``"min"`` or ``"max"`` (see :mod:`.monitor`).
        min_delta: a change smaller than this is no improvement (default 1e-4).
        cooldown: epochs after a reduction during which stalling is not counted.
        min_lr: the lowest learning rate.

    It also writes the current rate into the epoch logs as ``learning_rate``, so
    ``History`` and the progress bar, which come later in the callback list,
    show it (Keras 3 does the same).

    Raises:
        ValueError: ``factor >= 1``.
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self) -> bool:
        """True during the ``cooldown`` epochs that follow a reduction."""
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def _optimizer(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "learning_rate"):
            raise AttributeError(
                "ReduceLROnPlateau needs `model.optimizer.learning_rate`; "
                f"the model has optimizer={optimizer!r}. Call "
                "model.compile(optimizer=...) before fit."
            )
        return optimizer

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        # Deliberately the same dict the later callbacks receive: they see the rate.
        logs = logs if logs is not None else {}
        optimizer = self._optimizer()
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                "Learning rate reduction is conditioned on metric "
                f"`{self.monitor}` which is not available. Available metrics "
                f"are: {','.join(logs.keys())}.",
                stacklevel=2,
            )
            return
        if skip_if_no_samples(current, self.monitor, "ReduceLROnPlateau"):
            return

        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce_lr(optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce_lr(self, optimizer, epoch) -> bool:
        """Lower the rate unless it is already at ``min_lr``; True if it changed."""
        old_lr = float(optimizer.learning_rate)
        # The rate is stored in float32 (as in Keras), so compare in float32:
        # a stored 1e-7 is not above a min_lr of 1e-7.
        if old_lr <= np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
        return True
