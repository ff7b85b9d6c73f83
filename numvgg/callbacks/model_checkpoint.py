"""``ModelCheckpoint``: save the model while it trains (Keras 3's rules).

What is written:

* ``save_weights_only=True``: ``model.save_weights(path)``. numvgg's
  ``save_weights`` writes to a temporary file and renames it, so a crash in
  the middle of a save never leaves a half-written checkpoint behind.
* ``save_weights_only=False`` and a name ending in ``.keras`` (Keras 3's
  rule): the whole model in Keras' ``.keras`` format, ``model.save(path)``
  (atomic too); ``keras.models.load_model`` and ``numvgg.models.load_model``
  read it. Like Keras' file, it holds the compile config but not the
  optimizer's slots (see :mod:`numvgg.saving.keras_file`).
* ``save_weights_only=False`` and any other name (numvgg's addition; Keras 3
  refuses such names): the full training state (weights, optimizer slots,
  epoch, random generators) through ``model.save_training_state(path)``;
  ``epoch = model.load_training_state(path)`` then
  ``fit(..., initial_epoch=epoch)`` resumes exactly. Name it ``*.state.h5``.
  A model without that method (a stand-in in tests) gets its weights saved
  and a warning, once.

Unlike Keras, the other names are not refused: the model's saving method
picks the format from the name.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..progbar import print_msg
from .monitor import MonitorCallback, skip_if_no_samples


class ModelCheckpoint(MonitorCallback):
    """Save the model (or its weights) every epoch, every ``save_freq`` batches,
    or only when ``monitor`` improves.

    Args:
        filepath: where to save; may hold ``str.format`` fields filled from
            ``epoch`` (1-based), ``batch`` (1-based, with an integer
            ``save_freq``) and the logs: ``"ckpt/{epoch:02d}-{val_loss:.2f}.weights.h5"``.
            Missing folders are created.
        monitor: the log key that decides what "best" is.
        verbose: 1 prints a line for each save (or each skipped save).
        save_best_only: save only when ``monitor`` improves on the best so far.
        save_weights_only: save the weights only (see the module docstring).
        mode: ``"auto"``, ``"min"`` or ``"max"`` (see :mod:`.monitor`).
        save_freq: ``"epoch"``, or save every this many training batches.
        initial_value_threshold: the value the first save must beat when
            ``save_best_only=True``.

    Raises:
        ValueError: ``save_freq`` is neither ``"epoch"`` nor an integer.
        KeyError: ``filepath`` names a field the logs do not have (at save time).
        IsADirectoryError: ``filepath`` is an existing folder (at save time).
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        super().__init__(monitor, mode, initial_value_threshold)
        if save_freq != "epoch" and (
            not isinstance(save_freq, (int, np.integer)) or isinstance(save_freq, bool) or save_freq < 1
        ):
            raise ValueError(
                f"Unrecognized save_freq: {save_freq!r}. Expected save_freq are "
                "'epoch' or a positive number of batches."
            )
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        self._warned_weights_only = False

    # -- hooks --------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    # -- decisions ----------------------------------------------------------
    def _should_save_on_batch(self, batch) -> bool:
        """Count batches across epochs; True every ``save_freq`` of them."""
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            added = batch + 1  # a new epoch started at batch 0
        else:
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch, logs, filepath) -> bool:
        logs = logs or {}
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Can save best model only with {self.monitor} available. "
                f"Available metrics are: {','.join(logs.keys())}",
                stacklevel=3,
            )
            return True
        if skip_if_no_samples(current, self.monitor, "ModelCheckpoint"):
            return False
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn(
                "Can save best model only when `monitor` is a scalar value. "
                f"Received: {current}. Falling back to `save_best_only=False`.",
                stacklevel=3,
            )
            return True
        if self.monitor_op is None:  # a batch-level save before any epoch ended
            self._set_monitor_op()
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print_msg(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to "
                    f"{current:.5f}, saving model to {filepath}"
                )
            self.best = current
            return True
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    # -- saving -------------------------------------------------------------
    def _get_file_path(self, epoch, batch, logs) -> str:
        """``filepath`` with its fields filled; ``epoch`` and ``batch`` 1-based."""
        logs = logs or {}
        fields = dict(logs, epoch=epoch + 1)
        if batch is not None and "batch" not in logs:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". '
                f"Reason: {e}. Available fields are: {', '.join(fields)}"
            ) from e

    def _save_model(self, epoch, batch, logs) -> None:
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IsADirectoryError(
                "Please specify a non-directory filepath for ModelCheckpoint. "
                f"Filepath used is an existing directory: {filepath}"
            )
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        elif filepath.endswith(".keras") and hasattr(self.model, "save"):
            self.model.save(filepath)
        elif hasattr(self.model, "save_training_state"):
            self.model.save_training_state(filepath)
        else:
            if not self._warned_weights_only:
                warnings.warn(
                    "ModelCheckpoint(save_weights_only=False): this model has no "
                    "save_training_state(), so only its weights are saved "
                    f"(model.save_weights) to {filepath}.",
                    stacklevel=3,
                )
                self._warned_weights_only = True
            self.model.save_weights(filepath)
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")
