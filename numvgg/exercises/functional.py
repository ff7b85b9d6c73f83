"""Function forms of two computations numvgg keeps inside classes.

The exercises hand out *functions*, and two of them have no function in the
library: the softmax cross-entropy lives in
:class:`numvgg.losses.CategoricalCrossentropy` and the Adam rule in
:meth:`numvgg.optimizers.Adam.update_step`. :func:`adam_update` runs that very
method on one weight (the rule is written once, in the optimizer);
the softmax cross-entropy pair computes the same numbers as the loss class
(the exercise checks compare them on every run,
``numvgg exercises check softmax_cross_entropy --reference``), so the
skeletons are still generated from clean, tested source.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..optimizers import Adam


class SoftmaxCrossEntropyCache(NamedTuple):
    """What the fused backward needs: the softmax output and the targets."""

    probs: np.ndarray  # (N, C)
    y_true: np.ndarray  # (N, C)


def softmax_cross_entropy_forward(logits: np.ndarray, y_true: np.ndarray):
    """Mean cross-entropy between one-hot targets and ``softmax(logits)``.

    ``loss = -(1/N) * sum_n sum_c y_true[n, c] * log softmax(logits[n])[c]``,
    Keras' ``CategoricalCrossentropy(from_logits=True)`` with its default
    ``"sum_over_batch_size"`` reduction.

    Args:
        logits: ``(N, C)``, the pre-softmax scores of the last Dense layer.
        y_true: ``(N, C)``, one-hot (or smoothed) targets; each row sums to 1.
    Returns:
        loss: a 0-d array (the mean over the batch);
        cache: :class:`SoftmaxCrossEntropyCache` ``(probs, y_true)``.
    """
    # softmax is unchanged by subtracting a constant per row; after the shift
    # the largest exponent is exp(0) = 1, so nothing overflows.
    shifted = logits - logits.max(axis=-1, keepdims=True)  # (N, C)
    log_sum = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # (N, 1)
    log_probs = shifted - log_sum  # (N, C) log softmax
    n = logits.shape[0]
    loss = -np.sum(y_true * log_probs) / n
    return np.asarray(loss, dtype=logits.dtype), SoftmaxCrossEntropyCache(np.exp(log_probs), y_true)


def softmax_cross_entropy_backward(dloss, cache: SoftmaxCrossEntropyCache) -> np.ndarray:
    """Fused gradient of softmax + cross-entropy with respect to the logits.

    The softmax Jacobian and the ``1/p`` of the log cancel, leaving
    ``dlogits = dloss * (probs - y_true) / N`` (rows of ``y_true`` sum to 1).

    Args:
        dloss: upstream gradient of the scalar loss (1.0 when the loss is the end).
        cache: from :func:`softmax_cross_entropy_forward`.
    Returns:
        ``dlogits``: ``(N, C)``.
    """
    probs, y_true = cache
    n = probs.shape[0]
    return dloss * (probs - y_true) / n


def adam_update(
    variable: np.ndarray,
    gradient: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    learning_rate: float = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
):
    """One Adam step for one weight, as Keras 3 computes it.

    Args:
        variable: the weight ``w``, any shape (a conv kernel ``(KH, KW, C, F)``,
            a bias ``(F,)``, ...).
        gradient: ``dL/dw``, same shape.
        m, v: first and second moment estimates, same shape (zeros before step 1).
        t: the step number, starting at 1.
        learning_rate, beta_1, beta_2, epsilon: Keras' ``Adam`` arguments.
    Returns:
        ``(variable, m, v)`` after the step: new arrays, in ``variable``'s
        dtype; the arguments are left unchanged.
    """
    # The rule itself lives in one place, numvgg.optimizers.Adam.update_step: an
    # optimizer for this one weight, its slots and step counter set to the state given.
    variable = np.array(variable, copy=True)
    optimizer = Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    optimizer.build([variable])
    optimizer.momentums[0][...] = m
    optimizer.velocities[0][...] = v
    optimizer._iterations = int(t) - 1  # update_step works on step _iterations + 1
    rate = variable.dtype.type(optimizer._current_learning_rate())
    optimizer.update_step(gradient, variable, rate, 0)
    return variable, optimizer.momentums[0], optimizer.velocities[0]
