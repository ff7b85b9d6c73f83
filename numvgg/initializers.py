"""Weight initializers with Keras' names and formulas.

``glorot_uniform`` draws from ``U(-limit, limit)`` with
``limit = sqrt(6 / (fan_in + fan_out))``; for a conv kernel ``(KH, KW, C, F)``
``fan_in = KH*KW*C`` and ``fan_out = KH*KW*F`` (Keras' ``compute_fans``).
The random stream is NumPy's, so the numbers differ from Keras' while the
distribution is the same.
"""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def set_seed(seed: int | None) -> None:
    """Re-seed the generator every initializer draws from (like ``keras.utils.set_random_seed``)."""
    global _rng
    _rng = np.random.default_rng(seed)


def compute_fans(shape) -> tuple[float, float]:
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape, dtype="float32"):
    fan_in, fan_out = compute_fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return _uniform(limit, shape, dtype)


def glorot_normal(shape, dtype="float32"):
    fan_in, fan_out = compute_fans(shape)
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return _truncated_normal(shape, std).astype(dtype)


def he_uniform(shape, dtype="float32"):
    fan_in, _ = compute_fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return _uniform(limit, shape, dtype)


def he_normal(shape, dtype="float32"):
    fan_in, _ = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / fan_in)).astype(dtype)


def _uniform(limit, shape, dtype):
    # Drawn directly in float32 when that is the dtype: fc1's 102M weights
    # would otherwise pass through a 0.8 GB float64 temporary.
    dt = np.dtype(dtype)
    draw_dtype = dt if dt in (np.float32, np.float64) else np.float64
    u = _rng.random(size=shape, dtype=draw_dtype)
    u *= 2 * limit
    u -= limit
    return u.astype(dt, copy=False)


def _truncated_normal(shape, std):
    # Keras' truncated normal: redraw values beyond two standard deviations;
    # the stddev is corrected by 0.8796 so the *truncated* spread equals std.
    std = std / 0.87962566103423978
    out = _rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2 * std
    while bad.any():
        out[bad] = _rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out


def zeros(shape, dtype="float32"):
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype="float32"):
    return np.ones(shape, dtype=dtype)


INITIALIZERS = {f.__name__: f for f in (glorot_uniform, glorot_normal, he_uniform, he_normal, zeros, ones)}


def get(identifier):
    """A Keras initializer name, or any callable ``f(shape, dtype) -> ndarray``."""
    if callable(identifier):
        return identifier
    if identifier in INITIALIZERS:
        return INITIALIZERS[identifier]
    raise ValueError(
        f"Unknown initializer {identifier!r}. Valid choices: {sorted(INITIALIZERS)} "
        "or a callable f(shape, dtype)."
    )
