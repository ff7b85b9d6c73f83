"""``CallbackList``: the one object a training loop talks to (Keras 3's ``CallbackList``).

The loop builds it the way Keras' trainer does::

    callbacks = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                             verbose=verbose, epochs=epochs, steps=steps_per_epoch,
                             model=model)

and calls ``callbacks.on_epoch_end(epoch, logs)`` etc. The list forwards every
call to each callback in order: the user's callbacks first, then ``History``,
then ``ProgbarLogger``. That order matters: a callback that adds a key to the
epoch logs (``ReduceLROnPlateau`` adds ``learning_rate``) does so before
``History`` records them and before the bar prints them, as in Keras.

Before forwarding, the logs are copied into a fresh ``dict`` with sorted keys and
Python-float values (see :func:`pythonify_logs`). Sorting is why the bar prints
metrics alphabetically (``acc``, ``loss``), with the ``val_`` ones, which first
appear at the end of the epoch, after them.

Keras can run batch-end hooks in a thread pool; numvgg calls everything in
order, on the caller's thread, so a breakpoint in a callback stops the loop
where you expect.
"""

from __future__ import annotations

import numbers

import numpy as np

from .callback import Callback
from .history import History
from .logs import NoSamples
from .progbar_logger import ProgbarLogger


def pythonify_logs(logs) -> dict:
    """A copy of ``logs`` with sorted keys, nested dicts flattened and scalars as
    Python ``float``.

    NumPy scalars and 0-d arrays become ``float``; anything else (the
    predictions in ``on_predict_batch_end``'s ``{"outputs": array}``, a string)
    is passed on unchanged. Keras calls ``float()`` on every value, which also
    turns a one-element array into a float; numvgg leaves arrays alone.
    """
    result = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(pythonify_logs(value))
        elif isinstance(value, NoSamples):
            result[key] = value  # keeps its "zero samples" mark (still a float NaN)
        elif isinstance(value, (numbers.Real, np.generic)) or (
            isinstance(value, np.ndarray) and value.ndim == 0
        ):
            try:
                result[key] = float(value)
            except (TypeError, ValueError):  # e.g. a NumPy datetime scalar
                result[key] = value
        else:
            result[key] = value
    return result


def _flatten(callbacks) -> list:
    """``None``, one callback, or (nested) lists/tuples of them -> a flat list."""
    if callbacks is None:
        return []
    if isinstance(callbacks, (list, tuple)):
        return [cb for item in callbacks for cb in _flatten(item)]
    return [callbacks]


class CallbackList(Callback):
    """Calls a list of callbacks as one.

    Args:
        callbacks: a ``Callback``, a list of them (nested lists are flattened),
            or ``None``.
        add_history: append a ``History`` unless the list already has one.
        add_progbar: append a ``ProgbarLogger`` unless the list already has one.
        model: the model, given to every callback with ``set_model``; the
            ``History`` is also stored as ``model.history``.
        **params: ``verbose``, ``epochs``, ``steps``, given to every callback
            with ``set_params`` (when there are any).

    Raises:
        TypeError: an entry of ``callbacks`` is not a ``numvgg.callbacks.Callback``.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = _flatten(callbacks)
        for index, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"CallbackList: callbacks[{index}] is {cb!r} of type "
                    f"{type(cb).__name__}, not a numvgg.callbacks.Callback. "
                    "Subclass numvgg.callbacks.Callback, or wrap functions in "
                    "numvgg.callbacks.LambdaCallback."
                )
        self._begin_end_depth = 0
        self._add_default_callbacks(add_history, add_progbar)
        self.set_model(model)
        self.set_params(params)

    def _add_default_callbacks(self, add_history: bool, add_progbar: bool) -> None:
        self._history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        self._progbar = next((cb for cb in self.callbacks if isinstance(cb, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)

    def set_params(self, params: dict) -> None:
        """Give ``params`` to every callback (skipped when ``params`` is empty)."""
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model) -> None:
        """Give ``model`` to every callback, and make ``model.history`` the History."""
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    # Begin/end hooks must pair up (fit's validation nests a test block inside
    # the train block); an unmatched end is a bug in the loop, so say so.
    def _on_begin(self) -> None:
        self._begin_end_depth += 1

    def _on_end(self, hook: str) -> None:
        self._begin_end_depth -= 1
        if self._begin_end_depth < 0:
            self._begin_end_depth = 0
            raise ValueError(
                f"CallbackList.{hook} was called without a matching {hook.replace('_end', '_begin')}."
            )

    # -- fit --------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._on_begin()
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_train_end(logs)
        self._on_end("on_train_end")

    def on_epoch_begin(self, epoch, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_train_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_train_batch_end(batch, logs=logs)

    def on_batch_begin(self, batch, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_batch_begin(batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_batch_end(batch, logs=logs)

    # -- evaluate ---------------------------------------------------------
    def on_test_begin(self, logs=None):
        self._on_begin()
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_test_begin(logs)

    def on_test_end(self, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_test_end(logs)
        self._on_end("on_test_end")

    def on_test_batch_begin(self, batch, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_test_batch_begin(batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_test_batch_end(batch, logs=logs)

    # -- predict ----------------------------------------------------------
    def on_predict_begin(self, logs=None):
        self._on_begin()
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_predict_begin(logs)

    def on_predict_end(self, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_predict_end(logs)
        self._on_end("on_predict_end")

    def on_predict_batch_begin(self, batch, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_predict_batch_begin(batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_predict_batch_end(batch, logs=logs)
