"""Stateful metrics, Keras 3 style: ``update_state`` per batch, ``result`` any
time, ``reset_state`` at the start of each epoch.

The accuracies and means are a running, weighted **mean** kept in two float32
numbers, ``total`` and ``count`` (Keras' ``Mean``); ``Precision``, ``Recall``
and ``AUC`` keep confusion counts instead (see their section at the end). The accuracies are means of a
per-sample 0/1 match (Keras' ``MeanMetricWrapper``), so the accuracy of an
epoch is ``matches / samples`` over the whole epoch, not a mean of per-batch
accuracies.

``get`` resolves names the way ``model.compile(metrics=[...])`` does, including
Keras' choice of accuracy for ``"acc"`` / ``"accuracy"``.

This module also holds ``squeeze_or_expand_to_same_rank``, Keras' rule for
aligning targets with predictions, which :mod:`numvgg.losses` uses too (it sits
on this lower floor so both can import it).
"""

from __future__ import annotations

import abc

import numpy as np

from . import config
from .errors import ShapeError


def squeeze_or_expand_to_same_rank(x1: np.ndarray, x2: np.ndarray, expand_rank_1: bool = True):
    """Align two arrays whose ranks differ by exactly one trailing axis of size 1.

    Keras' rule (``keras/src/losses/loss.py``): when one array has one more
    axis and that axis has size 1, it is squeezed away -- except when the other
    array is rank 1, which instead gets a trailing axis. So targets ``(N,)``
    against predictions ``(N, 1)`` become ``(N, 1)``. Other shapes are returned
    unchanged.
    """
    x1, x2 = np.asarray(x1), np.asarray(x2)
    if x1.ndim == x2.ndim + 1 and x1.shape[-1] == 1:
        if x2.ndim == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    elif x2.ndim == x1.ndim + 1 and x2.shape[-1] == 1:
        if x1.ndim == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


# -- per-sample functions (Keras' keras.metrics.<name> functions) ----------------------------


def accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where ``y_pred == y_true`` exactly, else 0.0 (in ``config.floatx()``, elementwise)."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).astype(y_pred.dtype, copy=False)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return (y_true == y_pred).astype(config.floatx())


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> np.ndarray:
    """1.0 where ``(y_pred > threshold)`` equals the 0/1 target (elementwise).

    The threshold is a float32, as Keras makes it, and the comparison is
    strict: a prediction of exactly 0.5 counts as class 0.
    """
    y_true, y_pred = squeeze_or_expand_to_same_rank(np.asarray(y_true), np.asarray(y_pred))
    predicted = (y_pred > np.float32(threshold)).astype(y_true.dtype)
    return (y_true == predicted).astype(config.floatx())


def categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where ``argmax(y_pred) == argmax(y_true)`` (one-hot targets), per sample.
    Ties go to the first maximum, as in NumPy and TensorFlow."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ShapeError(
            f"categorical_accuracy: one-hot y_true of shape {y_true.shape} must match "
            f"y_pred of shape {y_pred.shape} (use sparse_categorical_accuracy for class indices)."
        )
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(config.floatx())


def sparse_categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where ``argmax(y_pred)`` equals the integer target, per sample.
    ``y_true`` has shape ``(N,)`` or ``(N, 1)``; ``y_pred`` ``(N, C)``."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).astype(y_pred.dtype, copy=False)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ShapeError(
            f"sparse_categorical_accuracy: y_true of shape {y_true.shape} must hold one class "
            f"index per sample for y_pred of shape {y_pred.shape}."
        )
    return (y_true == np.argmax(y_pred, axis=-1).astype(y_true.dtype)).astype(config.floatx())


# -- stateful metrics --------------------------------------------------------------------------


