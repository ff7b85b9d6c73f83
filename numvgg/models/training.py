"""Keras' training API on a numvgg model: ``compile``, ``fit``, ``evaluate``,
``predict``, ``train_on_batch``, ``test_on_batch``, and the three public steps
they repeat: :meth:`Trainer.train_step`, :meth:`Trainer.test_step`,
:meth:`Trainer.predict_step` (Keras' contract: override one to change what a
step does).

One training step, as :meth:`Trainer.train_step` writes it out:

1. ``y_pred = self(x, training=True, keep_cache=...)`` -- the same call as
   ``model(x)``; caches are kept only where the backward will go;
2. the loss and ``dL/dy_pred``; when the output comes from a sigmoid
   (softmax) and the loss is binary (categorical) cross-entropy, both are
   computed from the *logits*, as Keras' TensorFlow backend does, and the
   gradient enters that layer below its activation;
3. ``self.backward(...)``: weight gradients for the trained layers only, and
   no work below the lowest of them;
4. the optimizer updates those weights in place.

Which layers train is read when Keras would read it: when the step is first
"traced" after ``compile`` (see :mod:`.train_plan`), not at ``compile()``.

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
from typing import NamedTuple

import numpy as np

from .. import losses as losses_module
from .. import metrics as metrics_module
from .. import optimizers as optimizers_module
from .. import random as nv_random
from ..errors import ShapeError
from ..io import training_state
from . import checks, train_plan
from .data_iter import EpochIterator, no_sample_logs, num_samples, split_validation, unpack_batch
from .diagnose import DivergenceMonitor, diagnose_nonfinite_loss
from .feature_cache import FrozenFeatureCache, frozen_prefix
from .interrupt import InterruptGuard
from .sample_weights import (
    batch_sample_weight,
    check_class_weight,
    check_sample_weight,
    num_classes_of,
    unpack_x_y_sample_weight,
)


class Trainer:
    """Mixin that gives :class:`~numvgg.models.Model` Keras' training methods."""

    compiled = False
    stop_training = False
    optimizer = None
    loss = None
    history = None
    _run_eagerly = False
    _cache_features = False
    _frozen_features = None  # FrozenFeatureCache, made with the first training trace
    # Where fit() stands (epoch, batches done, shuffle state at the epoch's start);
    # save_training_state() records it.
    training_progress = None
    # Set by BackupAndRestore.on_train_begin (Keras' name): fit() starts there instead.
    _initial_epoch = None
    # What load_training_state() restored, for the next fit() to resume mid-epoch.
    _pending_resume = None
    _plan = None  # the TrainPlan of the step running now
    _nonfinite_loss_warned = False
    _divergence = DivergenceMonitor()

    # -- compile -------------------------------------------------------------
    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        run_eagerly: bool = False,
        cache_frozen_features: bool = False,
        **kwargs,
    ):
        """Choose optimizer, loss and metrics.

        Args:
            optimizer: an optimizer object or a Keras name (``'adam'``).
            loss: a loss object or name (``'binary_crossentropy'``, ``'mse'``...);
                for a model with several outputs, one loss for all of them, or a
                list (or a dict keyed by output layer name) with one per output.
            loss_weights: with several outputs, a list or dict of factors: the
                total loss is ``sum(weight_i * loss_i)``.
            metrics: a list of names or metric objects; ``'acc'``/``'accuracy'``
                become binary, categorical or sparse accuracy as in Keras,
                keeping the name you gave (so the history has ``acc``).
            run_eagerly: as in Keras, every step reads the ``trainable`` flags
                anew (without it they are read when a step is first traced:
                see :mod:`numvgg.models.train_plan`).
            cache_frozen_features: numvgg's option (not Keras'): remember the
                output of the frozen bottom layers per input sample, so
                ``fit``/``evaluate`` run a frozen conv base once per image
                instead of once per epoch (see :mod:`.feature_cache`). Results
                are the same; phase 1 of the transfer-learning recipe gets much faster.
        """
        unknown = set(kwargs) - {"weighted_metrics", "steps_per_execution", "jit_compile", "auto_scale_loss"}
        if unknown:
            raise TypeError(f"compile() got unexpected argument(s): {sorted(unknown)}")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = (
            losses_module.get(loss) if loss is not None and not isinstance(loss, (list, dict)) else loss
        )
        self._loss_weights = loss_weights
        self._loss_fns = None  # per output, resolved once the outputs are known
        # Metrics are resolved at the first batch, when the targets' shape is
        # known: that is how Keras picks which accuracy 'acc' means.
        self._metric_specs = list(metrics or [])
        self.compiled_metrics = [m for m in self._metric_specs if isinstance(m, metrics_module.Metric)]
        self._metrics_resolved = len(self.compiled_metrics) == len(self._metric_specs)
        self._loss_tracker = metrics_module.Mean(name="loss")
        self._run_eagerly = bool(run_eagerly)
        self._cache_features = bool(cache_frozen_features)
        # Keras forgets its traced train functions: the flags are read again.
        self._traces = {"fit": [], "train_on_batch": []}
        self._plan = None
        self._frozen_features = None
        self.compiled = True
        self.stop_training = False
        if self.built:
            self._resolve_losses()

    def _assert_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call `compile()` before calling `{what}()`.")

    @property
    def run_eagerly(self) -> bool:
        return self._run_eagerly

    @property
    def _train_vars(self) -> list:
        """The weights the optimizer updates: those of the current trace, or (before
        any step) those that are trainable now."""
        plan = self._plan or (train_plan.make_plan(self) if self.built else None)
        return plan.variables if plan is not None else []

    # -- losses, one per output -------------------------------------------------
    def _resolve_losses(self) -> None:
        """One loss function per output (Keras: a single loss serves every output)."""
        n = len(self.outputs)
        loss = self.loss
        names = [t.node.layer.name for t in self.outputs]
        if loss is None:
            fns = [None] * n
        elif isinstance(loss, dict):
            missing = sorted(set(loss) - set(names))
            if missing:
                raise ValueError(
                    f"compile(loss=...) names output(s) {missing} that the model does "
                    f"not have; its outputs are {names}."
                )
            fns = [losses_module.get(loss[k]) if k in loss else None for k in names]
        elif isinstance(loss, list):
            if len(loss) != n:
                raise ValueError(f"compile(loss=[...]) has {len(loss)} losses for {n} output(s) {names}.")
            fns = [losses_module.get(l) if l is not None else None for l in loss]
        else:
            fns = [loss] * n
        weights = self._loss_weights
        if weights is None:
            weights = [1.0] * n
        elif isinstance(weights, dict):
            weights = [float(weights.get(k, 1.0)) for k in names]
        else:
            weights = [float(w) for w in weights]
            if len(weights) != n:
                raise ValueError(f"compile(loss_weights=[...]) has {len(weights)} entries for {n} output(s).")
        self._loss_fns = fns
        self._loss_factors = weights
        self._output_names = names
        # Keras logs each output's (unweighted) loss too ("o1_loss") when there are several.
        self._output_loss_trackers = (
            []
            if n == 1
            else [metrics_module.Mean(name=f"{name}_loss") for name, fn in zip(names, fns) if fn is not None]
        )
        for fn, leaf in zip(fns, self._output_leaves()):
            want = getattr(fn, "logits_activation", None)
            if want and getattr(leaf, "activation_name", None) == want and getattr(fn, "from_logits", False):
                warnings.warn(
                    f'"`{type(fn).__name__}` received `from_logits=True`, but the '
                    f"`output` argument was produced by a {want} activation and thus does "
                    f'not represent logits. Was this intended?"',
                    stacklevel=3,
                )

    def _output_leaves(self) -> list:
        """For each output, the leaf layer that computed it (looking inside nested models)."""
        leaves = []
        for t in self.outputs:
            layer, index = t.node.layer, t.index
            while hasattr(layer, "outputs") and layer.outputs:
                t = layer.outputs[index]
                layer, index = t.node.layer, t.index
            leaves.append(layer)
        return leaves

    def _fused(self, fn, leaf, logits) -> bool:
        """Keras' TensorFlow backend computes a cross-entropy from the logits that
        a sigmoid/softmax output carries, so the loss is never clipped."""
        want = getattr(fn, "logits_activation", None)
        return bool(want) and getattr(leaf, "activation_name", None) == want and logits is not None

    def compute_loss_and_grad(self, y, y_pred, sample_weight=None):
        """The total loss and ``dL/dy_pred`` for each output.

        Returns:
            ``(loss, grads, from_logits)``: the scalar total loss (``sum_i
            loss_weight_i * loss_i``), the gradient for each output (w.r.t. its
            logits where ``from_logits[i]``), and those flags. Lists have one
            entry per output; a single-output model gets single values.
        """
        if self._loss_fns is None:
            self._resolve_losses()
        many = not self._single_output
        ys = list(y) if many else [y]
        preds = list(y_pred) if many else [y_pred]
        if len(ys) != len(preds):
            raise ValueError(f"The model has {len(preds)} outputs but y holds {len(ys)} targets.")
        total, grads, fused, per_output = 0.0, [], [], []
        # The logits of the last forward, for the outputs it returned (not for a
        # y_pred that came from elsewhere: compute_loss(y=..., y_pred=...)).
        all_logits = [
            z if k < len(self._logits_of) and self._logits_of[k] is yp else None
            for k, (z, yp) in enumerate(zip(self.output_logits or [None] * len(preds), preds))
        ]
        for fn, factor, leaf, logits, yt, yp in zip(
            self._loss_fns, self._loss_factors, self._output_leaves(), all_logits, ys, preds
        ):
            if fn is None or yt is None:
                grads.append(None)
                fused.append(False)
                continue
            yt = np.asarray(yt)
            use_logits = self._fused(fn, leaf, logits)
            if use_logits:
                value, grad = fn.value_and_grad(yt, logits, sample_weight=sample_weight, from_logits=True)
            else:
                value, grad = fn.value_and_grad(yt, yp, sample_weight=sample_weight)
            total = total + factor * value
            per_output.append(float(value))  # Keras logs each output's loss unweighted
            grads.append(
                (grad * grad.dtype.type(factor) if factor != 1.0 else grad).astype(yp.dtype, copy=False)
            )
            fused.append(use_logits)
        self._last_output_losses = per_output
        if not many:
            return total, grads[0], fused[0]
        return total, grads, fused

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        """The total loss of a batch, as Keras' ``model.compute_loss``."""
        return self.compute_loss_and_grad(y, y_pred, sample_weight)[0]

    # -- metrics ----------------------------------------------------------------
    @property
    def metrics(self):
        if not self.compiled:
            return []
        return [self._loss_tracker, *getattr(self, "_output_loss_trackers", []), *self.compiled_metrics]

    @property
    def metrics_names(self):
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        for m in self.metrics:
            m.reset_state()

    def _resolve_metrics(self, y):
        if self._metric_specs and not self._single_output:
            raise ValueError(
                "numvgg supports compile(metrics=...) on models with one output; this "
                f"model has {len(self.outputs)}. Compute per-output metrics from "
                "predict() instead."
            )
        self.compiled_metrics = [
            metrics_module.get(
                m,
                loss=self._loss_fns[0] if self._loss_fns else self.loss,
                output_shape=self.output_shape,
                y_true_shape=np.shape(y),
            )
            for m in self._metric_specs
        ]
        self._metrics_resolved = True

    def compute_metrics(self, x, y, y_pred, sample_weight=None, loss=None):
        """Update the loss tracker and the metrics with one batch; return the logs."""
        if not self._metrics_resolved:
            self._resolve_metrics(y)
        n = (y_pred if self._single_output else y_pred[0]).shape[0]
        self._loss_tracker.update_state(loss, sample_weight=n)
        for tracker, value in zip(getattr(self, "_output_loss_trackers", []), self._last_output_losses):
            tracker.update_state(value, sample_weight=n)
        for m in self.compiled_metrics:
            m.update_state(y, y_pred)
        return self._logs()

    def _logs(self):
        return {m.name: float(m.result()) for m in self.metrics}

    # -- which layers train: Keras' tracing rule --------------------------------------
    def _trace(self, entry: str, signature) -> train_plan.TrainPlan:
        """The plan a step of ``entry`` ('fit' or 'train_on_batch') runs with,
        read anew only where Keras (TensorFlow) would trace the step again."""
        if self._run_eagerly:
            return self._new_plan()
        traces = self._traces[entry]
        for traced, plan in traces:
            if train_plan.fits(signature, traced):
                return plan
        if entry == "train_on_batch" and traces:
            signature = train_plan.relax(traces[-1][0], signature)
        plan = self._new_plan()
        traces.append((signature, plan))
        return plan

    def _new_plan(self) -> train_plan.TrainPlan:
        plan = train_plan.make_plan(self)
        if self.optimizer.built:
            known = {id(v) for v in self.optimizer._variables}
            for layer, name in plan.slots:
                if id(layer.params[name]) not in known:
                    raise ValueError(
                        f"Unknown variable: <Variable path={layer.name}/{name}, shape="
                        f"{layer.params[name].shape}, dtype={layer.params[name].dtype}>. This "
                        "optimizer can only be called for the variables it was originally built "
                        "with. When working with a new set of variables, you should recreate a "
                        "new optimizer instance."
                    )
        elif plan.slots:
            self.optimizer.build(plan.variables)
        if self._cache_features:
            k = frozen_prefix(self, plan.trained)
            keep = (
                self._frozen_features
                if (self._frozen_features is not None and self._frozen_features.n_nodes == k)
                else None
            )
            self._frozen_features = keep or (FrozenFeatureCache(self, k) if k else None)
        return plan

    # -- one step ----------------------------------------------------------------
    def train_step(self, data):
        """One optimizer step on one batch ``data = (x, y)`` or ``(x, y, sample_weight)``;
        returns the logs (loss and metrics so far this epoch). Keras' contract:
        override it in a subclass of ``Model`` to change training.
        """
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        plan = self._plan
        with train_plan.flags_as_traced(plan):
            y_pred = self(x, training=True, keep_cache=plan.keep_cache)
        self._check_targets(y, y_pred)
        loss, dy, from_logits = self.compute_loss_and_grad(y, y_pred, sample_weight)
        if not np.isfinite(loss):
            self._warn_nonfinite_loss(loss, y_pred, self._where)
        else:
            self._watch_divergence(loss, self._where)
        if plan.slots:
            self.backward(dy, need_input_grad=False, from_logits=from_logits, train_only=plan.trained)
            self.optimizer.apply(plan.gradients(), plan.variables)
        else:
            self.clear_cache()
            warnings.warn("The model does not have any trainable weights.", stacklevel=3)
        return self.compute_metrics(x, y, y_pred, sample_weight, loss=loss)

    def test_step(self, data):
        """Loss and metrics of one batch, no update (``evaluate`` repeats it)."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False, keep_cache=False)
        self._check_targets(y, y_pred)
        loss = self.compute_loss_and_grad(y, y_pred, sample_weight)[0]
        return self.compute_metrics(x, y, y_pred, sample_weight, loss=loss)

    def predict_step(self, data):
        """The model's output for one batch (``predict`` repeats it)."""
        x, _, _ = unpack_x_y_sample_weight(data)
        return self(x, training=False, keep_cache=False)

    def _run_train_step(self, data, entry: str, where: str, plan=None):
        """``train_step`` with the plan of ``entry``'s trace in place."""
        self._plan = plan or self._trace(entry, train_plan.batch_signature(*data))
        self._where = where
        return self.train_step(data)

    def _check_targets(self, y, y_pred):
        if y is None:
            raise ValueError("Training and evaluation need targets `y` (or a dataset of (x, y) batches).")
        first_pred = y_pred if self._single_output else y_pred[0]
        first_y = y if self._single_output else y[0]
        if np.shape(first_y)[0] != first_pred.shape[0]:
            raise ShapeError(
                f"Inputs and targets have different batch sizes: x gives "
                f"{first_pred.shape[0]} predictions but y has {np.shape(first_y)[0]} rows."
            )

    def _check_fit_batch(self, x, y, where):
        """:meth:`_check_batch`, and binary targets for binary cross-entropy (until the first warning)."""
        x, y = self._check_batch(x, y, where)
        if self._bce_unchecked and y is not None:
            self._bce_unchecked = not checks.check_binary_targets(y, where)
        return x, y

    def _check_batch(self, x, y, where):
        """A dataset's batch: numbers, the model's shape, finite (arrays are checked whole, once)."""
        x = checks.as_sample_array(x, f"{where}: the batch's x")
        checks.check_input_shape(self, x, where)
        checks.check_finite(x, "the batch's x", where)
        if y is not None:
            y = checks.as_sample_array(y, f"{where}: the batch's y")
            checks.check_finite(y, "the batch's y", where)
        return x, y

    def _warn_nonfinite_loss(self, loss_value, y_pred, where):
        """Say where the loss first went NaN/inf and what went bad first (once per fit)."""
        if self._nonfinite_loss_warned:
            return
        self._nonfinite_loss_warned = True
        cause = diagnose_nonfinite_loss(
            self, y_pred, self._output_logits(), self._learning_rate_value()
        ).message
        warnings.warn(
            f"{where}: the loss of this batch is {float(loss_value)}; {cause}. Training "
            "goes on as in Keras; add numvgg.callbacks.TerminateOnNaN() to stop at the "
            "first such batch.",
            RuntimeWarning,
            stacklevel=4,
        )

    def _watch_divergence(self, loss_value, where):
        """numvgg's check, not Keras': a finite loss that grew 1000x past the first batch's."""
        found = self._divergence.update(loss_value, self, self._output_logits(), self._learning_rate_value())
        if found is not None:
            warnings.warn(f"{where}: {found.message}", RuntimeWarning, stacklevel=4)

    def _output_logits(self):
        return self.output_logits[0] if self.output_logits else None

    def _learning_rate_value(self):
        lr = getattr(self.optimizer, "learning_rate", None)
        return lr if isinstance(lr, (int, float)) else None

    def _checked_arrays(self, x, y, call, need_targets=True, finite=True):
        """``x`` and ``y`` checked whole (arrays only; datasets are checked batch by batch).

        A model with several inputs (outputs) takes a list of arrays as ``x``
        (``y``; a dict keyed by output layer name works too). Returns
        ``(x, y, is_arrays)``."""
        if x is None or not checks.is_array_data(x):
            return x, y, False
        several_in = self.built and not self._single_input and isinstance(x, (list, tuple))
        x = (
            [checks.as_sample_array(a, f"x[{i}]") for i, a in enumerate(x)]
            if several_in
            else checks.as_sample_array(x, "x")
        )
        if self.built and not several_in:
            checks.check_input_shape(self, x, call)
        if y is None and need_targets:
            name = call.split("(")[0]
            raise ValueError(
                f"{call}: y is missing. With arrays, pass the targets too: "
                f"{name}(x, y, ...); or pass a dataset of (x, y) batches as x."
            )
        if y is not None:
            y = self._targets_as_arrays(y, call)
        if finite:
            for name, a in _named_arrays("x", x) + (_named_arrays("y", y) if y is not None else []):
                checks.check_finite(a, name, call)
        return x, y, True

    def _targets_as_arrays(self, y, call):
        """``y`` as one array, or one array per output (from a list or a dict by output name)."""
        if not self.built or self._single_output:
            return checks.as_sample_array(y, "y")
        names = [t.node.layer.name for t in self.outputs]
        if isinstance(y, dict):
            unknown = sorted(set(y) - set(names))
            if unknown:
                raise ValueError(
                    f"{call}: y names output(s) {unknown} that the model does not have; "
                    f"its outputs are {names}."
                )
            y = [y.get(name) for name in names]
        if not isinstance(y, (list, tuple)) or len(y) != len(names):
            raise ValueError(
                f"{call}: the model has {len(names)} outputs {names}; pass y as a list "
                f"of {len(names)} arrays (or a dict keyed by those names)."
            )
        return [
            None if a is None else checks.as_sample_array(a, f"y[{i}] ({names[i]})") for i, a in enumerate(y)
        ]

    # -- public batch API ------------------------------------------------------
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics) of
        the batch, measured before the update, as Keras does."""
        self._assert_compiled("train_on_batch")
        x, y, _ = self._checked_arrays(x, y, "train_on_batch()")
        if class_weight is not None:
            class_weight = check_class_weight(class_weight, num_classes_of(self.output_shape))
        sample_weight = batch_sample_weight(y, sample_weight, class_weight)
        self.reset_metrics()
        self._nonfinite_loss_warned = False
        self._divergence = DivergenceMonitor()
        logs = self._run_train_step((x, y, sample_weight), "train_on_batch", "train_on_batch()")
        return logs if return_dict else self._flatten_logs(logs)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._assert_compiled("test_on_batch")
        x, y, _ = self._checked_arrays(x, y, "test_on_batch()")
        self.reset_metrics()
        logs = self.test_step((x, y, sample_weight))
        return logs if return_dict else self._flatten_logs(logs)

    def predict_on_batch(self, x):
        x, _, _ = self._checked_arrays(x, None, "predict_on_batch()", need_targets=False, finite=False)
        return self.predict_step((x,))

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
            filepath,
            self,
            optimizer=self.optimizer if self.compiled else None,
            trained_weights=self._train_vars,
            progress=self.training_progress,
        )

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
            filepath,
            self,
            optimizer=self.optimizer if self.compiled else None,
            trained_weights=self._train_vars,
        )
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
                "returned) to continue where the saved run stopped.",
                stacklevel=3,
            )
            return 0
        return resume.step

    # -- fit / evaluate / predict -------------------------------------------------
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
    ):
        """Train for ``epochs`` epochs, as ``keras.Model.fit``; returns a ``History``.

        ``x`` is an array (with ``y``) or a dataset / generator of ``(x, y)``
        batches (e.g. :func:`numvgg.utils.image_dataset_from_directory`).
        ``initial_epoch`` is the epoch to start at, e.g. what
        :meth:`load_training_state` returned.

        Ctrl-C stops after the current batch (see the module docstring) and
        raises ``KeyboardInterrupt``; ``model.history`` holds the epochs done.
        """
        from ..callbacks import History

        run, cbks, train_iter = self._prepare_fit(
            x=x,
            y=y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_split=validation_split,
            validation_data=validation_data,
            shuffle=shuffle,
            class_weight=class_weight,
            sample_weight=sample_weight,
            steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps,
            validation_batch_size=validation_batch_size,
            validation_freq=validation_freq,
            initial_epoch=initial_epoch,
        )
        # The epoch loop is written out here, as in Keras' fit: train_step is
        # called straight from fit (one frame less for a student stepping in).
        with InterruptGuard() as guard:
            try:
                initial_epoch, skip = self._begin_training(cbks, guard, initial_epoch)
                epoch_logs: dict = {}
                plan = None
                for epoch in range(initial_epoch, run.epochs):
                    self._begin_epoch(cbks, epoch, skip)
                    for step, (xb, yb, swb) in train_iter.enumerate_epoch():
                        if step < skip:  # trained before the state was saved
                            continue
                        where = f"fit(): epoch {epoch + 1}/{run.epochs}, step {step + 1}/{run.steps or '?'}"
                        if run.check_batches:
                            xb, yb = self._check_fit_batch(xb, yb, where)
                        cbks.on_train_batch_begin(step)
                        with guard.step():
                            if plan is None or self._run_eagerly:  # Keras traces fit's step once
                                plan = self._trace("fit", run.signature)
                            self._plan, self._where = plan, where
                            logs = self.train_step((xb, yb, batch_sample_weight(yb, swb, run.class_weight)))
                            self.training_progress = training_state.TrainingProgress(
                                epoch, step + 1, self.training_progress.shuffle_state
                            )
                        cbks.on_train_batch_end(step, logs)
                        guard.raise_if_pending()
                        if self.stop_training:
                            break
                    if train_iter.ran_out:  # no batch: no loss to log (issue 15)
                        break
                    skip = 0
                    epoch_logs = self._end_epoch(run, cbks, epoch)
                    if self.stop_training:
                        break
            except KeyboardInterrupt as interrupt:
                self._after_interrupt(cbks, guard, interrupt, epochs, train_iter.num_batches)
                raise
        cbks.on_train_end(logs=epoch_logs)
        history = next((c for c in cbks.callbacks if isinstance(c, History)), None)
        self.history = history
        return history

    def _prepare_fit(
        self,
        *,
        x,
        y,
        batch_size,
        epochs,
        verbose,
        callbacks,
        validation_split,
        validation_data,
        shuffle,
        class_weight,
        sample_weight,
        steps_per_epoch,
        validation_steps,
        validation_batch_size,
        validation_freq,
        initial_epoch,
    ):
        """Check ``fit``'s arguments and set up its batches and callbacks; returns
        ``(run, callbacks, batches)``."""
        from ..callbacks import CallbackList

        self._assert_compiled("fit")
        if isinstance(validation_data, list) and len(validation_data) in (2, 3):
            validation_data = tuple(validation_data)  # Keras reads a list as a tuple
        checks.check_fit_arguments(epochs, initial_epoch, validation_split, validation_freq, validation_data)
        x, y, arrays = self._checked_arrays(x, y, "fit()")
        if sample_weight is not None:
            if not arrays:
                raise ValueError(
                    "`sample_weight` argument is not supported when using a dataset or "
                    "generator: yield (x, y, sample_weight) batches instead."
                )
            sample_weight = check_sample_weight(sample_weight, num_samples(x))
        if class_weight is not None:
            class_weight = check_class_weight(
                class_weight, num_classes_of(self.output_shape) if self.built else None
            )
        if validation_split and validation_data is None:
            if sample_weight is not None:
                cut = num_samples(x) - num_samples(split_validation(x, y, validation_split)[1][0])
                sample_weight = sample_weight[:cut]
            (x, y), validation_data = split_validation(x, y, validation_split)
        if isinstance(validation_data, tuple):
            vx, vy, _ = self._checked_arrays(
                validation_data[0], validation_data[1], "fit(validation_data=...)"
            )
            validation_data = (vx, vy) if len(validation_data) == 2 else (vx, vy, validation_data[2])
        checks.check_validation_data(self, validation_data)  # issue 15: before step 1
        self._bce_unchecked = getattr(self.loss, "name", None) == "binary_crossentropy"
        if arrays and y is not None and self._bce_unchecked:
            checks.check_binary_targets(y, "fit()")
            self._bce_unchecked = False
        train_iter = EpochIterator(
            x,
            y,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            shuffle=shuffle,
            sample_weight=sample_weight,
        )
        verbose = 1 if verbose == "auto" else verbose
        cbks = (
            callbacks
            if isinstance(callbacks, CallbackList)
            else CallbackList(
                callbacks,
                add_history=True,
                add_progbar=verbose != 0,
                model=self,
                verbose=verbose,
                epochs=epochs,
                steps=train_iter.num_batches,
            )
        )
        self.stop_training = False
        self._nonfinite_loss_warned = False
        self._divergence = DivergenceMonitor()
        run = _FitRun(
            epochs=epochs,
            steps=train_iter.num_batches,
            check_batches=not arrays,
            validation_data=validation_data,
            validation_steps=validation_steps,
            validation_batch_size=validation_batch_size or batch_size,
            validation_freq=validation_freq,
            class_weight=class_weight,
            signature=self._fit_signature(x, y, arrays, batch_size or 32),
        )
        return run, cbks, train_iter

    def _begin_training(self, cbks, guard, initial_epoch):
        """``on_train_begin``; returns the epoch to start at and how many of its batches
        are done already (both from a state ``BackupAndRestore`` restored)."""
        cbks.on_train_begin()
        if self._initial_epoch is not None:  # BackupAndRestore restored a state
            initial_epoch, self._initial_epoch = self._initial_epoch, None
        skip = self._resume_point(initial_epoch)
        guard.training_started = True  # from here on, a state is worth saving
        return initial_epoch, skip

    def _begin_epoch(self, cbks, epoch, skip) -> None:
        self.reset_metrics()
        # Recorded before this epoch draws its shuffle, so a state saved
        # mid-epoch can replay it; `skip` batches of a resumed epoch are done already.
        self.training_progress = training_state.TrainingProgress(epoch, skip, nv_random.get_state())
        cbks.on_epoch_begin(epoch)

    def _end_epoch(self, run, cbks, epoch) -> dict:
        """The epoch's logs, validation included when it is due; ``on_epoch_end``."""
        epoch_logs = self._logs()
        if run.validation_data is not None and (epoch + 1) % run.validation_freq == 0:
            vx, vy, vsw = (
                unpack_batch(run.validation_data)
                if isinstance(run.validation_data, tuple)
                else (run.validation_data, None, None)
            )
            val_logs = self.evaluate(
                vx,
                vy,
                batch_size=run.validation_batch_size,
                sample_weight=vsw,
                steps=run.validation_steps,
                callbacks=cbks,
                return_dict=True,
                verbose=0,
            )
            epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
        self.training_progress = training_state.TrainingProgress(epoch + 1, 0, nv_random.get_state())
        cbks.on_epoch_end(epoch, epoch_logs)
        return epoch_logs

    def _fit_signature(self, x, y, arrays, batch_size):
        """What Keras' fit traces on: the batches' shape signature (see :mod:`.train_plan`)."""
        if not arrays:
            return (None,)  # one trace per compile for datasets and generators
        return train_plan.fit_signature(num_samples(x), batch_size, x, y)

    def _after_interrupt(self, cbks, guard, interrupt, epochs, steps):
        """Ctrl-C reached fit: let callbacks save a consistent state, explain, re-raise."""
        if not guard.training_started:
            interrupt.add_note(
                "numvgg: fit() was interrupted before its first epoch started; nothing was saved."
            )
            return
        progress = self.training_progress
        at = (
            f"epoch {progress.epoch + 1}/{epochs}, after {progress.step}/{steps or '?'} batch(es)"
            if progress is not None
            else "before the first epoch"
        )
        if guard.torn:
            interrupt.add_note(
                f"numvgg: fit() was interrupted inside a training step ({at}); the weights may be "
                "half-updated, so no callback was asked to save them. Files saved earlier are intact."
            )
            return
        saved = []
        for callback in cbks.callbacks:
            hook = getattr(callback, "on_train_interrupted", None)
            if hook is not None:
                hook(self._logs())
                saved.append(type(callback).__name__)
        what = f"; {', '.join(saved)} saved the training state" if saved else ""
        interrupt.add_note(
            f"numvgg: fit() stopped cleanly at {at}{what}. model.history holds the epochs completed."
        )

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size=None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict=False,
    ):
        """Loss and metrics over the data (sample-weighted means, as Keras)."""

        self._assert_compiled("evaluate")
        x, y, arrays = self._checked_arrays(x, y, "evaluate()")
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, num_samples(x))
        it = EpochIterator(
            x, y, batch_size=batch_size, steps_per_epoch=steps, shuffle=False, sample_weight=sample_weight
        )
        cbks = self._one_pass_callbacks(callbacks, verbose, it.num_batches)
        self.reset_metrics()
        cbks.on_test_begin()
        logs = {}
        for step, (xb, yb, swb) in it.enumerate_epoch():
            if not arrays:
                xb, yb = self._check_batch(xb, yb, f"evaluate(): step {step + 1}")
            cbks.on_test_batch_begin(step)
            logs = self.test_step((xb, yb, swb))
            cbks.on_test_batch_end(step, logs)
        logs = self._logs() if not it.ran_out else no_sample_logs(self._logs())  # issue 15
        cbks.on_test_end(logs)
        return logs if return_dict else self._flatten_logs(logs)

    def _one_pass_callbacks(self, callbacks, verbose, steps):
        """The callbacks of one ``evaluate``/``predict`` pass: the caller's own list when
        ``fit`` passes it on, else a new one with a progress bar unless ``verbose=0``."""
        from ..callbacks import CallbackList

        if isinstance(callbacks, CallbackList):
            return callbacks
        verbose = 1 if verbose == "auto" else verbose
        return CallbackList(
            callbacks,
            add_history=False,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=1,
            steps=steps,
        )

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for every sample, concatenated; batches of 32 by default.
        A dataset's targets, if any, are ignored. NaN or inf in array inputs
        gets a warning naming the samples (their outputs will not be finite)."""

        x, _, arrays = self._checked_arrays(x, None, "predict()", need_targets=False, finite=False)
        for name, a in _named_arrays("x", x) if arrays else []:
            report = checks.nonfinite_report(a, name)
            if report:
                warnings.warn(
                    f"predict(): {report}; their predictions will not be finite.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        it = EpochIterator(
            x, None, batch_size=batch_size, steps_per_epoch=steps, shuffle=False, need_targets=False
        )
        cbks = self._one_pass_callbacks(callbacks, verbose, it.num_batches)
        cbks.on_predict_begin()
        outputs = []
        for step, (xb, _, _) in it.enumerate_epoch():
            if not arrays:
                xb = checks.as_sample_array(xb, f"predict(): step {step + 1}: the batch's x")
                checks.check_input_shape(self, xb, f"predict(): step {step + 1}")
            cbks.on_predict_batch_begin(step)
            outputs.append(self.predict_step((xb,)))
            cbks.on_predict_batch_end(step, {"outputs": outputs[-1]})
        cbks.on_predict_end()
        if not outputs:
            raise ValueError("predict() received no data.")
        if not self._single_output:
            return [np.concatenate([o[i] for o in outputs], axis=0) for i in range(len(outputs[0]))]
        return np.concatenate(outputs, axis=0)


class _FitRun(NamedTuple):
    """What stays fixed during one ``fit`` call."""

    epochs: int
    steps: int | None
    check_batches: bool  # a dataset's batches are checked one by one; arrays were checked whole
    validation_data: object
    validation_steps: int | None
    validation_batch_size: int | None
    validation_freq: int
    class_weight: dict | None  # weights the training batches only, never the validation data
    signature: tuple  # what Keras' fit traces on (see train_plan.fit_signature)


def _named_arrays(name, value) -> list:
    """``[(name, array)]``, or ``[("x[0]", a0), ...]`` for a list of arrays."""
    if isinstance(value, list):
        return [(f"{name}[{i}]", a) for i, a in enumerate(value) if a is not None]
    return [(name, value)]
