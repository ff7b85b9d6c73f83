"""Adadelta (Zeiler, 2012) as Keras 3 computes it.

Two slots per weight, both zero at the start: ``accumulated_grad`` (running
mean of ``g*g``) and ``accumulated_delta_var`` (running mean of the squared
steps). With ``rms(x) = sqrt(x + epsilon)``::

    accumulated_grad = rho * accumulated_grad + (1 - rho) * g*g
    delta = -rms(accumulated_delta_var) * g / rms(accumulated_grad)
    accumulated_delta_var = rho * accumulated_delta_var + (1 - rho) * delta*delta
    w += lr * delta

The paper has no learning rate (it is 1); Keras keeps one, default 0.001, so
Adadelta with defaults moves weights very slowly.
"""

from __future__ import annotations

import numpy as np

from .base import Optimizer


class Adadelta(Optimizer):
    """Adadelta.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        rho: decay of both running averages (default 0.95).
        epsilon: added under both square roots (default 1e-7).
        **kwargs: shared arguments of :class:`~numvgg.optimizers.base.Optimizer`.
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        self.accumulated_grads, self.accumulated_delta_vars = self._add_slots(
            self._variables, ["accumulated_grad", "accumulated_delta_var"]
        )

    def update_step(self, gradient, variable, learning_rate, index) -> None:
        f = variable.dtype.type
        rho, one_minus_rho, epsilon = f(self.rho), f(1 - self.rho), f(self.epsilon)
        accumulated_grad = self.accumulated_grads[index]
        accumulated_delta_var = self.accumulated_delta_vars[index]

        accumulated_grad[...] = rho * accumulated_grad + one_minus_rho * np.square(gradient)
        delta = -(np.sqrt(accumulated_delta_var + epsilon) * gradient) / np.sqrt(accumulated_grad + epsilon)
        accumulated_delta_var[...] = rho * accumulated_delta_var + one_minus_rho * np.square(delta)
        variable += learning_rate * delta

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
