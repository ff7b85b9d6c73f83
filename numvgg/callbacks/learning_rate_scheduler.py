"""``LearningRateScheduler``: set the learning rate at the start of every epoch (Keras 3's rules)."""

from __future__ import annotations

import numpy as np

from ..progbar import print_msg
from .callback import Callback


class LearningRateScheduler(Callback):
    """Call ``schedule(epoch, lr)`` at each epoch's start and set the optimizer's rate to the result.

    Args:
        schedule: ``fn(epoch, lr) -> new lr`` (``epoch`` counts from 0, ``lr``
            is the current rate as a float). A one-argument ``fn(epoch)`` also
            works, as in Keras: when the two-argument call raises ``TypeError``
            the schedule is called again with ``epoch`` alone.
        verbose: 1 prints ``Epoch 3: LearningRateScheduler setting learning rate to 0.0005.``

    The result must be a float (Python ``float``, ``np.float32`` or
    ``np.float64``): an ``int`` is refused, as Keras refuses it. At each
    epoch's end the rate is written into the logs as ``learning_rate``.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler needs a function schedule(epoch, lr); got {schedule!r}.")
        self.schedule = schedule
        self.verbose = verbose

    def _optimizer(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not hasattr(optimizer, "learning_rate"):
            raise ValueError(
                'Optimizer must have a "learning_rate" attribute. The model has '
                f"optimizer={optimizer!r}; call model.compile(optimizer=...) before fit."
            )
        return optimizer

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self._optimizer()
        try:
            learning_rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # Keras' fallback for the one-argument form
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(
                f"The output of the `schedule` function should be a float. Got: {learning_rate!r}"
            )
        optimizer.learning_rate = learning_rate
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {learning_rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self._optimizer().learning_rate)
