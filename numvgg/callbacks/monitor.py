"""``MonitorCallback``: "did the watched metric improve?" (Keras 3's ``MonitorCallback``).

Shared by ``EarlyStopping``, ``ReduceLROnPlateau`` and ``ModelCheckpoint``.

With ``mode="min"`` a value improves on the best one when
``value < best - min_delta``; with ``mode="max"`` when ``value > best + min_delta``.
The first value seen (``best is None``) always counts as an improvement.

``mode="auto"`` picks the direction from the metric's name, without its
``val_`` prefix, in this order:

1. ``loss`` is minimised;
2. a metric object in ``model.metrics`` with that ``name`` and a ``direction``
   (or Keras' private ``_direction``) of ``"up"`` or ``"down"`` decides: this
   is Keras 3's rule;
3. Keras' built-in metric names (table below): ``binary_accuracy`` up,
   ``mean_squared_error`` down, ...;
4. any other name containing ``acc`` (``acc``, ``val_acc``) is maximised, which
   was Keras 2's rule;
5. otherwise ``ValueError``, as in Keras 3: pass ``mode="min"`` or ``"max"``.
"""

from __future__ import annotations

import operator
import warnings

from .callback import Callback
from .logs import NoSamples

# Directions of Keras 3's built-in metrics, under the names they log with.
KERAS_METRIC_DIRECTIONS = {
    **dict.fromkeys(
        [
            "accuracy",
            "binary_accuracy",
            "categorical_accuracy",
            "sparse_categorical_accuracy",
            "top_k_categorical_accuracy",
            "sparse_top_k_categorical_accuracy",
            "auc",
            "precision",
            "recall",
            "f1_score",
            "fbeta_score",
            "r2_score",
            "iou",
            "mean_iou",
            "cosine_similarity",
            "pearson_correlation",
            "concordance_correlation",
        ],
        "max",
    ),
    **dict.fromkeys(
        [
            "mean_squared_error",
            "mse",
            "mean_absolute_error",
            "mae",
            "mean_absolute_percentage_error",
            "mape",
            "mean_squared_logarithmic_error",
            "msle",
            "root_mean_squared_error",
            "binary_crossentropy",
            "categorical_crossentropy",
            "sparse_categorical_crossentropy",
            "kl_divergence",
            "poisson",
            "hinge",
            "squared_hinge",
            "categorical_hinge",
            "log_cosh_error",
        ],
        "min",
    ),
}


def _model_metrics(model) -> list:
    """``model.metrics`` as a flat list; containers exposing ``.metrics`` are opened."""
    found = []
    for metric in getattr(model, "metrics", None) or []:
        inner = getattr(metric, "metrics", None)
        found.extend(inner if isinstance(inner, (list, tuple)) else [metric])
    return found


def infer_mode(monitor: str, model=None, owner: str = "MonitorCallback") -> str:
    """``"min"`` or ``"max"`` for the metric named ``monitor`` (rules in the module docstring).

    Raises:
        ValueError: the direction cannot be told from the name or the model.
    """
    name = monitor.removeprefix("val_")
    if name == "loss":
        return "min"
    for metric in _model_metrics(model):
        if getattr(metric, "name", None) == name:
            direction = getattr(metric, "direction", None) or getattr(metric, "_direction", None)
            if direction in ("up", "down"):
                return "max" if direction == "up" else "min"
    if name in KERAS_METRIC_DIRECTIONS:
        return KERAS_METRIC_DIRECTIONS[name]
    if "acc" in name:
        return "max"
    raise ValueError(
        f"{owner} callback received monitor={monitor}, but numvgg isn't able to "
        "automatically determine whether that metric should be maximized or "
        "minimized. Pass `mode='max'` in order to monitor based on the highest "
        "metric value, or pass `mode='min'` in order to use the lowest value."
    )


def skip_if_no_samples(value, monitor: str, owner: str) -> bool:
    """True (with a warning) when ``value`` was computed over zero samples
    (:class:`numvgg.callbacks.logs.NoSamples`): such a value is never an
    improvement, nor a lack of one, so the callback ignores this epoch."""
    if not isinstance(value, NoSamples):
        return False
    warnings.warn(
        f"{owner}: `{monitor}` was computed over zero samples this epoch (the "
        "validation data ran out?); ignoring it.",
        stacklevel=3,
    )
    return True


class MonitorCallback(Callback):
    """Base class of callbacks that watch one metric.

    Args:
        monitor: the key in the epoch logs to watch (``"val_loss"``).
        mode: ``"auto"``, ``"min"`` or ``"max"``; an unknown mode warns and
            falls back to ``"auto"``, as in Keras.
        baseline: the starting ``best`` value; ``None`` lets the first value win.
        min_delta: the smallest change that counts as an improvement (its sign
            is ignored).

    The direction is settled at the first ``on_epoch_end`` (the model's metrics
    exist by then), in ``_set_monitor_op``.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=3
            )
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self) -> None:
        mode = self.mode if self.mode != "auto" else infer_mode(self.monitor, self.model, type(self).__name__)
        self.monitor_op = operator.lt if mode == "min" else operator.gt
        if mode == "min":
            # Then "value - min_delta < best" reads "value < best - |min_delta|".
            self.min_delta *= -1

    def _is_improvement(self, value, reference) -> bool:
        """Whether ``value`` beats ``reference`` by more than ``min_delta``."""
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))
