"""RMSprop (Hinton's lecture 6e) as Keras 3 computes it.

Slots per weight: ``velocity`` (running mean of ``g*g``), plus ``momentum``
when ``momentum > 0`` and ``average_gradient`` (running mean of ``g``) when
``centered``::

    velocity = rho * velocity + (1 - rho) * g*g
    average_gradient = rho * average_gradient + (1 - rho) * g        # centered only
    denominator = velocity - average_gradient**2 + epsilon           # centered
                  velocity + epsilon                                 # otherwise
    increment = lr * g / sqrt(denominator)
    momentum = momentum_coef * momentum + increment; w -= momentum   # momentum > 0
    w -= increment                                                   # otherwise

Unlike Adam, ``epsilon`` sits *inside* the square root here.
"""

from __future__ import annotations

import numpy as np

from .base import Optimizer


class RMSprop(Optimizer):
    """RMSprop.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        rho: decay of the squared-gradient average (default 0.9).
        momentum: heavy-ball momentum on the increments (default 0, none).
        epsilon: added under the square root (default 1e-7).
        centered: divide by the estimated variance of the gradient instead of
            its uncentered second moment.
        **kwargs: shared arguments of :class:`~numvgg.optimizers.base.Optimizer`.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = bool(centered)

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        self.velocities = self._add_slots(self._variables, "velocity")
        self.momentums = self._add_slots(self._variables, "momentum") if self.momentum > 0 else []
        self.average_gradients = self._add_slots(self._variables, "average_gradient") if self.centered else []

    def update_step(self, gradient, variable, learning_rate, index) -> None:
        f = variable.dtype.type
        rho, one_minus_rho = f(self.rho), f(1 - self.rho)
        velocity = self.velocities[index]
        velocity[...] = rho * velocity + one_minus_rho * np.square(gradient)
        if self.centered:
            average_grad = self.average_gradients[index]
            average_grad[...] = rho * average_grad + one_minus_rho * gradient
            denominator = velocity - np.square(average_grad) + f(self.epsilon)
        else:
            denominator = velocity + f(self.epsilon)
        increment = learning_rate * gradient / np.sqrt(denominator)
        if self.momentum > 0:
            momentum = self.momentums[index]
            momentum[...] = f(self.momentum) * momentum + increment
            variable -= momentum
        else:
            variable -= increment

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }
