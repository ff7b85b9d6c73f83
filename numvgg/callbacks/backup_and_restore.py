"""``BackupAndRestore``: survive an interrupted ``fit`` (Keras 3's callback, one file per backup).

Run the same script again after a crash, a ``kill`` or Ctrl-C, and ``fit``
continues where the backup left off::

    backup = BackupAndRestore("backup/")          # a folder for this run only
    model.fit(x, y, epochs=20, callbacks=[backup])

What it does, hook by hook:

* ``on_train_begin``: if ``backup_dir/latest.state.h5`` exists, restore the
  model's training state from it (``model.load_training_state``: weights,
  optimizer slots, random generators) and make ``fit`` start at the saved
  epoch. When that file cannot be read and ``latest.state.h5.bkp`` (the one
  before it, see ``double_checkpoint``) exists, that one is used, with a
  warning. The same holds when something else took the file's place (a
  folder named ``latest.state.h5``): it is a damaged backup, and the next
  save moves it aside to ``latest.state.h5.damaged``.
* ``on_epoch_end`` (or every ``save_freq`` batches): save the state
  (``model.save_training_state``), atomically, over the previous backup.
* ``on_train_interrupted`` (numvgg's hook, called by ``fit`` after Ctrl-C
  once the current batch is done): save the state right there.
* ``on_train_end``: training finished, so delete the backup files (unless
  ``delete_checkpoint=False``). An interrupted or failed ``fit`` does not get
  here, so its backup stays for the next run.

Differences from Keras, both for exactness:

* One HDF5 file holds everything (Keras writes the weights and a JSON file
  with the epoch separately: a crash between the two leaves them out of step).
* A backup taken mid-epoch resumes mid-epoch: ``fit`` replays that epoch's
  shuffle and skips the batches already trained, so the result is the one of
  an uninterrupted run. Keras restarts such an epoch from its first batch.
  (The running metrics of that epoch then cover only the batches after the
  resume.)
* ``on_train_end`` removes the files this callback wrote and then the folder
  only if it is empty; Keras deletes the whole folder.

Exact resumption needs the same data in the same order: arrays (shuffled
by ``numvgg.random``, which is restored) or a dataset that yields the same
batches again. Callback state (``EarlyStopping``'s patience counter,
``ReduceLROnPlateau``'s) is not saved, as in Keras; the learning rate itself
is, with the optimizer.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import WeightFileError
from .callback import Callback

STATE_FILE = "latest.state.h5"


class BackupAndRestore(Callback):
    """Back up the training state during ``fit`` and restore it when ``fit`` runs again.

    Args:
        backup_dir: a folder used by this training run only (created if missing).
        save_freq: ``"epoch"`` (after every epoch) or a number of batches.
        double_checkpoint: keep the previous backup as ``latest.state.h5.bkp``,
            used when the latest one cannot be read.
        delete_checkpoint: delete the backup when ``fit`` completes.

    Raises:
        ValueError: empty ``backup_dir`` or an invalid ``save_freq``.
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (
            not isinstance(save_freq, (int, np.integer)) or isinstance(save_freq, bool) or save_freq < 1
        ):
            raise ValueError(
                "Invalid value for argument `save_freq`. "
                f"Received: save_freq={save_freq!r}. "
                "Expected either 'epoch' or a positive integer value."
            )
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self.state_path = os.path.join(self.backup_dir, STATE_FILE)
        self.previous_path = self.state_path + ".bkp"
        self._batches_since_save = 0

    # -- restoring -------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._batches_since_save = 0
        if not os.path.exists(self.state_path) and not os.path.exists(self.previous_path):
            return
        if not getattr(self.model, "built", False):
            raise ValueError(
                "To use the BackupAndRestore callback, your model must be built "
                f"before you call `fit()`. Model '{self.model.name}' is unbuilt: give "
                "its first layer input_shape=... or call model.build(input_shape)."
            )
        self.model._initial_epoch = self._restore()

    def _restore(self) -> int:
        """Load the latest backup, or the previous one if the latest cannot be read."""
        try:
            if os.path.exists(self.state_path):
                return self.model.load_training_state(self.state_path)
            problem = f"'{self.state_path}' is missing"
        except WeightFileError as e:
            if not os.path.exists(self.previous_path):
                raise
            problem = f"'{self.state_path}' cannot be loaded ({e})"
        warnings.warn(
            f"BackupAndRestore: {problem}; restoring the previous backup '{self.previous_path}' instead.",
            stacklevel=3,
        )
        return self.model.load_training_state(self.previous_path)

    # -- backing up ---------------------------------------------------------------
    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save()

    def on_train_interrupted(self, logs=None):
        """Called by ``fit`` after Ctrl-C, once the current batch is complete."""
        self._save()

    def _save(self) -> None:
        self._batches_since_save = 0
        os.makedirs(self.backup_dir, exist_ok=True)
        for path in (self.state_path, self.previous_path):
            self._move_aside_if_not_a_file(path)
        if self.double_checkpoint and os.path.exists(self.state_path):
            # A rename is atomic: at every moment one complete backup exists.
            os.replace(self.state_path, self.previous_path)
        self.model.save_training_state(self.state_path)

    @staticmethod
    def _move_aside_if_not_a_file(path: str) -> None:
        """A folder (or anything but a file) where a backup file belongs is a
        damaged backup: rename it to ``<name>.damaged`` (``.damaged1``, ...)
        so the next backup can be written, and say so. Nothing is deleted."""
        if not os.path.lexists(path) or os.path.isfile(path):
            return
        aside, n = f"{path}.damaged", 0
        while os.path.lexists(aside):
            n += 1
            aside = f"{path}.damaged{n}"
        os.replace(path, aside)
        warnings.warn(
            f"BackupAndRestore: '{path}' is not a backup file (a folder or a broken "
            f"link); moved it to '{aside}' and writing a new backup.",
            stacklevel=4,
        )

    # -- finishing -----------------------------------------------------------------------
    def on_train_end(self, logs=None):
        if not self.delete_checkpoint:
            return
        for path in (self.state_path, self.previous_path):
            if os.path.isfile(path):
                os.remove(path)
        try:
            os.rmdir(self.backup_dir)  # only if nothing else is in it
        except OSError:
            pass
