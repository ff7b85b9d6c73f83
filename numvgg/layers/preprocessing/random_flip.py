"""``RandomFlip``: mirror each image with probability 1/2 (training only)."""

from __future__ import annotations

import numpy as np

from .base import RandomLayer

MODES = ("horizontal", "vertical", "horizontal_and_vertical")


class RandomFlip(RandomLayer):
    """Flip each image left-right and/or upside down, with probability 1/2.

    Shapes: ``(N, H, W, C)``, unchanged. As in Keras 3, one draw per image
    decides: with ``'horizontal_and_vertical'`` an image is flipped both
    ways or not at all (a 180-degree rotation half of the time).
    ``get_random_transformation`` returns a bool array ``(N,)`` of flips.
    Backward caches: the flips (a flip is its own inverse, so the gradient
    is flipped back the same way).
    """

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in MODES:
            raise ValueError(f"RandomFlip '{self.name}': unknown `mode` {mode!r}. Expected one of {MODES}.")
        self.mode = mode

    def get_random_transformation(self, x_shape):
        return self.rng.uniform(size=x_shape[0]) <= 0.5  # Keras: uniform <= 0.5 flips

    def _flip(self, x, flips):
        out = x.copy()
        axes = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}[self.mode]
        out[flips] = np.flip(x[flips], axis=axes)
        return out

    def _apply(self, x, transformation):
        flips = np.asarray(transformation, dtype=bool).reshape(-1)
        return self._flip(x, flips), flips

    def _apply_backward(self, dout, flips):
        return self._flip(dout, flips)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