class Metric(abc.ABC):
    """Base class: a name, ``update_state``, ``result``, ``reset_state``.

    ``direction`` is ``"up"`` when larger is better (accuracies), ``"down"``
    when smaller is better (losses used as metrics), ``None`` when unknown;
    callbacks with ``mode="auto"`` read it (Keras keeps it as ``_direction``).
    """

    direction: str | None = None

    def __init__(self, name: str | None = None, dtype=None):
        self.name = name or type(self).__name__.lower()
        self.dtype = np.dtype(dtype or config.floatx())  # Keras: backend.floatx()
        self.reset_state()

    @abc.abstractmethod
    def update_state(self, *args, **kwargs) -> None:
        """Add one batch to the running totals."""

    @abc.abstractmethod
    def result(self) -> float:
        """The metric over everything added since the last reset."""

    @abc.abstractmethod
    def reset_state(self) -> None:
        """Forget everything added (``fit`` does it at each epoch)."""

    def __call__(self, *args, **kwargs) -> float:
        """Update with one batch and return the running result (Keras' ``metric(...)``)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} result={self.result():.4f}>"


class Mean(Metric):
    """Running weighted mean: ``result = total / count``.

    ``update_state(values, sample_weight=None)`` first reduces ``values`` to
    one number per sample (a mean over every axis after the first; a scalar is
    one sample), then adds ``sum(values * weights)`` to ``total`` and
    ``sum(weights)`` (or the number of samples) to ``count``. Both are float32,
    as Keras keeps them.

    How Keras 3's ``fit`` shows the loss: ``compile`` creates
    ``Mean(name="loss")`` (``Trainer._loss_tracker``), and every
    ``train_step`` calls ``update_state(batch_loss, sample_weight=batch_size)``
    (``keras/src/backend/tensorflow/trainer.py``), where ``batch_loss`` is the
    batch's reduced loss (a mean over its samples). So the loss printed after
    batch ``k`` -- and stored in ``history`` at the end of the epoch -- is
    ``sum_b(loss_b * n_b) / sum_b(n_b)`` over the batches seen so far this
    epoch: the mean per-sample loss, with a smaller last batch weighted by its
    size. Each loss was measured *before* that batch's update. The metrics are
    reset at the start of every epoch (and of ``evaluate``).
    """

    def __init__(self, name: str = "mean", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def reset_state(self) -> None:
        self.total = self.dtype.type(0)
        self.count = self.dtype.type(0)

    def update_state(self, values, sample_weight=None) -> None:
        values, weights = _reduce_to_samplewise_values(values, sample_weight, self.dtype)
        self.total = self.dtype.type(self.total + np.sum(values, dtype=self.dtype))
        if weights is not None:
            num_samples = np.sum(weights, dtype=self.dtype)
        else:
            num_samples = values.shape[0] if values.ndim >= 1 else 1
        self.count = self.dtype.type(self.count + self.dtype.type(num_samples))

    def result(self) -> float:
        """``total / count`` as a Python float (0.0 before any update, like
        Keras' ``divide_no_nan``)."""
        if self.count == 0:
            return 0.0
        return float(self.total / self.count)


def _reduce_to_samplewise_values(values, sample_weight, dtype):
    """Keras' ``reduce_to_samplewise_values`` with a mean: per-sample values
    (weighted), and per-sample weights (or None)."""
    values = np.asarray(values, dtype=dtype)
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=dtype)
        values, weights = squeeze_or_expand_to_same_rank(values, weights)
        weight_ndim = weights.ndim
        if values.ndim > weight_ndim:
            values = np.mean(values, axis=tuple(range(weight_ndim, values.ndim)))
        try:
            weights = np.broadcast_to(weights, values.shape)
        except ValueError as err:
            raise ShapeError(
                f"sample_weight of shape {np.shape(sample_weight)} does not fit values of "
                f"shape {values.shape}."
            ) from err
        values = values * weights
        if weight_ndim > 1:
            weights = np.mean(weights, axis=tuple(range(1, weight_ndim)))
    if values.ndim > 1:
        values = np.mean(values, axis=tuple(range(1, values.ndim)))
    return values, weights


class MeanMetricWrapper(Mean):
    """The mean of ``fn(y_true, y_pred, **kwargs)`` over all samples seen.

    ``fn`` returns per-sample (or per-entry) values; each sample counts once
    (or by its ``sample_weight``).
    """

    def __init__(self, fn, name: str | None = None, dtype=None, **kwargs):
        self._fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name=name or getattr(fn, "__name__", "mean_metric_wrapper"), dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight=sample_weight)


