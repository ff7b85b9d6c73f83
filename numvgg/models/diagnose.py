"""Why did the loss blow up? A diagnosis from the weights, the logits and the losses so far.

Training can fail in two ways that look alike from the loss alone:

* the loss turns **NaN or infinite**: the question is what went bad first;
* the loss stays finite but **diverges**: Adam with ``learning_rate=1e10``
  gives losses around 1e20 for ever, never NaN, and deserves the same warning.

:func:`diagnose_nonfinite_loss` looks, in this order, at

1. the weights: NaN or inf in a weight means an earlier update blew up;
2. the weights and the logits (the last layer's input to its sigmoid or
   softmax): weights far beyond any trained network's (``|w| > 1e6``) or
   logits that overflowed float32 mean the updates were far too large.
   With SGD at ``learning_rate=1e10`` the sigmoid's output is a finite 0 or 1
   while its logits are ``inf``: looking at the predictions alone would
   wrongly blame the targets;
3. the predictions: non-finite with sane weights means an activation
   overflowed (inputs far larger than the model expects);
4. only then the targets, or predictions outside the loss's range.

:class:`DivergenceMonitor` is fed each batch's loss and flags, once, a finite
loss ``DIVERGENCE_FACTOR`` (1000) times the first batch's.

Both return a :class:`Diagnosis` (``None`` when nothing is wrong); the
training loop turns its ``message`` into a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.weights import layer_slots

# Trained CNN weights are far below 1 in magnitude (VGG16's largest is ~2.5);
# a weight past this has been blown up by the updates.
EXPLODED_WEIGHT = 1e6
# A logit past this saturates a float32 sigmoid/softmax completely (exp(88) overflows).
EXPLODED_LOGIT = 1e4
DIVERGENCE_FACTOR = 1e3

NONFINITE_WEIGHTS = "nonfinite weights"
EXPLODED_WEIGHTS = "exploded weights"
ACTIVATION_OVERFLOW = "activation overflow"
TARGETS = "targets"
DIVERGING = "diverging"


@dataclass(frozen=True)
class Diagnosis:
    """What most likely went wrong: ``kind`` (one of the constants above) and a
    ``message`` for the user naming the layers and values seen."""

    kind: str
    message: str


def _largest_weight(model) -> tuple[str, float]:
    """``('layer/weight', largest |value|)`` over the model's finite weights."""
    best_name, best = "", 0.0
    for slot in layer_slots(model):
        values = slot.layer.params[slot.weight]
        finite = values[np.isfinite(values)]
        if finite.size and float(np.abs(finite).max()) > best:
            best_name, best = slot.path, float(np.abs(finite).max())
    return best_name, best


def _nonfinite_weights(model) -> list[str]:
    return [slot.path for slot in layer_slots(model) if not np.isfinite(slot.layer.params[slot.weight]).all()]


def _blown_up(model, logits) -> str | None:
    """A sentence when the weights or the logits are far too large, else ``None``."""
    name, largest = _largest_weight(model)
    facts = []
    if largest > EXPLODED_WEIGHT:
        facts.append(f"the weights reach {largest:.3g} (in '{name}')")
    if logits is not None:
        logits = np.asarray(logits)
        if not np.isfinite(logits).all():
            facts.append(
                f"{int((~np.isfinite(logits)).sum())} of the {logits.size} logits overflowed to inf or NaN"
            )
        elif logits.size and float(np.abs(logits).max()) > EXPLODED_LOGIT:
            facts.append(f"the logits reach {float(np.abs(logits).max()):.3g}")
    if not facts:
        return None
    return " and ".join(facts)


def _rate(learning_rate) -> str:
    return f" (learning_rate={learning_rate:g})" if isinstance(learning_rate, (int, float)) else ""


def diagnose_nonfinite_loss(model, y_pred, logits=None, learning_rate=None) -> Diagnosis:
    """Explain a NaN or infinite loss.

    Args:
        model: the model (anything with a ``layers`` list), its weights as
            they were for this batch's forward pass.
        y_pred: the batch's predictions, ``(N, ...)``.
        logits: the last layer's pre-activation output (``None`` if not kept).
        learning_rate: the optimizer's rate, quoted in the message if a float.
    Returns:
        A :class:`Diagnosis`; its ``kind`` is ``TARGETS`` only when weights,
        logits and predictions all look sane.
    """
    bad = _nonfinite_weights(model)
    if bad:
        listed = ", ".join(f"'{b}'" for b in bad[:4]) + (" ..." if len(bad) > 4 else "")
        return Diagnosis(
            NONFINITE_WEIGHTS,
            f"the weights of {listed} already hold NaN or inf: an earlier update blew "
            f"up (a learning rate too high{_rate(learning_rate)}? inputs not scaled?)",
        )
    blown = _blown_up(model, logits)
    if blown:
        return Diagnosis(
            EXPLODED_WEIGHTS,
            f"{blown}: the updates were far too large (a learning rate too high{_rate(learning_rate)}?)",
        )
    y_pred = np.asarray(y_pred)
    if not np.isfinite(y_pred).all():
        n_bad = int((~np.isfinite(y_pred)).sum())
        return Diagnosis(
            ACTIVATION_OVERFLOW,
            f"the weights are finite but {n_bad} of the {y_pred.size} predictions are "
            "not: an activation overflowed (inputs far larger than the model expects?)",
        )
    largest = float(np.max(np.abs(y_pred))) if y_pred.size else 0.0
    return Diagnosis(
        TARGETS,
        f"the weights, logits and predictions are finite and of normal size (the "
        f"largest |prediction| is {largest:.3g}), so the loss itself overflowed: "
        "targets far outside the range the loss expects?",
    )


class DivergenceMonitor:
    """Flags, once, a finite loss that has grown ``factor`` times past the first batch's.

    Usage in a training loop::

        monitor = DivergenceMonitor()                 # one per fit()
        ...
        diagnosis = monitor.update(loss_value, model, logits, learning_rate)
        if diagnosis is not None:
            warnings.warn(f"{where}: {diagnosis.message}", RuntimeWarning)
    """

    def __init__(self, factor: float = DIVERGENCE_FACTOR):
        self.factor = factor
        self.reference = None
        self.flagged = False

    def update(self, loss_value, model=None, logits=None, learning_rate=None) -> Diagnosis | None:
        """Record one batch's loss; a :class:`Diagnosis` the first time it diverges."""
        loss_value = float(loss_value)
        if not np.isfinite(loss_value) or self.flagged:
            return None  # NaN has its own diagnosis; warn once
        if self.reference is None:
            self.reference = loss_value
            return None
        scale = max(abs(self.reference), 1e-3)  # a first loss of ~0 must not make everything "diverging"
        if loss_value <= self.factor * scale:
            return None
        self.flagged = True
        blown = _blown_up(model, logits) if model is not None else None
        cause = (
            f"{blown}: the updates are far too large (a learning rate too high{_rate(learning_rate)}?)"
            if blown
            else f"updates too large (a learning rate too high{_rate(learning_rate)}?)"
        )
        return Diagnosis(
            DIVERGING,
            f"the loss of this batch is {loss_value:.3g}, {loss_value / scale:.3g} times "
            f"the first batch's ({self.reference:.3g}): training is diverging; {cause}",
        )
