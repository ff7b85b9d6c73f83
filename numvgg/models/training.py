"""Keras' training API on a numvgg model: ``compile``, ``fit``, ``evaluate``,
``predict``, ``train_on_batch``, ``test_on_batch``.

One training step, written out (``_train_step``):

1. ``y_pred = model.forward(x, training=True)`` (every layer keeps its cache);
2. the loss and ``dL/dy_pred``; when the last layer ends in a sigmoid (softmax)
   and the loss is binary (categorical) cross-entropy, both are computed from
   the *logits*, as Keras' TensorFlow backend does, and the gradient enters
   the last layer below its activation;
3. ``model.backward(...)`` with the set of layers fixed at ``compile()``: weight
   gradients only for those, and nothing at all below the lowest of them;
4. the optimizer updates those weights in place.

The trainable flags are read at ``compile()``, as in Keras: change them, then
compile again.

Reliability, beyond Keras:

* **Bad input fails early and says why** (:mod:`.checks`): arrays that are not
  numbers, images of different sizes, a shape that does not fit the model
  (and the reason: batch axis, channels, the size ``fc1`` fixes), NaN or inf
  in ``x`` or ``y`` (naming the samples, or the epoch and step of a dataset's
  batch) -- all before any weight changes. A batch whose *loss* is NaN or inf
  (the model blew up) gets a warning that names the epoch and step and says
  whether the weights or the predictions went bad first.
* **Interruptions** (:mod:`.interrupt`): Ctrl-C inside a step lets the step
  finish, runs the batch-end callbacks, then calls ``on_train_interrupted`` on
  the callbacks that have it (``BackupAndRestore`` saves the exact state
  there) and re-raises ``KeyboardInterrupt``. ``on_train_end`` is not called,
  so a backup is kept, as after Keras' ``TerminateOnNaN(raise_error=True)``.
* **Resuming** (:mod:`numvgg.io.training_state`): ``save_training_state(path)``
  writes weights, optimizer slots, epoch, step and random generators;
  ``initial_epoch = load_training_state(path)`` restores them, and
  ``fit(..., initial_epoch=initial_epoch)`` continues with the batches the
  uninterrupted run would have seen, giving bit-identical weights.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import losses as losses_module
from .. import metrics as metrics_module
from .. import optimizers as optimizers_module
from .. import random as nv_random
from ..errors import ShapeError
from ..io import training_state
from . import checks
from .feature_cache import FrozenFeatureCache, frozen_prefix
from .data_iter import EpochIterator, no_sample_logs, split_validation, unpack_batch
from .interrupt import InterruptGuard

class Trainer:
    """Mixin that gives :class:`~numvgg.models.Sequential` Keras' training methods."""

    compiled = False
    stop_training = False
    optimizer = None
    history = None
    _feature_cache = None
    _frozen_prefix = 0
    # Where fit() stands (epoch, batches done, shuffle state at the epoch's start);
    # save_training_state() records it.
    training_progress = None
    # Set by BackupAndRestore.on_train_begin (Keras' name): fit() starts there instead.
    _initial_epoch = None
    # What load_training_state() restored, for the next fit() to resume mid-epoch.
    _pending_resume = None
    _train_vars: tuple = ()
    _nonfinite_loss_warned = False

    # -- compile -------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None,
                cache_frozen_features: bool = False, **kwargs):
        """Choose optimizer, loss and metrics, and fix which layers train.

        Args:
            optimizer: an optimizer object or a Keras name (``'adam'``).
            loss: a loss object or name (``'binary_crossentropy'``, ``'mse'``...).
            metrics: a list of names or metric objects; ``'acc'``/``'accuracy'``
                become binary, categorical or sparse accuracy as in Keras,
                keeping the name you gave (so the history has ``acc``).
            cache_frozen_features: numvgg's option (not Keras'): remember the
                output of the frozen bottom layers per input sample, so
                ``fit``/``evaluate`` run a frozen conv base once per image
                instead of once per epoch (see :mod:`.feature_cache`). Results
                are the same; phase 1 of the recipe gets much faster.
        """
        unknown = set(kwargs) - {"loss_weights", "weighted_metrics", "run_eagerly",
                                 "steps_per_execution", "jit_compile", "auto_scale_loss"}
        if unknown:
            raise TypeError(f"compile() got unexpected argument(s): {sorted(unknown)}")
        if not self.built:
            raise ValueError(f"Model '{self.name}' is not built: give its first layer "
                             "`input_shape=` or call `model.build(input_shape)` before compile().")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss) if loss is not None else None
        # Metrics are resolved at the first batch, when the targets' shape is
        # known: that is how Keras picks which accuracy 'acc' means.
        self._metric_specs = list(metrics or [])
        self.compiled_metrics = [m for m in self._metric_specs if isinstance(m, metrics_module.Metric)]
        self._metrics_resolved = len(self.compiled_metrics) == len(self._metric_specs)
        self._loss_tracker = metrics_module.Mean(name="loss")

        # Freeze the trainable set now (Keras semantics).
        from .sequential import leaf_layers
        self._trained_leaves = self.trainable_leaves()
        self._train_ids = {id(layer) for layer in self._trained_leaves}
        self._train_vars = [w for layer in self._trained_leaves for w in layer.weights]
        self._compiled_trainable_state = {id(l): l.trainable for l in _all_layers(self)}
        # The bottom layers that hold nothing trained run as inference during
        # training: backward never reaches them, so they keep no caches.
        k = frozen_prefix(self, self._train_ids)
        self._frozen_prefix = k if 0 < k < len(self.layers) else 0
        self._feature_cache = None
        if cache_frozen_features and self._frozen_prefix:
            self._feature_cache = FrozenFeatureCache(self, self._frozen_prefix)
        self._fused_activation = None
        last = list(leaf_layers(self))[-1]
        # Keras' TensorFlow backend computes the cross-entropy from the logits
        # that a sigmoid/softmax output carries, so the loss is never clipped.
        want = getattr(self.loss, "logits_activation", None)
        if want and getattr(last, "activation_name", None) == want:
            if getattr(self.loss, "from_logits", False):
                warnings.warn(f'"`{type(self.loss).__name__}` received `from_logits=True`, but the '
                              f'`output` argument was produced by a {want} activation and thus does '
                              f'not represent logits. Was this intended?"', stacklevel=2)
            self._fused_activation = want
            last.keep_logits = True
        self._last_leaf = last
        self.compiled = True
        self.stop_training = False

    def _assert_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call `compile()` before calling `{what}()`.")

    def _warn_if_trainable_state_changed(self):
        changed = [l.name for l in _all_layers(self)
                   if self._compiled_trainable_state.get(id(l), None) != l.trainable]
        if changed:
            warnings.warn(
                "A layer's `trainable` state has changed since the model was compiled. numvgg, "
                "like Keras, keeps training the layers that were trainable at compile() time. "
                "Please recompile your model (e.g. `model.compile(...)`) before calling `fit()` "
                f"so the change takes effect. Changed layers: {changed}", stacklevel=3)

    @property
    def metrics(self):
        return [self._loss_tracker, *self.compiled_metrics] if self.compiled else []

    @property
    def metrics_names(self):
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        for m in self.metrics:
            m.reset_state()

    # -- one step ----------------------------------------------------------------
    def _loss_and_grad(self, y, y_pred):
        y = np.asarray(y)
        if self._fused_activation is not None:
            logits = self._last_leaf.last_logits
            value, grad = self.loss.value_and_grad(y, logits, from_logits=True)
            return value, grad, True
        value, grad = self.loss.value_and_grad(y, y_pred)
        return value, grad, False

    def _check_targets(self, y, y_pred):
        if y is None:
            raise ValueError("Training and evaluation need targets `y` (or a dataset of (x, y) batches).")
        if np.shape(y)[0] != y_pred.shape[0]:
            raise ShapeError(f"Inputs and targets have different batch sizes: x gives "
                             f"{y_pred.shape[0]} predictions but y has {np.shape(y)[0]} rows.")

    def _check_batch(self, x, y, where):
        """A dataset's batch: numbers, the model's shape, finite (arrays are checked whole, once)."""
        x = checks.as_sample_array(x, f"{where}: the batch's x")
        checks.check_input_shape(self, x, where)
        checks.check_finite(x, "the batch's x", where)
        if y is not None:
            y = checks.as_sample_array(y, f"{where}: the batch's y")
            checks.check_finite(y, "the batch's y", where)
        return x, y

    def _resolve_metrics(self, y):
        self.compiled_metrics = [metrics_module.get(m, loss=self.loss, output_shape=self.output_shape,
                                                    y_true_shape=np.shape(y))
                                 for m in self._metric_specs]
        self._metrics_resolved = True

    def _update_metrics(self, loss_value, y, y_pred):
        if not self._metrics_resolved:
            self._resolve_metrics(y)
        self._loss_tracker.update_state(loss_value, sample_weight=y_pred.shape[0])
        for m in self.compiled_metrics:
            m.update_state(y, y_pred)
        return self._logs()

    def _logs(self):
        return {m.name: float(m.result()) for m in self.metrics}

    def _train_step(self, x, y, where="train_on_batch()"):
        if self._feature_cache is not None:
            features = self._feature_cache(x)
            y_pred = self.forward_from(self._feature_cache.n_layers, features, training=True)
        elif self._frozen_prefix:
            self._check_input(np.asarray(x))
            features = self.call_from(0, x, stop=self._frozen_prefix)
            y_pred = self.forward_from(self._frozen_prefix, features, training=True)
        else:
            y_pred = self.forward(x, training=True)
        self._check_targets(y, y_pred)
        loss_value, dy, fused = self._loss_and_grad(y, y_pred)
        if not np.isfinite(loss_value):
            self._warn_nonfinite_loss(loss_value, y_pred, where)
        if self._train_vars:
            self.backward(dy.astype(y_pred.dtype, copy=False), need_input_grad=False,
                          from_logits=fused, train_only=self._train_ids)
            grads = [g for layer in self._trained_leaves for g in layer.grads]
            self.optimizer.apply(grads, self._train_vars)
        else:
            self.clear_cache()
            warnings.warn("The model does not have any trainable weights.", stacklevel=3)
        return self._update_metrics(loss_value, y, y_pred)

    def _warn_nonfinite_loss(self, loss_value, y_pred, where):
        """Say where the loss first went NaN/inf and what went bad first (once per fit)."""
        if self._nonfinite_loss_warned:
            return
        self._nonfinite_loss_warned = True
        from .sequential import leaf_layers
        bad = [f"{leaf.name}/{name}" for leaf in leaf_layers(self) for name, w in leaf.params.items()
               if not np.isfinite(w).all()]
        if bad:
            cause = (f"the weights of {bad[:4]}{' ...' if len(bad) > 4 else ''} already hold NaN or "
                     "inf: an earlier update blew up (a learning rate too high? inputs not scaled "
                     "or preprocessed?)")
        elif not np.isfinite(y_pred).all():
            n_bad = int((~np.isfinite(y_pred)).sum())
            cause = (f"the weights are finite but {n_bad} of the {y_pred.size} predictions are not: "
                     "an activation overflowed (inputs far larger than the model expects?)")
        else:
            largest = float(np.max(np.abs(y_pred))) if y_pred.size else 0.0
            cause = (f"the weights and the predictions are finite (the largest |prediction| is "
                     f"{largest:.3g}), so the loss itself overflowed float32: predictions or "
                     "targets far outside the range the loss expects?")
        warnings.warn(f"{where}: the loss of this batch is {float(loss_value)}; {cause}. Training "
                      "goes on as in Keras; add numvgg.callbacks.TerminateOnNaN() to stop at the "
                      "first such batch.", RuntimeWarning, stacklevel=4)

    def _test_step(self, x, y):
        if self._feature_cache is not None:
            y_pred = self.call_from(self._feature_cache.n_layers, self._feature_cache(x))
        else:
            y_pred = self(x)
        self._check_targets(y, y_pred)
        loss_value = self._loss_value(y, y_pred)
        return self._update_metrics(loss_value, y, y_pred)

    def _loss_value(self, y, y_pred):
        if self._fused_activation is not None:
            return self.loss(np.asarray(y), self._last_leaf.last_logits, from_logits=True)
        return self.loss(np.asarray(y), y_pred)

    def _checked_arrays(self, x, y, call, need_targets=True, finite=True):
        """``x`` and ``y`` checked whole (arrays only; datasets are checked batch by batch).

        Returns ``(x, y, is_arrays)``."""
        if x is None or not checks.is_array_data(x):
            return x, y, False
        x = checks.as_sample_array(x, "x")
        if self.built:
            checks.check_input_shape(self, x, call)
        if y is None and need_targets:
            name = call.split("(")[0]
            raise ValueError(f"{call}: y is missing. With arrays, pass the targets too: "
                             f"{name}(x, y, ...); or pass a dataset of (x, y) batches as x.")
        if y is not None:
            y = checks.as_sample_array(y, "y")
        if finite:
            checks.check_finite(x, "x", call)
            if y is not None:
                checks.check_finite(y, "y", call)
        return x, y, True

    # -- public batch API ------------------------------------------------------
    def train_on_batch(self, x, y=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics) of
        the batch, measured before the update, as Keras does."""
        self._assert_compiled("train_on_batch")
        x, y, _ = self._checked_arrays(x, y, "train_on_batch()")
        self.reset_metrics()
        self._nonfinite_loss_warned = False
        logs = self._train_step(x, y, "train_on_batch()")
        return logs if return_dict else self._flatten_logs(logs)

    def test_on_batch(self, x, y=None, return_dict=False):
        self._assert_compiled("test_on_batch")
        x, y, _ = self._checked_arrays(x, y, "test_on_batch()")
        self.reset_metrics()
        logs = self._test_step(x, y)
        return logs if return_dict else self._flatten_logs(logs)

    def predict_on_batch(self, x):
        x, _, _ = self._checked_arrays(x, None, "predict_on_batch()", need_targets=False, finite=False)
        return self(x)

    def _flatten_logs(self, logs):
        values = [logs[n] for n in self.metrics_names if n in logs]
        return values[0] if len(values) == 1 else values

    # -- saving and resuming ------------------------------------------------------
    def save_training_state(self, filepath) -> None:
        """Write weights, optimizer state, epoch, step and random generators to
        one HDF5 file, atomically (see :mod:`numvgg.io.training_state`).

        ``ModelCheckpoint(path)`` (``save_weights_only=False``) and
        ``BackupAndRestore`` call this. Outside ``fit`` it records the state
        after the last epoch trained.
        """
        training_state.save_training_state(
            filepath, self, optimizer=self.optimizer if self.compiled else None,
            trained_weights=self._train_vars, progress=self.training_progress)

    def load_training_state(self, filepath) -> int:
        """Restore what :meth:`save_training_state` wrote; returns the epoch to
        resume at. Compile the model first, as it was compiled when saved::

            model.compile(optimizer="adam", loss="binary_crossentropy")
            initial_epoch = model.load_training_state("ckpt.state.h5")
            model.fit(x, y, epochs=10, initial_epoch=initial_epoch)

        A state saved mid-epoch resumes mid-epoch: the next ``fit`` replays
        that epoch's shuffle and skips the batches already trained.

        Raises:
            TrainingStateError: the file does not fit the model or its
                optimizer (nothing is changed then).
        """
        progress = training_state.load_training_state(
            filepath, self, optimizer=self.optimizer if self.compiled else None,
            trained_weights=self._train_vars)
        self.training_progress = progress
        self._pending_resume = progress
        return progress.epoch

    def _resume_point(self, initial_epoch: int) -> int:
        """How many batches of ``initial_epoch`` a restored state already trained."""
        resume, self._pending_resume = self._pending_resume, None
        if resume is None:
            return 0
        if resume.epoch != initial_epoch:
            warnings.warn(
                f"load_training_state() restored the state at epoch {resume.epoch} (0-based; "
                f"{resume.step} batch(es) of it done) but fit() starts at initial_epoch="
                f"{initial_epoch}. Pass initial_epoch={resume.epoch} (what load_training_state "
                "returned) to continue where the saved run stopped.", stacklevel=3)
            return 0
        return resume.step

    # -- fit / evaluate / predict -------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1):
        """Train for ``epochs`` epochs, as ``keras.Model.fit``; returns a ``History``.

        ``x`` is an array (with ``y``) or a dataset / generator of ``(x, y)``
        batches (e.g. :func:`numvgg.utils.image_dataset_from_directory`).
        ``initial_epoch`` is the epoch to start at, e.g. what
        :meth:`load_training_state` returned.

        Ctrl-C stops after the current batch (see the module docstring) and
        raises ``KeyboardInterrupt``; ``model.history`` holds the epochs done.
        """
        from ..callbacks import CallbackList, History
        self._assert_compiled("fit")
        if isinstance(validation_data, list) and len(validation_data) in (2, 3):
            validation_data = tuple(validation_data)          # Keras reads a list as a tuple
        checks.check_fit_arguments(epochs, initial_epoch, validation_split, validation_freq,
                                   validation_data)
        self._warn_if_trainable_state_changed()
        x, y, arrays = self._checked_arrays(x, y, "fit()")
        if validation_split and validation_data is None:
            (x, y), validation_data = split_validation(x, y, validation_split)
        if isinstance(validation_data, tuple):
            vx, vy, _ = self._checked_arrays(validation_data[0], validation_data[1],
                                             "fit(validation_data=...)")
            validation_data = (vx, vy)
        checks.check_validation_data(self, validation_data)           # issue 15: before step 1
        self._bce_unchecked = getattr(self.loss, "name", None) == "binary_crossentropy"
        if arrays and y is not None and self._bce_unchecked:
            checks.check_binary_targets(y, "fit()")
            self._bce_unchecked = False
        train_iter = EpochIterator(x, y, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
                                   shuffle=shuffle)
        verbose = 1 if verbose == "auto" else verbose
        cbks = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
            callbacks, add_history=True, add_progbar=verbose != 0, model=self, verbose=verbose,
            epochs=epochs, steps=train_iter.num_batches)
        self.stop_training = False
        self._nonfinite_loss_warned = False
        with InterruptGuard() as guard:
            try:
                epoch_logs = self._fit_epochs(cbks, guard, train_iter, not arrays, epochs,
                                              initial_epoch, validation_data, validation_steps,
                                              validation_batch_size or batch_size, validation_freq)
            except KeyboardInterrupt as interrupt:
                self._after_interrupt(cbks, guard, interrupt, epochs, train_iter.num_batches)
                raise
        cbks.on_train_end(logs=epoch_logs)
        history = next((c for c in cbks.callbacks if isinstance(c, History)), None)
        self.history = history
        return history

    def _fit_epochs(self, cbks, guard, train_iter, check_batches, epochs, initial_epoch,
                    validation_data, validation_steps, validation_batch_size, validation_freq):
        """The epoch loop of :meth:`fit`; returns the last epoch's logs.

        ``check_batches``: check each batch (a dataset's); arrays were checked whole.
        """
        steps = train_iter.num_batches
        cbks.on_train_begin()
        if self._initial_epoch is not None:              # BackupAndRestore restored a state
            initial_epoch, self._initial_epoch = self._initial_epoch, None
        skip = self._resume_point(initial_epoch)
        guard.training_started = True                    # from here on, a state is worth saving
        epoch_logs = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            # Recorded before this epoch draws its shuffle, so a state saved
            # mid-epoch can replay it; `skip` batches of a resumed epoch are done already.
            self.training_progress = training_state.TrainingProgress(epoch, skip, nv_random.get_state())
            cbks.on_epoch_begin(epoch)
            for step, (xb, yb) in train_iter.enumerate_epoch():
                if step < skip:                          # trained before the state was saved
                    continue
                where = f"fit(): epoch {epoch + 1}/{epochs}, step {step + 1}/{steps or '?'}"
                if check_batches:
                    xb, yb = self._check_batch(xb, yb, where)
                    if self._bce_unchecked and yb is not None:   # until the first warning
                        self._bce_unchecked = not checks.check_binary_targets(yb, where)
                cbks.on_train_batch_begin(step)
                with guard.step():
                    logs = self._train_step(xb, yb, where)
                    self.training_progress = training_state.TrainingProgress(
                        epoch, step + 1, self.training_progress.shuffle_state)
                cbks.on_train_batch_end(step, logs)
                guard.raise_if_pending()
                if self.stop_training:
                    break
            if train_iter.ran_out:                        # no batch: no loss to log (issue 15)
                break
            skip = 0
            epoch_logs = self._logs()
            if validation_data is not None and (epoch + 1) % validation_freq == 0:
                vx, vy = unpack_batch(validation_data) if isinstance(validation_data, tuple) \
                    else (validation_data, None)
                val_logs = self.evaluate(vx, vy, batch_size=validation_batch_size,
                                         steps=validation_steps, callbacks=cbks, return_dict=True,
                                         verbose=0)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            self.training_progress = training_state.TrainingProgress(epoch + 1, 0, nv_random.get_state())
            cbks.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        return epoch_logs

    def _after_interrupt(self, cbks, guard, interrupt, epochs, steps):
        """Ctrl-C reached fit: let callbacks save a consistent state, explain, re-raise."""
        if not guard.training_started:
            interrupt.add_note("numvgg: fit() was interrupted before its first epoch started; "
                               "nothing was saved.")
            return
        progress = self.training_progress
        at = (f"epoch {progress.epoch + 1}/{epochs}, after {progress.step}/{steps or '?'} batch(es)"
              if progress is not None else "before the first epoch")
        if guard.torn:
            interrupt.add_note(
                f"numvgg: fit() was interrupted inside a training step ({at}); the weights may be "
                "half-updated, so no callback was asked to save them. Files saved earlier are intact.")
            return
        saved = []
        for callback in cbks.callbacks:
            hook = getattr(callback, "on_train_interrupted", None)
            if hook is not None:
                hook(self._logs())
                saved.append(type(callback).__name__)
        what = f"; {', '.join(saved)} saved the training state" if saved else ""
        interrupt.add_note(f"numvgg: fit() stopped cleanly at {at}{what}. model.history holds the "
                           "epochs completed.")

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics over the data (sample-weighted means, as Keras)."""
        from ..callbacks import CallbackList
        self._assert_compiled("evaluate")
        x, y, arrays = self._checked_arrays(x, y, "evaluate()")
        it = EpochIterator(x, y, batch_size=batch_size, steps_per_epoch=steps, shuffle=False)
        verbose = 1 if verbose == "auto" else verbose
        cbks = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
            callbacks, add_history=False, add_progbar=verbose != 0, model=self, verbose=verbose,
            epochs=1, steps=it.num_batches)
        self.reset_metrics()
        cbks.on_test_begin()
        logs = {}
        for step, (xb, yb) in it.enumerate_epoch():
            if not arrays:
                xb, yb = self._check_batch(xb, yb, f"evaluate(): step {step + 1}")
            cbks.on_test_batch_begin(step)
            logs = self._test_step(xb, yb)
            cbks.on_test_batch_end(step, logs)
        logs = self._logs() if not it.ran_out else no_sample_logs(self._logs())   # issue 15
        cbks.on_test_end(logs)
        return logs if return_dict else self._flatten_logs(logs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for every sample, concatenated; batches of 32 by default.
        A dataset's targets, if any, are ignored. NaN or inf in array inputs
        gets a warning naming the samples (their outputs will not be finite)."""
        from ..callbacks import CallbackList
        x, _, arrays = self._checked_arrays(x, None, "predict()", need_targets=False, finite=False)
        if arrays:
            report = checks.nonfinite_report(x, "x")
            if report:
                warnings.warn(f"predict(): {report}; their predictions will not be finite.",
                              RuntimeWarning, stacklevel=2)
        it = EpochIterator(x, None, batch_size=batch_size, steps_per_epoch=steps, shuffle=False,
                           need_targets=False)
        verbose = 1 if verbose == "auto" else verbose
        cbks = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
            callbacks, add_history=False, add_progbar=verbose != 0, model=self, verbose=verbose,
            epochs=1, steps=it.num_batches)
        cbks.on_predict_begin()
        outputs = []
        for step, (xb, _) in it.enumerate_epoch():
            if not arrays:
                xb = checks.as_sample_array(xb, f"predict(): step {step + 1}: the batch's x")
                checks.check_input_shape(self, xb, f"predict(): step {step + 1}")
            cbks.on_predict_batch_begin(step)
            outputs.append(self(xb))
            cbks.on_predict_batch_end(step, {"outputs": outputs[-1]})
        cbks.on_predict_end()
        if not outputs:
            raise ValueError("predict() received no data.")
        return np.concatenate(outputs, axis=0)


def _all_layers(model):
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_all_layers(layer))
    return out