class Accuracy(MeanMetricWrapper):
    """How often ``y_pred`` equals ``y_true`` exactly (for labels, not probabilities)."""

    direction = "up"

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches 0/1 targets.

    A sample with several outputs counts as the mean of its entries.
    """

    direction = "up"

    def __init__(self, name: str = "binary_accuracy", dtype=None, threshold: float = 0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    """How often ``argmax(y_pred)`` matches one-hot targets (logits work too)."""

    direction = "up"

    def __init__(self, name: str = "categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often ``argmax(y_pred)`` matches integer class targets."""

    direction = "up"

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


# -- names ------------------------------------------------------------------------------------

ALL_METRICS = {}
for _cls, _snake in (
    (Mean, "mean"),
    (Accuracy, "accuracy"),
    (BinaryAccuracy, "binary_accuracy"),
    (CategoricalAccuracy, "categorical_accuracy"),
    (SparseCategoricalAccuracy, "sparse_categorical_accuracy"),
):
    ALL_METRICS[_cls.__name__] = ALL_METRICS[_snake] = _cls

_BINARY_LOSSES = {"binary_crossentropy", "binarycrossentropy", "bce"}
_SPARSE_LOSSES = {"sparse_categorical_crossentropy", "sparsecategoricalcrossentropy"}


def _loss_kind(loss) -> str:
    """A loss object or name, normalised to a lower-case name."""
    if loss is None:
        return ""
    if isinstance(loss, str):
        return loss.lower()
    return type(loss).__name__.lower()


def choose_accuracy(loss=None, output_shape=None, y_true_shape=None):
    """The accuracy class Keras uses for ``"acc"`` / ``"accuracy"``.

    Keras 3 (``trainers/compile_utils.py``, ``is_binary_or_sparse_categorical``)
    decides from the shapes of the first batch:

    * **binary** when the model's output has last dimension 1;
    * else **sparse categorical** when ``y_true`` has fewer axes than the
      output, or a last dimension of 1;
    * else **categorical**.

    When ``y_true_shape`` is not known yet, numvgg reads the target layout from
    the loss instead (sparse cross-entropy means integer targets); with no
    output shape either, binary cross-entropy means binary accuracy. Returns
    ``None`` when nothing is known.
    """
    kind = _loss_kind(loss)
    if output_shape is not None:
        is_binary = output_shape[-1] == 1
        if y_true_shape is not None:
            is_sparse = len(y_true_shape) < len(output_shape) or (
                y_true_shape[-1] == 1 and output_shape[-1] > 1
            )
        else:
            is_sparse = kind in _SPARSE_LOSSES
    elif kind:
        is_binary = kind in _BINARY_LOSSES
        is_sparse = kind in _SPARSE_LOSSES
    else:
        return None
    if is_binary:
        return BinaryAccuracy
    return SparseCategoricalAccuracy if is_sparse else CategoricalAccuracy


