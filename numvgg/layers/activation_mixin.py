"""The ``activation=`` argument shared by ``Conv2D``, ``Dense`` and ``Activation``.

Keras applies the activation inside the layer; so does numvgg, keeping the
activation's cache next to the op's. ``backward(..., from_logits=True)`` skips
the activation's derivative: the training loop uses it when the loss was
computed from the pre-activation (sigmoid + binary cross-entropy fuse to
``p - y``, as they do in Keras' TensorFlow backend).
"""

from __future__ import annotations

import numpy as np

from ..ops.activations import get_activation

# Activations whose pre-activation the training step may need: Keras' TF
# backend computes a cross-entropy from the logits behind a sigmoid/softmax.
_LOGIT_ACTIVATIONS = ("sigmoid", "softmax")


class ActivationMixin:
    # The pre-activation of the last forward, kept for sigmoid/softmax layers
    # (usually a model's small output layer), so the loss can use the logits.
    last_logits = None
    name: str  # the layer's (Layer sets it)

    def set_activation(self, activation) -> None:
        if callable(activation):
            raise ValueError(
                f"Layer '{self.name}': numvgg needs an activation by name "
                "(it must know the derivative); got a callable"
            )
        self._act_forward, self._act_backward = get_activation(activation)
        self.activation_name = "linear" if activation is None else activation

    def _activate(self, z, inplace: bool = False):
        """Apply the activation to the pre-activation ``z``.

        ``inplace=True`` (Conv2D and Dense, whose ``z`` is a fresh array) lets
        ReLU overwrite ``z`` instead of allocating a second float array; its
        cache is then the boolean mask ``z > 0`` (a quarter of the memory),
        never the output itself, so writing into the output later (say, in a
        debugger) cannot change the gradient.
        """
        if self.activation_name in _LOGIT_ACTIVATIONS:
            self.last_logits = z  # sigmoid/softmax write a new array: z stays intact
        if self.activation_name == "linear":
            return z, None
        if self.activation_name == "relu" and inplace:
            # No backward follows (predict, a frozen bottom): no mask to make.
            mask = z > 0 if getattr(self, "keeping_cache", True) else None
            np.maximum(z, 0, out=z)
            return z, mask
        return self._act_forward(z)

    def _activation_backward(self, dout, cache):
        if self.activation_name == "linear":
            return dout
        return self._act_backward(dout, cache)
