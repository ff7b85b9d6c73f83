"""Metrics from confusion counts: ``Precision``, ``Recall``, ``AUC`` (Keras 3's rules).

Each keeps running, weighted counts of true/false positives/negatives at one
or more thresholds, over every entry of ``y_pred`` (a ``(N, 1)`` binary
output, or each column of a multi-label output: Keras' "micro" counting).
A prediction counts as positive when it is **strictly greater** than the
threshold; a target counts as positive when it is non-zero. A
``sample_weight`` ``(N,)`` weights every entry of its sample. The counts are
float32, as Keras keeps them; ratios use "divide, 0 when the denominator is
0" (Keras' ``divide_no_nan``).
"""
from __future__ import annotations

import numpy as np

from .errors import ShapeError
from .metrics import Metric

EPSILON = 1e-7          # keras.backend.epsilon()


def _divide_no_nan(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return np.where(b == 0, np.float32(0), a / np.where(b == 0, np.float32(1), b))


class _ConfusionCounts(Metric):
    """Weighted ``tp, fp, tn, fn`` per threshold; ``update_state(y_true, y_pred, sample_weight)``."""

    def __init__(self, thresholds, class_id=None, name=None, dtype=None):
        self.thresholds = np.asarray(thresholds, dtype=np.float32).reshape(-1)   # (T,)
        if class_id is not None and (not isinstance(class_id, (int, np.integer)) or class_id < 0):
            raise ValueError(f"{type(self).__name__}: `class_id` must be a column index >= 0 or None. "
                             f"Received: class_id={class_id!r}")
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
            y_true = y_true[..., None]                        # (N,) targets for (N, 1) outputs
        if y_true.shape != y_pred.shape:
            raise ShapeError(f"{self.name}: y_true of shape {y_true.shape} does not match y_pred of "
                             f"shape {y_pred.shape}.")
        weights = np.ones_like(y_pred)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, np.float32)
            sw = sw.reshape(sw.shape + (1,) * (y_pred.ndim - sw.ndim))
            try:
                weights = np.broadcast_to(sw, y_pred.shape).astype(np.float32)
            except ValueError as err:
                raise ShapeError(f"{self.name}: sample_weight of shape {np.shape(sample_weight)} does "
                                 f"not fit y_pred of shape {y_pred.shape}.") from err
        if self.class_id is not None:
            if self.class_id >= y_pred.shape[-1]:
                raise ValueError(f"{self.name}: class_id={self.class_id} but y_pred has only "
                                 f"{y_pred.shape[-1]} columns.")
            y_true, y_pred, weights = (a[..., self.class_id] for a in (y_true, y_pred, weights))
        truth = y_true.reshape(-1) != 0                                   # (E,)
        above = y_pred.reshape(-1)[None, :] > self.thresholds[:, None]    # (T, E)
        w = weights.reshape(-1)[None, :]                                  # (1, E)
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
            raise ValueError("Precision: `top_k` is not available in numvgg; use `thresholds` "
                             "(and `class_id` for one column).")
        super().__init__(0.5 if thresholds is None else thresholds, class_id, name, dtype)

    def result(self):
        return self._single_or_list(_divide_no_nan(self.true_positives,
                                                   self.true_positives + self.false_positives))


class Recall(_ConfusionCounts):
    """``tp / (tp + fn)``: of the positives, how many were predicted positive.

    ``thresholds`` and ``class_id`` as for :class:`Precision`.
    """

    direction = "up"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall", dtype=None):
        if top_k is not None:
            raise ValueError("Recall: `top_k` is not available in numvgg; use `thresholds` "
                             "(and `class_id` for one column).")
        super().__init__(0.5 if thresholds is None else thresholds, class_id, name, dtype)

    def result(self):
        return self._single_or_list(_divide_no_nan(self.true_positives,
                                                   self.true_positives + self.false_negatives))


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

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name="auc",
                 dtype=None, thresholds=None, multi_label=False, from_logits=False):
        curve = str(curve).upper()
        if curve not in CURVES:
            raise ValueError(f"AUC: invalid `curve` {curve!r}. Expected one of {CURVES}.")
        if str(summation_method).lower() not in SUMMATION_METHODS:
            raise ValueError(f"AUC: invalid `summation_method` {summation_method!r}. Expected one of "
                             f"{SUMMATION_METHODS}.")
        if multi_label:
            raise ValueError("AUC: `multi_label=True` is not available in numvgg (entries of all "
                             "labels are counted together, Keras' default multi_label=False).")
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
        else:
            if not isinstance(num_thresholds, (int, np.integer)) or num_thresholds <= 1:
                raise ValueError("AUC: argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds!r}")
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.curve, self.summation_method = curve, str(summation_method).lower()
        self.from_logits = bool(from_logits)
        super().__init__([0.0 - EPSILON] + inner + [1.0 + EPSILON], None, name, dtype)
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
        increment = _divide_no_nan(slope * (dtp + intercept * np.log(safe_ratio)),
                                   np.maximum(tp[1:] + fn[1:], 0))
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
