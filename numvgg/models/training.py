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
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import losses as losses_module
from .. import metrics as metrics_module
from .. import optimizers as optimizers_module
from ..errors import ShapeError
from .data_iter import EpochIterator, split_validation, unpack_batch

class Trainer:
    """Mixin that gives :class:`~numvgg.models.Sequential` Keras' training methods."""

    compiled = False
    stop_training = False
    optimizer = None
    history = None

    # -- compile -------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Choose optimizer, loss and metrics, and fix which layers train.

        Args:
            optimizer: an optimizer object or a Keras name (``'adam'``).
            loss: a loss object or name (``'binary_crossentropy'``, ``'mse'``...).
            metrics: a list of names or metric objects; ``'acc'``/``'accuracy'``
                become binary, categorical or sparse accuracy as in Keras,
                keeping the name you gave (so the history has ``acc``).
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

    def _train_step(self, x, y):
        y_pred = self.forward(x, training=True)
        self._check_targets(y, y_pred)
        loss_value, dy, fused = self._loss_and_grad(y, y_pred)
        if self._train_vars:
            self.backward(dy.astype(y_pred.dtype, copy=False), need_input_grad=False,
                          from_logits=fused, train_only=self._train_ids)
            grads = [g for layer in self._trained_leaves for g in layer.grads]
            self.optimizer.apply(grads, self._train_vars)
        else:
            self.clear_cache()
            warnings.warn("The model does not have any trainable weights.", stacklevel=3)
        return self._update_metrics(loss_value, y, y_pred)

    def _test_step(self, x, y):
        y_pred = self(x)
        self._check_targets(y, y_pred)
        loss_value = self._loss_value(y, y_pred)
        return self._update_metrics(loss_value, y, y_pred)

    def _loss_value(self, y, y_pred):
        if self._fused_activation is not None:
            return self.loss(np.asarray(y), self._last_leaf.last_logits, from_logits=True)
        return self.loss(np.asarray(y), y_pred)

    # -- public batch API ------------------------------------------------------
    def train_on_batch(self, x, y=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics) of
        the batch, measured before the update, as Keras does."""
        self._assert_compiled("train_on_batch")
        self.reset_metrics()
        logs = self._train_step(np.asarray(x), y)
        return logs if return_dict else self._flatten_logs(logs)

    def test_on_batch(self, x, y=None, return_dict=False):
        self._assert_compiled("test_on_batch")
        self.reset_metrics()
        logs = self._test_step(np.asarray(x), y)
        return logs if return_dict else self._flatten_logs(logs)

    def predict_on_batch(self, x):
        return self(np.asarray(x))

    def _flatten_logs(self, logs):
        values = [logs[n] for n in self.metrics_names if n in logs]
        return values[0] if len(values) == 1 else values

    # -- fit / evaluate / predict -------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1):
        """Train for ``epochs`` epochs, as ``keras.Model.fit``; returns a ``History``.

        ``x`` is an array (with ``y``) or a dataset / generator of ``(x, y)``
        batches (e.g. :func:`numvgg.utils.image_dataset_from_directory`).
        """
        from ..callbacks import CallbackList, History
        self._assert_compiled("fit")
        self._warn_if_trainable_state_changed()
        if validation_split and validation_data is None:
            (x, y), validation_data = split_validation(x, y, validation_split)
        train_iter = EpochIterator(x, y, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
                                   shuffle=shuffle)
        verbose = 1 if verbose == "auto" else verbose
        cbks = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
            callbacks, add_history=True, add_progbar=verbose != 0, model=self, verbose=verbose,
            epochs=epochs, steps=train_iter.num_batches)
        self.stop_training = False
        cbks.on_train_begin()
        epoch_logs = {}
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            cbks.on_epoch_begin(epoch)
            for step, (xb, yb) in train_iter.enumerate_epoch():
                cbks.on_train_batch_begin(step)
                logs = self._train_step(xb, yb)
                cbks.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            epoch_logs = self._logs()
            if validation_data is not None and (epoch + 1) % validation_freq == 0:
                vx, vy = unpack_batch(validation_data) if isinstance(validation_data, tuple) \
                    else (validation_data, None)
                val_logs = self.evaluate(vx, vy, batch_size=validation_batch_size or batch_size,
                                         steps=validation_steps, callbacks=cbks, return_dict=True,
                                         verbose=0)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbks.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        cbks.on_train_end(logs=epoch_logs)
        history = next((c for c in cbks.callbacks if isinstance(c, History)), None)
        self.history = history
        return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics over the data (sample-weighted means, as Keras)."""
        from ..callbacks import CallbackList
        self._assert_compiled("evaluate")
        it = EpochIterator(x, y, batch_size=batch_size, steps_per_epoch=steps, shuffle=False)
        verbose = 1 if verbose == "auto" else verbose
        cbks = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
            callbacks, add_history=False, add_progbar=verbose != 0, model=self, verbose=verbose,
            epochs=1, steps=it.num_batches)
        self.reset_metrics()
        cbks.on_test_begin()
        logs = {}
        for step, (xb, yb) in it.enumerate_epoch():
            cbks.on_test_batch_begin(step)
            logs = self._test_step(xb, yb)
            cbks.on_test_batch_end(step, logs)
        logs = self._logs()
        cbks.on_test_end(logs)
        return logs if return_dict else self._flatten_logs(logs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for every sample, concatenated; batches of 32 by default.
        A dataset's targets, if any, are ignored."""
        from ..callbacks import CallbackList
        it = EpochIterator(x, None, batch_size=batch_size, steps_per_epoch=steps, shuffle=False,
                           need_targets=False)
        verbose = 1 if verbose == "auto" else verbose
        cbks = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
            callbacks, add_history=False, add_progbar=verbose != 0, model=self, verbose=verbose,
            epochs=1, steps=it.num_batches)
        cbks.on_predict_begin()
        outputs = []
        for step, (xb, _) in it.enumerate_epoch():
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
