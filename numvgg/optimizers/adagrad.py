"""Adagrad (Duchi et al., 2011) as Keras 3 computes it.

One slot per weight, the ``accumulator`` of squared gradients, which starts at
``initial_accumulator_value`` (0.1), not zero::

    accumulator += g*g
    w -= lr * g / sqrt(accumulator + epsilon)
"""

from __future__ import annotations

import numpy as np

from .base import Optimizer


class Adagrad(Optimizer):
    """Adagrad.

    Args:
        learning_rate: float, schedule or callable; default 0.001.
        initial_accumulator_value: starting value of every accumulator entry (default 0.1).
        epsilon: added under the square root (default 1e-7).
        **kwargs: shared arguments of :class:`~numvgg.optimizers.base.Optimizer`.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        self.accumulators = self._add_slots(
            self._variables, "accumulator", initial_value=self.initial_accumulator_value
        )

    def update_step(self, gradient, variable, learning_rate, index) -> None:
        accumulator = self.accumulators[index]
        accumulator += np.square(gradient)
        variable -= learning_rate * gradient / np.sqrt(accumulator + variable.dtype.type(self.epsilon))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }
