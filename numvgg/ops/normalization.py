"""Batch normalization by hand: the forward with batch or moving statistics, and both backwards.

For an input ``x`` and per-channel ``gamma`` (scale), ``beta`` (offset)::

    xhat = (x - mean) / sqrt(var + eps)
    out  = gamma * xhat + beta

``mean`` and ``var`` are per channel: the batch's own (``batch_moments``,
biased variance, over every axis but the channel axis) when training, the
moving averages otherwise. The forward follows ``tf.nn.batch_normalization``'s
float32 order (``inv = gamma / sqrt(var + eps)``, ``out = x * inv + (beta -
mean * inv)``), which Keras' TensorFlow backend calls.

**Backward with batch statistics.** ``mean`` and ``var`` depend on ``x``, so
every output of a channel depends on every input of that channel. With
``M`` values per channel and ``dxhat = dout * gamma``::

    dx = inv / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))

(``inv = 1 / sqrt(var + eps)``; sums over the ``M`` values of the channel):
the gradient loses its mean and its component along ``xhat``, the two
directions the normalization removes.

**Backward with moving statistics** (inference, or a frozen layer): they are
constants, so the layer is a per-channel affine map and ``dx = dout * gamma * inv``.

In both cases ``dgamma = sum(dout * xhat)`` and ``dbeta = sum(dout)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class BatchNormCache(NamedTuple):
    xhat: np.ndarray  # (N, ..., C): the normalized input
    inv_std: np.ndarray  # (C,): 1 / sqrt(var + eps)
    gamma: np.ndarray | None  # (C,) or None without scale
    batch_statistics: bool  # were mean and var the batch's own?
    axes: tuple  # the reduction axes (every axis but the channel's)


def _channel_shape(x: np.ndarray, axis: int):
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return shape


def batch_moments(x: np.ndarray, axis: int = -1):
    """Per-channel mean and biased variance over every axis but ``axis``: two ``(C,)`` arrays."""
    axis = axis % x.ndim
    axes = tuple(a for a in range(x.ndim) if a != axis)
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes)  # mean of squared deviations (tf.nn.moments)
    return mean.reshape(-1), var


def batchnorm_forward(x, gamma, beta, mean, var, epsilon=1e-3, axis=-1, batch_statistics=False):
    """``gamma * (x - mean) / sqrt(var + eps) + beta`` per channel.

    Args:
        x: ``(N, ..., C)`` (channels on ``axis``).
        gamma, beta: ``(C,)``, or ``None`` (no scale: 1; no offset: 0).
        mean, var: ``(C,)``, the statistics to normalize with.
        batch_statistics: ``True`` when ``mean``/``var`` were computed from
            this ``x`` (training); it decides which backward applies.
    Returns:
        out shaped like ``x``, cache :class:`BatchNormCache`.
    """
    axis = axis % x.ndim
    shape = _channel_shape(x, axis)
    inv_std = (1.0 / np.sqrt(var + x.dtype.type(epsilon))).astype(x.dtype)  # (C,)
    inv = inv_std if gamma is None else inv_std * gamma  # (C,)
    shift = -mean * inv if beta is None else beta - mean * inv  # (C,)
    out = x * inv.reshape(shape) + shift.reshape(shape)
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    axes = tuple(a for a in range(x.ndim) if a != axis)
    return out, BatchNormCache(xhat, inv_std, gamma, bool(batch_statistics), axes)


def batchnorm_backward(dout, cache: BatchNormCache):
    """``(dx, dgamma, dbeta)`` for :func:`batchnorm_forward` (see the module docstring)."""
    shape = [1] * dout.ndim
    channel_axis = next(a for a in range(dout.ndim) if a not in cache.axes)
    shape[channel_axis] = dout.shape[channel_axis]
    dbeta = dout.sum(axis=cache.axes)  # (C,)
    dgamma = (dout * cache.xhat).sum(axis=cache.axes)  # (C,)
    dxhat = dout if cache.gamma is None else dout * cache.gamma.reshape(shape)
    inv_std = cache.inv_std.reshape(shape)
    if not cache.batch_statistics:
        return dxhat * inv_std, dgamma, dbeta
    m = dout.size // dout.shape[channel_axis]  # values per channel
    sum_dxhat = dxhat.sum(axis=cache.axes, keepdims=True)
    sum_dxhat_xhat = (dxhat * cache.xhat).sum(axis=cache.axes, keepdims=True)
    dx = inv_std / m * (m * dxhat - sum_dxhat - cache.xhat * sum_dxhat_xhat)
    return dx, dgamma, dbeta
