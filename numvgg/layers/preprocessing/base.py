"""What the augmentation layers share: a seeded generator, factor checks, the identity path.

Keras' augmentation layers draw their random numbers from TensorFlow's
generator, which NumPy cannot reproduce: numvgg draws the *same kind* of
numbers (uniform in the same ranges, one per image) from NumPy's. So a seeded
numvgg layer repeats itself run after run, and a *given* transform (an angle,
a flip, a zoom) gives Keras' output exactly, but the random draws are not
Keras' draws.
"""

from __future__ import annotations

import numpy as np

from ... import random as nv_random
from ..base import Layer


def check_factor(value, name: str, layer: str, low: float, high: float, low_open: bool = False):
    """A factor ``f`` or ``(lower, upper)``, each within ``[low, high]`` (``(low, high]`` when
    ``low_open``); the error names the argument and the range, as Keras' does."""
    interval = f"{'(' if low_open else '['}{low}, {high}]"
    error = (
        f"{layer}: the `{name}` argument should be a number (or a list of two numbers) in the "
        f"range {interval}. Received: {name}={value!r}"
    )
    parts = value if isinstance(value, (tuple, list)) else [value]
    if (isinstance(value, (tuple, list)) and len(value) != 2) or not all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in parts
    ):
        raise ValueError(error)
    for v in parts:
        if v > high or v < low or (low_open and v == low):
            raise ValueError(error)


class RandomLayer(Layer):
    """Base of the augmentation layers: active only with ``training=True``.

    A subclass implements ``get_random_transformation(x_shape)`` (draws the
    parameters of one batch) and ``_apply(x, transformation)`` returning
    ``(out, cache)``, and ``_apply_backward(dout, cache)``. With
    ``training=False`` the layer passes its input through (as float32), and
    the gradient through unchanged.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        # Without a seed, draw from numvgg.random, so set_random_seed() repeats the run.
        self.rng = np.random.default_rng(
            seed if seed is not None else int(nv_random.generator().integers(2**63))
        )

    def forward(self, x, training=False):
        x = self._as_input(x)
        if not training:
            self._cache = ("identity", None)
            return x
        return self.transform_images(x, self.get_random_transformation(x.shape))

    def transform_images(self, x, transformation):
        """Apply a given ``transformation`` (what ``get_random_transformation``
        returns) as in training, keeping the cache for ``backward``."""
        x = self._as_input(x)
        out, cache = self._apply(x, transformation)
        self._cache = ("transform", cache)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        kind, cache = self._take_cache()
        self.grads = []
        if not need_input_grad:
            return None
        return dout if kind == "identity" else self._apply_backward(dout, cache)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
