"""``BatchNormalization``, with Keras 3's training rules."""

from __future__ import annotations

import numpy as np

from .. import initializers
from ..ops import normalization as bn_ops
from .base import Layer


class BatchNormalization(Layer):
    """Normalize each channel, then scale by ``gamma`` and shift by ``beta``.

    Shapes: any ``(N, ..., C)``, unchanged; weights ``gamma``, ``beta``,
    ``moving_mean``, ``moving_variance``, each ``(C,)``, in Keras' order
    (``gamma`` only with ``scale=True``, ``beta`` only with ``center=True``).

    Which statistics, as in Keras 3 (``keras/src/layers/normalization/batch_normalization.py``):

    * ``forward(x, training=True)`` on a *trainable* layer normalizes with the
      batch's own mean and (biased) variance, and updates the moving
      statistics in place: ``moving = moving * momentum + batch * (1 - momentum)``;
    * otherwise -- ``training=False``, **or** ``trainable=False`` (Keras >= 2.1:
      a frozen BN layer runs in inference mode even inside ``fit``, which the
      fine-tuning recipe relies on) -- it uses the moving statistics and
      updates nothing.

    ``moving_mean`` and ``moving_variance`` are in ``non_trainable_param_names``:
    no optimizer touches them; ``grads`` has ``None`` in their places.
    Backward caches: ``xhat``, ``1/sqrt(var + eps)``, ``gamma`` and which
    statistics were used (see :mod:`numvgg.ops.normalization`).
    """

    # Its forward reads ``trainable`` (batch statistics only when trainable), so a
    # training step runs it with the flag its trace saw (models/train_plan.py).
    reads_trainable_in_forward = True

    def __init__(
        self,
        axis=-1,
        momentum=0.99,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)):
            raise ValueError(f"BatchNormalization '{self.name}': `axis` must be one int, got {axis!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(
                f"BatchNormalization '{self.name}': `momentum` must be in [0, 1], got {momentum!r}"
            )
        if epsilon <= 0:
            raise ValueError(f"BatchNormalization '{self.name}': `epsilon` must be > 0, got {epsilon!r}")
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.initializers = {
            "gamma": initializers.get(gamma_initializer),
            "beta": initializers.get(beta_initializer),
            "moving_mean": initializers.get(moving_mean_initializer),
            "moving_variance": initializers.get(moving_variance_initializer),
        }
        self.non_trainable_param_names = {"moving_mean", "moving_variance"}

    def build(self, input_shape):
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(
                f"BatchNormalization '{self.name}': the channel axis {self.axis} of the "
                f"input {input_shape} must be known."
            )
        names = (
            (["gamma"] if self.scale else [])
            + (["beta"] if self.center else [])
            + ["moving_mean", "moving_variance"]
        )
        self.params = {name: self.initializers[name]((channels,), self.dtype) for name in names}
        super().build(input_shape)

    def forward(self, x, training=False):
        x = self._as_input(x)
        use_batch = bool(training) and self.trainable
        if use_batch:
            mean, var = bn_ops.batch_moments(x, self.axis)
            m = self.params
            m["moving_mean"][...] = m["moving_mean"] * self.momentum + mean * (1.0 - self.momentum)
            m["moving_variance"][...] = m["moving_variance"] * self.momentum + var * (1.0 - self.momentum)
        else:
            mean, var = self.params["moving_mean"], self.params["moving_variance"]
        out, self._cache = bn_ops.batchnorm_forward(
            x,
            self.params.get("gamma"),
            self.params.get("beta"),
            mean,
            var,
            self.epsilon,
            self.axis,
            use_batch,
        )
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        cache = self._take_cache()
        dx, dgamma, dbeta = bn_ops.batchnorm_backward(dout, cache)
        by_name = {"gamma": dgamma, "beta": dbeta}
        self.grads = [by_name.get(name) for name in self.params] if need_weight_grads else []
        return dx if need_input_grad else None

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }
