"""``RandomRotation``, ``RandomZoom``, ``RandomTranslation``: random affine warps (training only).

Each draws one transform per image, turns it into Keras' 8-number matrix
(:mod:`numvgg.ops.image`), and warps with
:func:`~numvgg.ops.image.affine_transform_forward`, which gives TensorFlow's
pixels for the same matrix, fill mode and interpolation.
"""

from __future__ import annotations

import numpy as np

from ...ops import image as image_ops
from .base import RandomLayer, check_factor


def _bounds(factor):
    """``f`` -> ``(-|f|, |f|)``; ``(a, b)`` -> sorted."""
    if isinstance(factor, (tuple, list)):
        return tuple(sorted(float(v) for v in factor))
    return -abs(float(factor)), abs(float(factor))


class _AffineLayer(RandomLayer):
    """Shared: fill mode, interpolation, fill value, and the warp itself.

    ``get_random_transformation`` returns the ``(N, 8)`` matrices;
    ``transform_images(x, matrices)`` applies given ones. Backward caches
    the warp's taps and weights.
    """

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        image_ops.check_fill_and_interpolation(
            fill_mode, interpolation, f"{type(self).__name__} '{self.name}'"
        )
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, float(fill_value)

    def _apply(self, x, matrices):
        return image_ops.affine_transform_forward(
            x, matrices, self.interpolation, self.fill_mode, self.fill_value
        )

    def _apply_backward(self, dout, cache):
        return image_ops.affine_transform_backward(dout, cache)

    def get_config(self):
        return {
            **super().get_config(),
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


class RandomRotation(_AffineLayer):
    """Rotate each image about its centre by a random angle.

    ``factor``: a fraction of a full turn, ``f`` (angles in ``[-f, f] * 360``
    degrees) or ``(lower, upper)``, each in ``[-1, 1]``; positive angles turn
    counter-clockwise. ``fill_mode`` (default ``'reflect'``), ``interpolation``
    (``'bilinear'``), ``fill_value`` as Keras. Shapes unchanged.
    :meth:`matrices` turns given angles (degrees) into the transform.
    """

    def __init__(
        self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        check_factor(factor, "factor", f"RandomRotation '{self.name}'", -1, 1)
        self.factor = _bounds(factor)

    @staticmethod
    def matrices(angles_deg, height, width):
        return image_ops.rotation_matrices(angles_deg, height, width)

    def get_random_transformation(self, x_shape):
        angles = self.rng.uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, size=x_shape[0])
        return self.matrices(angles, x_shape[1], x_shape[2])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomZoom(_AffineLayer):
    """Zoom each image in or out about its centre.

    ``height_factor``: ``f`` or ``(lower, upper)`` in ``(-1, 1]``; the height
    is scaled by ``1 + u``, ``u`` uniform in the range, so a *positive* value
    zooms *out* (reads a larger area) and a negative one zooms in, as in
    Keras. ``width_factor``: the same for the width; ``None`` (default) keeps
    the aspect ratio (one draw for both). Shapes unchanged.
    :meth:`matrices` turns given zooms into the transform.
    """

    def __init__(
        self,
        height_factor,
        width_factor=None,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        layer = f"RandomZoom '{self.name}'"
        check_factor(height_factor, "height_factor", layer, -1, 1, low_open=True)
        self.height_factor = _bounds(height_factor)
        self.width_factor = None
        if width_factor is not None:
            check_factor(width_factor, "width_factor", layer, -1, 1, low_open=True)
            self.width_factor = _bounds(width_factor)

    @staticmethod
    def matrices(width_zoom, height_zoom, height, width):
        return image_ops.zoom_matrices(width_zoom, height_zoom, height, width)

    def get_random_transformation(self, x_shape):
        n = x_shape[0]
        height_zoom = self.rng.uniform(1 + self.height_factor[0], 1 + self.height_factor[1], size=n)
        width_zoom = (
            height_zoom
            if self.width_factor is None
            else self.rng.uniform(1 + self.width_factor[0], 1 + self.width_factor[1], size=n)
        )
        return self.matrices(width_zoom, height_zoom, x_shape[1], x_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "height_factor": self.height_factor,
            "width_factor": self.width_factor,
        }


class RandomTranslation(_AffineLayer):
    """Shift each image by a random fraction of its height and width.

    ``height_factor`` / ``width_factor``: ``f`` or ``(lower, upper)`` in
    ``[-1, 1]``, fractions of the image size (positive: down / right).
    Shapes unchanged. :meth:`matrices` turns given shifts (pixels) into the
    transform.
    """

    def __init__(
        self,
        height_factor,
        width_factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        layer = f"RandomTranslation '{self.name}'"
        check_factor(height_factor, "height_factor", layer, -1, 1)
        check_factor(width_factor, "width_factor", layer, -1, 1)
        self.height_factor, self.width_factor = _bounds(height_factor), _bounds(width_factor)

    @staticmethod
    def matrices(dx, dy):
        return image_ops.translation_matrices(dx, dy)

    def get_random_transformation(self, x_shape):
        n, h, w = x_shape[:3]
        dy = self.rng.uniform(*self.height_factor, size=n).astype(np.float32) * np.float32(h)
        dx = self.rng.uniform(*self.width_factor, size=n).astype(np.float32) * np.float32(w)
        return self.matrices(dx, dy)

    def get_config(self):
        return {
            **super().get_config(),
            "height_factor": self.height_factor,
            "width_factor": self.width_factor,
        }
