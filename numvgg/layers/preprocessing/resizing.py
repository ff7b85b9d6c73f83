"""``Resizing`` and ``CenterCrop``: fixed geometry, the same in training and inference."""

from __future__ import annotations

import numpy as np

from ...ops import image as image_ops
from ..base import Layer


def _check_size(layer: str, height, width) -> None:
    for name, v in (("height", height), ("width", width)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{layer}: `{name}` must be a positive int. Received: {name}={v!r}")


def _crop_resize_forward(x, box, size, interpolation):
    """Crop ``box = (top, left, h, w)`` (``None``: no crop), then resize to ``size``
    (``None``: no resize). Returns ``(out, cache)``."""
    if box is not None:
        top, left, ch, cw = box
        x = x[:, top : top + ch, left : left + cw]  # (N, h, w, C)
    if size is None:
        return x, None
    return image_ops.resize_forward(x, size, interpolation)


def _crop_resize_backward(dout, x_shape, box, resize_cache, interpolation):
    dx = dout if resize_cache is None else image_ops.resize_backward(dout, resize_cache, interpolation)
    if box is None:
        return dx
    top, left, ch, cw = box
    full = np.zeros(x_shape, dtype=dx.dtype)  # (N, H, W, C)
    full[:, top : top + ch, left : left + cw] = dx  # the cropped-away border gets 0
    return full


class Resizing(Layer):
    """Resize images to ``(height, width)`` like ``tf.image.resize`` (Keras' ``Resizing``).

    Shapes: in ``(N, H, W, C)``, out ``(N, height, width, C)``.
    ``interpolation``: ``'bilinear'`` (default) or ``'nearest'``, half-pixel
    centres, no antialiasing (Keras' default ``antialias=False``).
    ``crop_to_aspect_ratio=True`` first takes the largest centred window with
    the target's aspect ratio, so nothing is stretched. Backward caches: the
    input shape, the crop box and the resize op's cache.
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False, **kwargs):
        super().__init__(**kwargs)
        _check_size(f"Resizing '{self.name}'", height, width)
        if interpolation not in image_ops.INTERPOLATIONS:
            raise ValueError(
                f"Resizing '{self.name}': unknown `interpolation` {interpolation!r}. "
                f"Expected one of {image_ops.INTERPOLATIONS}."
            )
        self.height, self.width = int(height), int(width)
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def forward(self, x, training=False):
        x = self._as_input(x)
        box = (
            image_ops.center_crop_box(x.shape[1], x.shape[2], self.height, self.width)
            if self.crop_to_aspect_ratio
            else None
        )
        out, cache = _crop_resize_forward(x, box, (self.height, self.width), self.interpolation)
        self._cache = (x.shape, box, cache)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        x_shape, box, cache = self._take_cache()
        self.grads = []
        if not need_input_grad:
            return None
        return _crop_resize_backward(dout, x_shape, box, cache, self.interpolation)

    def get_config(self):
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
        }


class CenterCrop(Layer):
    """The central ``(height, width)`` window of each image (Keras' ``CenterCrop``).

    Shapes: in ``(N, H, W, C)``, out ``(N, height, width, C)``. The window
    starts at ``((H - height) // 2, (W - width) // 2)``. An image smaller
    than the target on either side is, as in Keras, cropped to the target's
    aspect ratio and resized (bilinear) instead. Backward caches: the input
    shape, the crop box and (when resizing) the resize op's cache.
    """

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        _check_size(f"CenterCrop '{self.name}'", height, width)
        self.height, self.width = int(height), int(width)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def forward(self, x, training=False):
        x = self._as_input(x)
        h, w = x.shape[1:3]
        if h >= self.height and w >= self.width:
            box, size = ((h - self.height) // 2, (w - self.width) // 2, self.height, self.width), None
        else:  # Keras' smart_resize
            box, size = image_ops.center_crop_box(h, w, self.height, self.width), (self.height, self.width)
        out, cache = _crop_resize_forward(x, box, size, "bilinear")
        self._cache = (x.shape, box, cache)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        x_shape, box, cache = self._take_cache()
        self.grads = []
        if not need_input_grad:
            return None
        return _crop_resize_backward(dout, x_shape, box, cache, "bilinear")

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}