def get(identifier, loss=None, output_shape=None, y_true_shape=None) -> Metric:
    """Return a metric for ``identifier``, as ``compile(metrics=[...])`` would.

    Args:
        identifier: a :class:`Metric` (returned unchanged), a ``Metric``
            subclass, a name (``"binary_accuracy"``, ``"BinaryAccuracy"``,
            ``"mean"`` ...; the metric takes the name as given), ``"acc"`` /
            ``"accuracy"`` (see :func:`choose_accuracy`; the metric keeps the
            name you wrote, so the history has ``acc`` and ``val_acc``), a
            numvgg ``Loss`` (the mean of its per-sample values) or a function
            ``fn(y_true, y_pred) -> per-sample values``.
        loss: the compiled loss (object or name), used for ``"acc"``.
        output_shape: the model's output shape, e.g. ``(None, 1)``.
        y_true_shape: the targets' shape, when known (first batch).

    Raises:
        ValueError: unknown names (listing the known ones), or ``"acc"`` with
            neither a loss nor an output shape to choose from.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        if identifier.lower() in ("acc", "accuracy"):
            cls = choose_accuracy(loss, output_shape, y_true_shape)
            if cls is None:
                raise ValueError(
                    f"Metric {identifier!r} means binary, categorical or sparse categorical "
                    "accuracy depending on the model; pass `loss=` or `output_shape=` to choose "
                    "(model.compile does), or name the metric explicitly."
                )
            return cls(name=identifier)
        if identifier not in ALL_METRICS:
            raise ValueError(
                f"Unknown metric {identifier!r}. numvgg knows: 'acc', "
                f"{', '.join(repr(k) for k in sorted(ALL_METRICS))}."
            )
        return ALL_METRICS[identifier](name=identifier)
    if hasattr(identifier, "call") and hasattr(identifier, "reduction"):  # a numvgg Loss
        metric = MeanMetricWrapper(identifier.call, name=identifier.name)
        metric.direction = "down"
        return metric
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


# -- confusion counts: Precision, Recall, AUC (Keras 3's rules) --------------------------------
#
# Each keeps running, weighted counts of true/false positives/negatives at one or more
# thresholds, over every entry of y_pred (a (N, 1) binary output, or each column of a
# multi-label output: Keras' "micro" counting). A prediction is positive when it is
# *strictly greater* than the threshold; a target when it is non-zero. A sample_weight (N,)
# weights every entry of its sample. Counts are float32, as Keras keeps them; ratios use
# "0 when the denominator is 0" (Keras' divide_no_nan).

_EPSILON = 1e-7  # keras.backend.epsilon(), the end thresholds' margin


def _divide_no_nan(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return np.where(b == 0, np.float32(0), a / np.where(b == 0, np.float32(1), b))


class _ConfusionCounts(Metric):
    """Weighted ``tp, fp, tn, fn`` per threshold; ``update_state(y_true, y_pred, sample_weight)``."""

    def __init__(self, thresholds, class_id=None, name=None, dtype=None):
        self.thresholds = np.asarray(thresholds, dtype=np.float32).reshape(-1)  # (T,)
        if class_id is not None and (not isinstance(class_id, (int, np.integer)) or class_id < 0):
            raise ValueError(
                f"{type(self).__name__}: `class_id` must be a column index >= 0 or None. "
                f"Received: class_id={class_id!r}"
            )
        self.class_id = class_id
        super().__init__(name=name, dtype=dtype)

    def reset_state(self) -> None:
        zeros = np.zeros(len(self.thresholds), np.float32)
        self.true_positives, self.false_positives = zeros.copy(), zeros.copy()
        self.true_negatives, self.false_negatives = zeros.copy(), zeros.copy()

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_true = np.asarray(y_true, np.float32)
        y_pred = np.asarray(y_pred, np.float32)
        if y_true.ndim == y_pred.ndim - 1:
            y_true = y_true[..., None]  # (N,) targets for (N, 1) outputs
        if y_true.shape != y_pred.shape:
            raise ShapeError(
                f"{self.name}: y_true of shape {y_true.shape} does not match y_pred of shape {y_pred.shape}."
            )
        weights = np.ones_like(y_pred)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, np.float32)
            sw = sw.reshape(sw.shape + (1,) * (y_pred.ndim - sw.ndim))
            try:
                weights = np.broadcast_to(sw, y_pred.shape).astype(np.float32)
            except ValueError as err:
                raise ShapeError(
                    f"{self.name}: sample_weight of shape {np.shape(sample_weight)} does "
                    f"not fit y_pred of shape {y_pred.shape}."
                ) from err
        if self.class_id is not None:
            if self.class_id >= y_pred.shape[-1]:
                raise ValueError(
                    f"{self.name}: class_id={self.class_id} but y_pred has only {y_pred.shape[-1]} columns."
                )
            y_true, y_pred, weights = (a[..., self.class_id] for a in (y_true, y_pred, weights))
        truth = y_true.reshape(-1) != 0  # (E,)
        above = y_pred.reshape(-1)[None, :] > self.thresholds[:, None]  # (T, E)
        w = weights.reshape(-1)[None, :]  # (1, E)
        self.true_positives += np.sum(w * (above & truth), axis=1, dtype=np.float32)
        self.false_positives += np.sum(w * (above & ~truth), axis=1, dtype=np.float32)
        self.true_negatives += np.sum(w * (~above & ~truth), axis=1, dtype=np.float32)
        self.false_negatives += np.sum(w * (~above & truth), axis=1, dtype=np.float32)

    def _single_or_list(self, values):
        values = np.asarray(values, np.float32)
        return float(values[0]) if len(values) == 1 else [float(v) for v in values]


class Precision(_ConfusionCounts):
    """``tp / (tp + fp)``: of the predicted positives, how many are positive.

    ``thresholds``: ``None`` (0.5), a float, or a list (then ``result()`` is a
    list, one precision per threshold). ``class_id``: count only that column.
    """

    direction = "up"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="precision", dtype=None):
        if top_k is not None:
            raise ValueError(
                "Precision: `top_k` is not available in numvgg; use `thresholds` "
                "(and `class_id` for one column)."
            )
        super().__init__(0.5 if thresholds is None else thresholds, class_id, name, dtype)

    def result(self):
        return self._single_or_list(
            _divide_no_nan(self.true_positives, self.true_positives + self.false_positives)
        )


class Recall(_ConfusionCounts):
    """``tp / (tp + fn)``: of the positives, how many were predicted positive.

    ``thresholds`` and ``class_id`` as for :class:`Precision`.
    """

    direction = "up"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall", dtype=None):
        if top_k is not None:
            raise ValueError(
                "Recall: `top_k` is not available in numvgg; use `thresholds` "
                "(and `class_id` for one column)."
            )
        super().__init__(0.5 if thresholds is None else thresholds, class_id, name, dtype)

    def result(self):
        return self._single_or_list(
            _divide_no_nan(self.true_positives, self.true_positives + self.false_negatives)
        )


CURVES = ("ROC", "PR")
SUMMATION_METHODS = ("interpolation", "minoring", "majoring")


class AUC(_ConfusionCounts):
    """Area under the ROC or precision-recall curve, from counts at fixed thresholds.

    As Keras: ``num_thresholds`` (200) thresholds ``i / (num_thresholds - 1)``
    for ``i = 1 .. num_thresholds - 2``, plus ``-1e-7`` and ``1 + 1e-7`` at the
    ends (or your ``thresholds``, sorted, with the same two ends). ROC: the
    trapezoid rule over (false positive rate, recall) points, or the lower /
    upper step with ``'minoring'`` / ``'majoring'``. PR with
    ``'interpolation'``: Davis & Goadrich's interpolation of precision
    between thresholds (Keras' ``interpolate_pr_auc``). ``from_logits``
    applies a sigmoid first. ``multi_label`` is not available (entries are
    counted together, Keras' default).
    """

    direction = "up"

    def __init__(
        self,
        num_thresholds=200,
        curve="ROC",
        summation_method="interpolation",
        name="auc",
        dtype=None,
        thresholds=None,
        multi_label=False,
        from_logits=False,
    ):
        curve = str(curve).upper()
        if curve not in CURVES:
            raise ValueError(f"AUC: invalid `curve` {curve!r}. Expected one of {CURVES}.")
        if str(summation_method).lower() not in SUMMATION_METHODS:
            raise ValueError(
                f"AUC: invalid `summation_method` {summation_method!r}. Expected one of {SUMMATION_METHODS}."
            )
        if multi_label:
            raise ValueError(
                "AUC: `multi_label=True` is not available in numvgg (entries of all "
                "labels are counted together, Keras' default multi_label=False)."
            )
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
        else:
            if not isinstance(num_thresholds, (int, np.integer)) or num_thresholds <= 1:
                raise ValueError(
                    "AUC: argument `num_thresholds` must be an integer > 1. "
                    f"Received: num_thresholds={num_thresholds!r}"
                )
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.curve, self.summation_method = curve, str(summation_method).lower()
        self.from_logits = bool(from_logits)
        super().__init__([0.0 - _EPSILON] + inner + [1.0 + _EPSILON], None, name, dtype)
        self.num_thresholds = len(self.thresholds)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if self.from_logits:
            y_pred = 1.0 / (1.0 + np.exp(-np.asarray(y_pred, np.float32)))
        super().update_state(y_true, y_pred, sample_weight)

    def _interpolate_pr_auc(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        safe_ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), np.float32(1))
        increment = _divide_no_nan(
            slope * (dtp + intercept * np.log(safe_ratio)), np.maximum(tp[1:] + fn[1:], 0)
        )
        return float(np.sum(increment, dtype=np.float32))

    def result(self):
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, _divide_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / np.float32(2)
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return float(np.sum((x[:-1] - x[1:]) * heights, dtype=np.float32))


for _cls, _snake in ((Precision, "precision"), (Recall, "recall"), (AUC, "auc")):
    ALL_METRICS[_cls.__name__] = ALL_METRICS[_snake] = _cls
