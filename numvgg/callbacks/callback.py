"""The base class every callback derives from (Keras 3's ``keras.callbacks.Callback``).

A callback is an object whose ``on_*`` methods the training loop calls at fixed
points. ``fit`` calls, in this order::

    on_train_begin()
    for each epoch:     on_epoch_begin(epoch)
        for each batch: on_train_batch_begin(batch); <train step>; on_train_batch_end(batch, logs)
        validation:     on_test_begin(); on_test_batch_*(...); on_test_end(logs)
                        on_epoch_end(epoch, logs)          # logs include the val_* keys
    on_train_end(logs)

``evaluate`` calls ``on_test_begin``, ``on_test_batch_begin/end`` and
``on_test_end``; ``predict`` the ``on_predict_*`` ones. ``batch`` and ``epoch``
count from 0. ``logs`` is a ``dict`` of Python floats keyed by metric name
(``{"accuracy": 0.62, "loss": 0.63}``); inside an epoch they are running means
over the batches seen so far.

A callback stops training by setting ``self.model.stop_training = True``; the
loop checks the flag after every batch and every epoch.
"""

from __future__ import annotations

# Every hook a training loop may call; LambdaCallback accepts only these names.
HOOK_NAMES = (
    "on_batch_begin",
    "on_batch_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
    "on_train_begin",
    "on_train_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
)


class Callback:
    """Base class: every hook does nothing; subclasses override the ones they need.

    Attributes:
        model: the model being trained, given by ``set_model``.
        params: ``{"verbose": ..., "epochs": ..., "steps": ...}``, given by
            ``set_params``; ``steps`` is the number of batches per epoch, or
            ``None`` when it is not known in advance.
    """

    def __init__(self):
        self.params = None
        self.model = None

    def set_params(self, params: dict) -> None:
        """Keep the loop's parameters (``verbose``, ``epochs``, ``steps``)."""
        self.params = params

    def set_model(self, model) -> None:
        """Keep a reference to the model the loop is running."""
        self.model = model

    # -- fit --------------------------------------------------------------
    def on_train_begin(self, logs=None):
        """Called once when ``fit`` starts."""

    def on_train_end(self, logs=None):
        """Called once when ``fit`` ends, with the last epoch's logs."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of epoch ``epoch`` (0-based), in ``fit`` only."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of epoch ``epoch`` with its training metrics and,
        when there is validation data, the same metrics prefixed ``val_``."""

    def on_train_batch_begin(self, batch, logs=None):
        """Called before training batch ``batch`` (0-based within the epoch).
        By default it calls ``on_batch_begin``, Keras 2's name for this hook."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after training batch ``batch`` with the running metrics of the
        epoch so far. By default it calls ``on_batch_end`` (Keras 2's name)."""
        self.on_batch_end(batch, logs=logs)

    def on_batch_begin(self, batch, logs=None):
        """Keras 2's name for ``on_train_batch_begin``, still honoured."""

    def on_batch_end(self, batch, logs=None):
        """Keras 2's name for ``on_train_batch_end``, still honoured."""

    # -- evaluate (and validation inside fit) ---------------------------------
    def on_test_begin(self, logs=None):
        """Called when ``evaluate`` (or ``fit``'s validation pass) starts."""

    def on_test_end(self, logs=None):
        """Called when ``evaluate`` ends, with the final metrics."""

    def on_test_batch_begin(self, batch, logs=None):
        """Called before evaluation batch ``batch``."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after evaluation batch ``batch`` with the running metrics."""

    # -- predict ----------------------------------------------------------
    def on_predict_begin(self, logs=None):
        """Called when ``predict`` starts."""

    def on_predict_end(self, logs=None):
        """Called when ``predict`` ends."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before prediction batch ``batch``."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after prediction batch ``batch``; ``logs["outputs"]`` holds
        that batch's predictions."""
