"""Pooling layers: ``MaxPooling2D``, ``AveragePooling2D``, ``GlobalAveragePooling2D``,
``GlobalMaxPooling2D``, and Keras' short aliases ``MaxPool2D``, ``AvgPool2D``."""

from __future__ import annotations

from ..ops import pooling as pool_ops
from ..ops.conv import conv_output_size
from .arguments import standardize_tuple
from .base import Layer


class _Pooling2D(Layer):
    """What max- and average-pooling share: ``pool_size`` windows moved by
    ``strides`` (default: ``pool_size``), ``'valid'`` or ``'same'`` padding."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        if padding not in ("same", "valid"):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': padding must be 'same' or 'valid', got {padding!r}"
            )
        self.pool_size = standardize_tuple(pool_size, 2, "pool_size")
        # Keras lets strides=0 through here (and fails later); a zero step is never meant.
        self.strides = standardize_tuple(strides, 2, "strides") if strides is not None else self.pool_size
        self.padding = padding

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects 4-D input, got shape {input_shape}"
            )
        n, h, w, c = input_shape
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        oh = None if h is None else conv_output_size(h, ph, sh, self.padding)
        ow = None if w is None else conv_output_size(w, pw, sw, self.padding)
        if oh == 0 or ow == 0:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': input {input_shape} is smaller than the {ph}x{pw} pool"
            )
        return (n, oh, ow, c)

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
        }


class MaxPooling2D(_Pooling2D):
    """Max over ``pool_size`` windows moved by ``strides`` (default: ``pool_size``).

    Shapes: in ``(N, H, W, C)``, out ``(N, OH, OW, C)``; with the default 2x2
    and ``'valid'`` padding ``OH = floor(H / 2)`` (odd sizes floor, as Keras).
    Backward caches: the index of the winning element in every window.
    """

    def forward(self, x, training=False):
        x = self._as_input(x)
        # When no backward will follow (predict, evaluate), the winners need not be found.
        out, self._cache = pool_ops.maxpool2d_forward(
            x, self.pool_size, self.strides, self.padding, need_cache=self.keeping_cache
        )
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        cache = self._take_cache()
        return pool_ops.maxpool2d_backward(dout, cache) if need_input_grad else None


class AveragePooling2D(_Pooling2D):
    """Mean over ``pool_size`` windows moved by ``strides`` (default: ``pool_size``).

    Shapes: in ``(N, H, W, C)``, out ``(N, OH, OW, C)``, sizes as in
    ``MaxPooling2D``. With ``'same'`` padding a border window averages only
    the pixels inside the image (TensorFlow's rule, so Keras'), not ``PH*PW``.
    Backward caches: the geometry and each window's pixel count.
    """

    def forward(self, x, training=False):
        x = self._as_input(x)
        out, self._cache = pool_ops.avgpool2d_forward(x, self.pool_size, self.strides, self.padding)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        cache = self._take_cache()
        return pool_ops.avgpool2d_backward(dout, cache) if need_input_grad else None


class _GlobalPooling2D(Layer):
    """``(N, H, W, C) -> (N, C)``: one number per channel."""

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' expects 4-D input, got shape {input_shape}"
            )
        return (input_shape[0], input_shape[-1])


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean over height and width: ``(N, H, W, C) -> (N, C)``.
    Backward caches: the input shape only."""

    def forward(self, x, training=False):
        x = self._as_input(x)
        out, self._cache = pool_ops.global_average_pooling2d_forward(x)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        x_shape = self._take_cache()
        return pool_ops.global_average_pooling2d_backward(dout, x_shape) if need_input_grad else None


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Max over height and width: ``(N, H, W, C) -> (N, C)``.
    Backward caches: where each channel's maximum is, and how many positions
    tie for it; tied maxima share the gradient equally (Keras' ``reduce_max``),
    unlike ``MaxPooling2D``, which gives it all to the first."""

    def forward(self, x, training=False):
        x = self._as_input(x)
        out, self._cache = pool_ops.global_max_pooling2d_forward(x)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        cache = self._take_cache()
        return pool_ops.global_max_pooling2d_backward(dout, cache) if need_input_grad else None


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
