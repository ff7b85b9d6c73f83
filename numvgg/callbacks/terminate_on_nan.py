"""``TerminateOnNaN``: stop as soon as the loss is NaN or infinite (Keras 3's)."""

from __future__ import annotations

import numpy as np

from ..progbar import print_msg
from .callback import Callback


class TerminateOnNaN(Callback):
    """After each training batch, stop if ``logs["loss"]`` is NaN or +-inf.

    Args:
        raise_error: ``False`` (default) prints ``Batch 3: Invalid loss,
            terminating training`` and sets ``model.stop_training``, so the
            epoch ends and every callback's ``on_train_end`` still runs.
            ``True`` raises ``RuntimeError`` at once instead.
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or np.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. "
                f"Loss value: {loss}. Terminating training immediately."
            )
        print_msg(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True
