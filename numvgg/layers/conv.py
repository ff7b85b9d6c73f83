"""``Conv2D``: Keras' 2-D convolution layer around :mod:`numvgg.ops.conv`."""

from __future__ import annotations

from .. import config, initializers
from ..ops import conv as conv_ops
from ..ops.winograd import KernelTransforms
from .activation_mixin import ActivationMixin
from .arguments import standardize_tuple
from .base import Layer


class Conv2D(ActivationMixin, Layer):
    """2-D convolution, NHWC in and out, with an optional fused activation.

    Shapes: in ``(N, H, W, C)``; kernel ``(KH, KW, C, filters)``; bias
    ``(filters,)``; out ``(N, OH, OW, filters)`` with ``OH = ceil(H / sh)``
    for ``'same'`` and ``floor((H - KH) / sh) + 1`` for ``'valid'``.

    ``algorithm``: one of :data:`numvgg.config.CONV_ALGORITHMS` (``'im2col'``,
    ``'kernel_rows'``, ``'winograd2'``, ``'winograd4'``, ``'winograd'``,
    ``'auto'``); ``None`` follows :func:`numvgg.config.conv_algorithm`. It
    chooses the forward path and, through the cache, the backward one
    (:mod:`numvgg.ops.conv` says which path runs when).

    Backward caches: the op's :class:`~numvgg.ops.conv.ConvCache` or
    :class:`~numvgg.ops.conv.FastConvCache` (the input,
    the kernel and the path that ran) and the activation's cache (the ReLU mask).
    A ReLU runs inside the op (``conv2d_forward(..., relu=True)``), while each
    piece of the output is in cache, unless a trace records the pre-activation.
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=(1, 1),
        padding: str = "valid",
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        algorithm: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if algorithm is not None:
            config.resolve_conv_algorithm(algorithm, who="Conv2D algorithm (or None for numvgg.config's)")
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
        # Winograd's transformed kernel, reused while the kernel is unchanged.
        self._kernel_transforms = KernelTransforms()

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"Conv2D '{self.name}' expects 4-D input (batch, height, width, "
                f"channels), got shape {input_shape}"
            )
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
            raise ValueError(
                f"Conv2D '{self.name}': input {input_shape} is too small for a "
                f"{kh}x{kw} kernel with padding '{self.padding}'"
            )
        return (n, oh, ow, self.filters)

    def forward(self, x, training=False):
        x = self._as_input(x)
        fuse_relu = self.activation_name == "relu" and not self._activation_is_wrapped()
        z, conv_cache = conv_ops.conv2d_forward(
            x,
            self.params["kernel"],
            self.params.get("bias"),
            self.strides,
            self.padding,
            self.algorithm,
            self._kernel_transforms,
            relu=fuse_relu,
        )
        if fuse_relu:
            # The op applied the ReLU; the mask ``z > 0`` is ``out > 0``, needed only for a backward.
            out, act_cache = z, (z > 0 if self.keeping_cache else None)
        else:
            out, act_cache = self._activate(z, inplace=True)
        self._cache = (conv_cache, act_cache)
        return out

    def _activation_is_wrapped(self) -> bool:
        """Whether ``_activate`` was replaced on this layer (a
        :class:`numvgg.debug.trace.Trace` recording pre-activations does so):
        then the ReLU must run there, so the wrapper sees ``z`` before it."""
        return "_activate" in vars(self)

    def backward(self, dout, need_input_grad=True, need_weight_grads=True, from_logits=False):
        conv_cache, act_cache = self._take_cache()
        dz = dout if from_logits else self._activation_backward(dout, act_cache)
        dx, dkernel, dbias = conv_ops.conv2d_backward(dz, conv_cache, need_input_grad, need_weight_grads)
        self.grads = [dkernel, dbias][: len(self.params)] if need_weight_grads else []
        return dx

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "activation": self.activation_name,
            "use_bias": self.use_bias,
        }
