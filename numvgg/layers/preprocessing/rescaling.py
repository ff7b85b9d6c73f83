"""``Rescaling``: ``x * scale + offset``, e.g. ``Rescaling(1. / 255)`` for 0..1 pixels."""

from __future__ import annotations

import numpy as np

from ..base import Layer


class Rescaling(Layer):
    """``out = x * scale + offset`` in float32, in training and inference alike.

    Shapes: any ``(N, ...)``, unchanged. ``scale`` and ``offset`` are numbers
    or arrays broadcast over the channels (last axis). Backward caches
    nothing: ``dx = dout * scale``.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset

    def forward(self, x, training=False):
        x = self._as_input(x)
        self._cache = True
        return x * np.asarray(self.scale, self.dtype) + np.asarray(self.offset, self.dtype)

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        self._take_cache()
        self.grads = []
        if not need_input_grad:
            return None
        dx = dout * np.asarray(self.scale, dout.dtype)
        return dx if dx.shape == dout.shape else np.broadcast_to(dx, dout.shape).copy()

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
