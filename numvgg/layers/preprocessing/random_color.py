"""``RandomContrast`` and ``RandomBrightness``: per-image colour changes (training only)."""

from __future__ import annotations

import numpy as np

from .base import RandomLayer, check_factor


def _check_value_range(layer: str, value_range):
    if (
        not isinstance(value_range, (tuple, list))
        or len(value_range) != 2
        or value_range[0] == value_range[1]
    ):
        raise ValueError(
            f"{layer}: `value_range` must be a list of two different numbers "
            f"(low, high), e.g. (0, 255). Received: value_range={value_range!r}"
        )
    return tuple(sorted(float(v) for v in value_range))


def _clip_forward(v, low, high):
    """``clip(v, low, high)`` and the mask of entries the gradient passes (TF's clip rule)."""
    return np.clip(v, low, high), (v >= low) & (v <= high)


class RandomContrast(RandomLayer):
    """``out = clip((x - mean) * c + mean, *value_range)`` per image and channel.

    ``mean`` is the image's mean over height and width; ``c`` is drawn per
    image, uniform in ``[1 - lower, 1 + upper]``. ``factor``: ``f`` or
    ``(lower, upper)`` in ``[0, 1]``. Note Keras 3's rule for a single number:
    ``f`` becomes ``(0, f)`` (Keras' ``_set_factor`` clips ``-f`` to the
    lower bound 0), so ``RandomContrast(0.2)`` only *raises* contrast, by up to
    20%; numvgg does the same. Shapes unchanged.
    ``get_random_transformation`` returns ``c``, shape ``(N,)``. Backward caches
    ``c`` and the clip mask: ``dx = c g + (1 - c) mean_HW(g)``, ``g = dout * mask``.
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        check_factor(factor, "factor", f"RandomContrast '{self.name}'", 0, 1)
        self.factor = (
            tuple(sorted(float(v) for v in factor))
            if isinstance(factor, (tuple, list))
            else (0.0, abs(float(factor)))
        )
        self.value_range = _check_value_range(f"RandomContrast '{self.name}'", value_range)

    def get_random_transformation(self, x_shape):
        return self.rng.uniform(1.0 - self.factor[0], 1.0 + self.factor[1], size=x_shape[0]).astype(
            np.float32
        )

    def _apply(self, x, contrast):
        c = np.asarray(contrast, dtype=x.dtype).reshape(-1, 1, 1, 1)  # (N, 1, 1, 1)
        mean = x.mean(axis=(1, 2), keepdims=True)  # (N, 1, 1, C)
        out, mask = _clip_forward((x - mean) * c + mean, *self.value_range)
        return out, (c, mask)

    def _apply_backward(self, dout, cache):
        c, mask = cache
        g = dout * mask
        return c * g + (1 - c) * g.mean(axis=(1, 2), keepdims=True)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


class RandomBrightness(RandomLayer):
    """``out = clip(x + d, *value_range)`` with one ``d`` per image.

    ``d = u * (high - low)``, ``u`` uniform in ``factor``'s range: ``f`` means
    ``[-f, f]``, or ``(lower, upper)``, each in ``[-1, 1]``. Shapes unchanged.
    ``get_random_transformation`` returns ``d``, shape ``(N,)``. Backward
    caches the clip mask: ``dx = dout * mask``.
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        check_factor(factor, "factor", f"RandomBrightness '{self.name}'", -1, 1)
        self.factor = (
            tuple(sorted(float(v) for v in factor))
            if isinstance(factor, (tuple, list))
            else (-abs(float(factor)), abs(float(factor)))
        )
        self.value_range = _check_value_range(f"RandomBrightness '{self.name}'", value_range)

    def get_random_transformation(self, x_shape):
        u = self.rng.uniform(*self.factor, size=x_shape[0])
        return (u * (self.value_range[1] - self.value_range[0])).astype(np.float32)

    def _apply(self, x, delta):
        d = np.asarray(delta, dtype=x.dtype).reshape(-1, 1, 1, 1)  # (N, 1, 1, 1)
        out, mask = _clip_forward(x + d, *self.value_range)
        return out, mask

    def _apply_backward(self, dout, mask):
        return dout * mask

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}
