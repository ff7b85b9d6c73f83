"""Fully connected layer, flatten and dropout by hand.

``dense``: ``y = x @ W + b`` with Keras' kernel layout ``(D_in, D_out)``.
``flatten``: channels-last order, so a ``(7, 7, 512)`` block5 output becomes
the 25088 rows of ``fc1``'s kernel in the order the published weights expect.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def dense_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None):
    """Affine map on the last axis.

    Args:
        x: ``(N, D_in)`` (or ``(..., D_in)``).
        kernel: ``(D_in, D_out)``; bias: ``(D_out,)`` or ``None``.
    Returns:
        out ``(N, D_out)``; cache ``(x, kernel)``.
    """
    out = x @ kernel
    if bias is not None:
        out += bias
    return out, (x, kernel)


def dense_backward(dout: np.ndarray, cache, need_input_grad: bool = True, need_weight_grads: bool = True):
    """``dx = dout @ W.T``, ``dW = x.T @ dout``, ``db = sum over the batch of dout``.

    Returns ``(dx, dkernel, dbias)``; an entry is ``None`` when not asked for.
    """
    x, kernel = cache
    dx = dout @ kernel.T if need_input_grad else None
    if not need_weight_grads:
        return dx, None, None
    x2 = x.reshape(-1, x.shape[-1])  # (N*..., D_in)
    d2 = dout.reshape(-1, dout.shape[-1])  # (N*..., D_out)
    return dx, x2.T @ d2, d2.sum(axis=0)


def flatten_forward(x: np.ndarray):
    """``(N, H, W, C) -> (N, H*W*C)`` in row-major (channels-last) order; cache: input shape."""
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout: np.ndarray, x_shape) -> np.ndarray:
    """Flatten only moves numbers around, so the gradient is un-flattened."""
    return dout.reshape(x_shape)


class DropoutCache(NamedTuple):
    mask: np.ndarray | None  # already scaled by 1/(1-rate); None at inference


def dropout_forward(x: np.ndarray, rate: float, training: bool, rng: np.random.Generator):
    """Inverted dropout, as Keras: in training zero each element with
    probability ``rate`` and scale the survivors by ``1/(1-rate)``; at
    inference the identity. Returns ``(out, DropoutCache)``."""
    if not training or rate == 0.0:
        return x, DropoutCache(None)
    keep = rng.random(x.shape) >= rate
    mask = keep.astype(x.dtype) / np.asarray(1.0 - rate, dtype=x.dtype)
    return x * mask, DropoutCache(mask)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """The gradient passes where the element was kept, scaled the same way."""
    return dout if cache.mask is None else dout * cache.mask
