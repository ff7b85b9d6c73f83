"""Adam (Kingma & Ba, 2014) as Keras 3 computes it.

Slots per weight: ``m`` (first moment) and ``v`` (second moment), both zero at
the start; with ``amsgrad`` also ``v_hat``, the running maximum of ``v``.
At update number ``t`` (1 for the first update)::

    alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)   # bias correction folded into the rate
    m += (g - m) * (1 - beta_1)
    v += (g*g - v) * (1 - beta_2)
    v_hat = max(v_hat, v)                                 # amsgrad only; then v_hat replaces v
    w -= m * alpha / (sqrt(v) + epsilon)

Note where ``epsilon`` sits: it is added to ``sqrt(v)`` *after* the bias
correction was folded into ``alpha`` ("epsilon hat" in the paper), so it is
not the same as adding it to ``sqrt(v / (1 - beta_2**t))``.
"""

from __future__ import annotations

import numpy as np

from .base import Optimizer, keras_cast


class Adam(Optimizer):
    """Adam.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        beta_1: decay of the first-moment average (default 0.9).
        beta_2: decay of the second-moment average (default 0.999).
        epsilon: added to ``sqrt(v)`` (default 1e-7, Keras' value; papers use 1e-8).
        amsgrad: use the AMSGrad variant (divide by the running max of ``v``).
        **kwargs: shared arguments of :class:`~numvgg.optimizers.base.Optimizer`.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = bool(amsgrad)

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        self.momentums, self.velocities = self._add_slots(self._variables, ["momentum", "velocity"])
        self.velocity_hats = self._add_slots(self._variables, "velocity_hat") if self.amsgrad else []

    def update_step(self, gradient, variable, learning_rate, index) -> None:
        f = variable.dtype.type
        t = f(self._iterations + 1)
        beta_1_power = np.power(keras_cast(self.beta_1, variable.dtype), t)  # float32-rounded
        beta_2_power = np.power(keras_cast(self.beta_2, variable.dtype), t)  # even in float64
        alpha = learning_rate * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)

        m = self.momentums[index]
        v = self.velocities[index]
        m += (gradient - m) * f(1 - self.beta_1)
        v += (np.square(gradient) - v) * f(1 - self.beta_2)
        if self.amsgrad:
            v_hat = self.velocity_hats[index]
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        variable -= m * alpha / (np.sqrt(v) + f(self.epsilon))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }
