"""Sample weights for ``fit``/``evaluate``: ``class_weight``, ``sample_weight``, 3-tuples (Keras 3's rules).

What Keras does, and what these functions reproduce:

* a batch is ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``
  (:func:`unpack_x_y_sample_weight`);
* ``class_weight={0: 1.0, 1: 3.0}`` gives each sample the weight of its
  class (:func:`class_weight_to_sample_weights`): the class is
  ``argmax(y)`` for one-hot targets, ``round(y)`` for ``(N,)`` / ``(N, 1)``
  targets; a class missing from the dict weighs 1. Only the training data is
  weighted this way, never the validation data;
* ``class_weight`` and ``sample_weight`` together are an error;
* the loss is ``sum(loss_i * w_i) / N`` for the default reduction
  ``"sum_over_batch_size"`` (divided by the number of samples ``N``, *not*
  by ``sum(w)``): see :class:`numvgg.losses.Loss`;
* the *loss* shown in the progress bar and history averages the batch
  losses weighted by batch size (not by sample weights); metrics given as
  ``metrics=`` are *not* weighted, only those given as ``weighted_metrics=``.

numvgg checks the weights before the first training step, with errors that
name the argument (:func:`check_class_weight`, :func:`check_sample_weight`):
Keras would silently weigh an unknown class 1 (arrays) or fail inside the
input pipeline (datasets).
"""

from __future__ import annotations

import numbers

import numpy as np


def unpack_x_y_sample_weight(batch):
    """``(x, y, sample_weight)`` from ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sw)``
    (missing parts are ``None``; Keras' ``unpack_x_y_sample_weight``)."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch, None, None
    if len(batch) == 1:
        return batch[0], None, None
    if len(batch) == 2:
        return batch[0], batch[1], None
    if len(batch) == 3:
        return batch
    raise ValueError(
        f"A batch must be x, (x, y) or (x, y, sample_weight); got a tuple of {len(batch)} items."
    )


def num_classes_of(output_shape) -> int:
    """Classes a model with this output shape predicts: 2 for one unit (binary), else the units."""
    units = output_shape[-1]
    return 2 if units == 1 else int(units)


def check_class_weight(class_weight, num_classes: int | None = None) -> dict:
    """Validate ``class_weight`` (before training starts) and return it as ``{int: float}``.

    Raises:
        ValueError: not a dict, keys that are not class indices, a class the
            model does not have (with ``num_classes``), or weights that are
            not finite numbers >= 0.
    """
    if not isinstance(class_weight, dict):
        raise ValueError(
            f"`class_weight` must be a dict {{class index: weight}}, e.g. {{0: 1.0, 1: 2.0}}. "
            f"Received: class_weight={class_weight!r}"
        )
    clean = {}
    valid = f"0..{num_classes - 1}" if num_classes else "integers >= 0"
    for key, weight in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, numbers.Integral) or key < 0:
            raise ValueError(f"`class_weight` keys must be class indices ({valid}); got key {key!r}.")
        if num_classes is not None and key >= num_classes:
            raise ValueError(
                f"`class_weight` names class {key}, but the model predicts {num_classes} "
                f"classes ({valid}). Valid keys: {list(range(num_classes))}."
            )
        if not isinstance(weight, numbers.Real) or not np.isfinite(weight) or weight < 0:
            raise ValueError(f"`class_weight` for class {key} must be a finite number >= 0; got {weight!r}.")
        clean[int(key)] = float(weight)
    return clean


def class_weight_to_sample_weights(y, class_weight: dict) -> np.ndarray:
    """Per-sample weights ``(N,)`` float32 from the targets ``y`` (Keras' rule, see the module doc)."""
    y = np.asarray(y)
    if y.ndim > 1:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else np.squeeze(y, axis=-1)
    classes = np.round(y).astype(np.int64)  # round half to even, as np/tf.round
    lookup = np.vectorize(lambda c: class_weight.get(int(c), 1.0), otypes=[np.float32])
    return lookup(classes).reshape(len(classes)) if classes.size else np.zeros(0, np.float32)


def check_sample_weight(sample_weight, num_samples: int, name: str = "sample_weight") -> np.ndarray:
    """``sample_weight`` as float32, checked: one weight per sample (``(N,)`` or ``(N, 1)``), finite.

    Raises:
        ValueError: wrong length (both lengths named), wrong rank, or NaN/inf.
    """
    weights = np.asarray(sample_weight, dtype=np.float32)
    if weights.ndim == 0 or weights.ndim > 2 or (weights.ndim == 2 and weights.shape[1] != 1):
        raise ValueError(
            f"`{name}` must hold one weight per sample, shape ({num_samples},); got shape {weights.shape}."
        )
    if len(weights) != num_samples:
        raise ValueError(
            f"`{name}` has {len(weights)} weights but there are {num_samples} samples; "
            "give one weight per sample."
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return weights.reshape(num_samples)


def batch_sample_weight(y, sample_weight=None, class_weight: dict | None = None):
    """The weights one training batch uses: its own ``sample_weight``, or ``class_weight``'s, or None.

    Raises:
        ValueError: both are given (as Keras: "You cannot `class_weight` and
            `sample_weight` at the same time."), or ``sample_weight`` does not fit ``y``.
    """
    if class_weight is not None:
        if sample_weight is not None:
            raise ValueError("You cannot `class_weight` and `sample_weight` at the same time.")
        return class_weight_to_sample_weights(y, class_weight)
    if sample_weight is None:
        return None
    return check_sample_weight(sample_weight, len(np.asarray(y)))
