"""Core layers: ``Dense``, ``Flatten``, ``Dropout``, ``Activation``."""

from __future__ import annotations

import numpy as np

from .. import initializers
from .. import random as nv_random
from ..ops import dense as dense_ops
from .activation_mixin import ActivationMixin
from .base import Layer


class Dense(ActivationMixin, Layer):
    """Fully connected layer ``activation(x @ kernel + bias)``.

    Shapes: in ``(N, D_in)``; kernel ``(D_in, units)``; bias ``(units,)``;
    out ``(N, units)``. Backward caches: the input and the kernel, and the
    activation's cache (ReLU mask or sigmoid/softmax output).
    """

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        input_dim = kwargs.pop("input_dim", None)
        if input_dim is not None:
            # Keras 3 still accepts it, as input_shape=(input_dim,); Layer warns as Keras does.
            kwargs["input_shape"] = (input_dim,)
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Dense '{self.name}': units must be a positive int, got {units!r}")
        self.units = int(units)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.set_activation(activation)

    def build(self, input_shape):
        d_in = input_shape[-1]
        if d_in is None:
            raise ValueError(
                f"Dense '{self.name}': the last axis of the input must be known, got {input_shape}"
            )
        self.params = {"kernel": self.kernel_initializer((d_in, self.units), self.dtype)}
        if self.use_bias:
            self.params["bias"] = self.bias_initializer((self.units,), self.dtype)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def forward(self, x, training=False):
        x = self._as_input(x)
        z, dense_cache = dense_ops.dense_forward(x, self.params["kernel"], self.params.get("bias"))
        out, act_cache = self._activate(z, inplace=True)
        self._cache = (dense_cache, act_cache)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True, from_logits=False):
        dense_cache, act_cache = self._take_cache()
        dz = dout if from_logits else self._activation_backward(dout, act_cache)
        dx, dkernel, dbias = dense_ops.dense_backward(dz, dense_cache, need_input_grad, need_weight_grads)
        self.grads = [dkernel, dbias][: len(self.params)] if need_weight_grads else []
        return dx

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation_name,
            "use_bias": self.use_bias,
        }


class Flatten(Layer):
    """``(N, H, W, C) -> (N, H*W*C)`` in channels-last order (so ``fc1`` lines up
    with the published weights). Backward caches: the input shape."""

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(s is None for s in rest) else int(np.prod(rest))
        return (input_shape[0], size)

    def forward(self, x, training=False):
        x = self._as_input(x)
        out, self._cache = dense_ops.flatten_forward(x)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        x_shape = self._take_cache()
        return dense_ops.flatten_backward(dout, x_shape) if need_input_grad else None


class Dropout(Layer):
    """Inverted dropout: active only when ``training=True``; shape unchanged.
    Backward caches: the scaled keep-mask.

    ``seed`` makes the masks repeatable (like Keras' ``Dropout(rate, seed=...)``).
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout '{self.name}': rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        # Without a seed, the mask stream is drawn from numvgg.random, so
        # set_random_seed() makes dropout repeatable too.
        self.rng = np.random.default_rng(
            seed if seed is not None else int(nv_random.generator().integers(2**63))
        )

    def forward(self, x, training=False):
        x = self._as_input(x)
        out, self._cache = dense_ops.dropout_forward(x, self.rate, training, self.rng)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        cache = self._take_cache()
        return dense_ops.dropout_backward(dout, cache) if need_input_grad else None

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Activation(ActivationMixin, Layer):
    """An activation on its own: ``Activation('relu')``. Shape unchanged.
    Backward caches: whatever the activation needs (mask or output)."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.set_activation(activation)

    def forward(self, x, training=False):
        x = self._as_input(x)
        out, self._cache = self._activate(x)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True, from_logits=False):
        cache = self._take_cache()
        if not need_input_grad:
            return None
        return dout if from_logits else self._activation_backward(dout, cache)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation_name}
