"""``Conv2D``: Keras' 2-D convolution layer around :mod:`numvgg.ops.conv`."""
from __future__ import annotations

from .. import config, initializers
from ..ops import conv as conv_ops
from ..ops.winograd import conv2d_forward_winograd
from .activation_mixin import ActivationMixin
from .arguments import standardize_tuple
from .base import Layer


class Conv2D(ActivationMixin, Layer):
    """2-D convolution, NHWC in and out, with an optional fused activation.

    Shapes: in ``(N, H, W, C)``; kernel ``(KH, KW, C, filters)``; bias
    ``(filters,)``; out ``(N, OH, OW, filters)`` with ``OH = ceil(H / sh)``
    for ``'same'`` and ``floor((H - KH) / sh) + 1`` for ``'valid'``.

    ``algorithm``: ``'im2col'`` or ``'winograd'`` (3x3, stride 1 only) for
    the forward pass; ``None`` follows :func:`numvgg.config.conv_algorithm`.

    Backward caches: the op's :class:`~numvgg.ops.conv.ConvCache` (the input
    and the kernel) and the activation's cache (the ReLU mask).
    """

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 activation=None, use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", algorithm: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if algorithm is not None and algorithm not in config.CONV_ALGORITHMS:
            raise ValueError(f"Conv2D: unknown algorithm {algorithm!r}. Valid choices: "
                             f"{list(config.CONV_ALGORITHMS)} or None (numvgg.config's default).")
        self.algorithm = algorithm
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"Conv2D '{self.name}': filters must be a positive int, got {filters!r}")
        if padding not in ("same", "valid"):
            raise ValueError(f"Conv2D '{self.name}': padding must be 'same' or 'valid', got {padding!r}")
        self.filters = filters
        self.kernel_size = standardize_tuple(kernel_size, 2, "kernel_size")
        self.strides = standardize_tuple(strides, 2, "strides")
        self.padding = padding
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.set_activation(activation)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"Conv2D '{self.name}' expects 4-D input (batch, height, width, "
                             f"channels), got shape {input_shape}")
        c = input_shape[-1]
        kh, kw = self.kernel_size
        self.params = {"kernel": self.kernel_initializer((kh, kw, c, self.filters), self.dtype)}
        if self.use_bias:
            self.params["bias"] = self.bias_initializer((self.filters,), self.dtype)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        kh, kw = self.kernel_size
        oh = None if h is None else conv_ops.conv_output_size(h, kh, self.strides[0], self.padding)
        ow = None if w is None else conv_ops.conv_output_size(w, kw, self.strides[1], self.padding)
        if (oh is not None and oh <= 0) or (ow is not None and ow <= 0):
            raise ValueError(f"Conv2D '{self.name}': input {input_shape} is too small for a "
                             f"{kh}x{kw} kernel with padding '{self.padding}'")
        return (n, oh, ow, self.filters)

    def forward(self, x, training=False):
        x = self._as_input(x)
        forward = conv_ops.conv2d_forward
        if (self.algorithm or config.conv_algorithm()) == "winograd" and \
                self.kernel_size == (3, 3) and self.strides == (1, 1):
            forward = conv2d_forward_winograd
        z, conv_cache = forward(x, self.params["kernel"], self.params.get("bias"),
                                self.strides, self.padding)
        out, act_cache = self._activate(z, inplace=True)
        self._cache = (conv_cache, act_cache)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True, from_logits=False):
        conv_cache, act_cache = self._take_cache()
        dz = dout if from_logits else self._activation_backward(dout, act_cache)
        dx, dkernel, dbias = conv_ops.conv2d_backward(dz, conv_cache, need_input_grad, need_weight_grads)
        self.grads = [dkernel, dbias][:len(self.params)] if need_weight_grads else []
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "activation": self.activation_name, "use_bias": self.use_bias}
