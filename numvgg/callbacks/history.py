"""``History``: the object ``fit`` returns (Keras 3's ``keras.callbacks.History``)."""

from __future__ import annotations

from .callback import Callback


class History(Callback):
    """Records every epoch's logs.

    Attributes:
        history: ``{"loss": [epoch 0, epoch 1, ...], "val_loss": [...], ...}``.
            Not cleared by a new ``fit``: as in Keras, a History that is
            passed to several ``fit`` calls keeps growing (``fit`` normally
            makes a new one each time).
        epoch: the epoch indices recorded during the last ``fit``.
        params: ``{"verbose", "epochs", "steps"}`` of the last ``fit``.
        model: the model; ``model.history`` points back to this object.
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self
