"""Stochastic gradient descent, with optional (Nesterov) momentum (Keras 3 ``SGD``).

Update rule for one weight ``w`` with gradient ``g`` and learning rate ``lr``:

* ``momentum == 0``: ``w -= g * lr``
* otherwise, with a velocity slot ``m`` (starts at zero)::

      m = m * momentum - g * lr
      w += m                          (plain momentum)
      w += m * momentum - g * lr      (nesterov=True)
"""

from __future__ import annotations

from .base import Optimizer, keras_cast


class SGD(Optimizer):
    """Gradient descent (with momentum).

    Args:
        learning_rate: float, schedule or callable; default 0.01.
        momentum: float in [0, 1]; 0 means plain gradient descent.
        nesterov: use Nesterov momentum.
        **kwargs: the shared arguments of :class:`~numvgg.optimizers.base.Optimizer`
            (``name``, ``weight_decay``, ``clipnorm``, ``clipvalue``,
            ``global_clipnorm``, and the legacy ``lr``).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        # Keras insists on a float; numvgg also takes an int such as 0 or 1.
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: momentum={momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        # Keras creates no slot at all without momentum.
        self.momentums = self._add_slots(self._variables, "momentum") if self.momentum != 0 else []

    def update_step(self, gradient, variable, learning_rate, index) -> None:
        if self.momentum == 0:
            variable -= gradient * learning_rate
            return
        momentum = keras_cast(self.momentum, variable.dtype)
        m = self.momentums[index]
        m[...] = m * momentum - gradient * learning_rate
        if self.nesterov:
            variable += m * momentum - gradient * learning_rate
        else:
            variable += m

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
