"""Resize image arrays the way ``tf.image.resize`` does (what Keras' datasets use).

``keras.utils.image_dataset_from_directory`` decodes each file to ``uint8``
and calls ``tf.image.resize(img, image_size, method=interpolation)``. For
``'bilinear'`` (the default) and ``'nearest'`` this module repeats TF's
algorithm in NumPy, float32 for float32, and gives *the same numbers* as
TensorFlow (the tests compare them bit for bit):

* **half-pixel centres.** Output pixel ``i`` looks at input coordinate
  ``src = (i + 0.5) * scale - 0.5`` with ``scale = in_size / out_size``,
  so pixel *centres* line up, not corners;
* **no antialiasing.** Shrinking a 500-pixel row to 256 still samples only
  the two nearest pixels of each output pixel. Pillow's ``BILINEAR`` instead
  widens its filter when shrinking (averaging more pixels), which changes
  values by up to ~20 grey levels; that is why numvgg does not use it here.

Other Keras methods fall back to the closest Pillow filter, resampling
each channel as a float image, which matches TF closely only when enlarging
(Pillow antialiases when shrinking, TF does not; TF's ``area`` kernel is its own):

============  =============  ===============================================
Keras name    Pillow filter  largest difference from TF measured (0..255)
============  =============  ===============================================
bicubic       BICUBIC        0.04 enlarging; ~20-32 shrinking
area          BOX            ~25-35 enlarging and shrinking
lanczos3      LANCZOS        < 0.01 enlarging; ~20-33 shrinking
============  =============  ===============================================

(measured on noisy photo-like test pictures, 60x80 -> 224x224 and
375x500 -> 256x256; smooth photos differ less.)

``'lanczos5'``, ``'gaussian'`` and ``'mitchellcubic'`` have no Pillow twin and
raise an error.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

EXACT_METHODS = ("bilinear", "nearest")
PILLOW_METHODS = {
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
    "lanczos3": Image.Resampling.LANCZOS,
}
KERAS_ONLY_METHODS = ("lanczos5", "gaussian", "mitchellcubic")


def _bilinear_taps(in_size: int, out_size: int):
    """For each output position: the two input indices it blends and the weight of the second.

    Returns ``lower, upper`` (int, ``(out_size,)``) and ``frac`` (float32,
    ``(out_size,)``): ``out[i] = in[lower] + (in[upper] - in[lower]) * frac``.
    Computed in float32, in TF's order, so rounding matches.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(src)
    # Positions left of the first centre (src < 0) or right of the last clamp to the edge pixel.
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    return lower, upper, (src - floor).astype(np.float32)


def resize_bilinear(x: np.ndarray, size) -> np.ndarray:
    """Bilinear resize with half-pixel centres and no antialiasing (TF's ``'bilinear'``).

    Args:
        x: ``(H, W, C)`` image, any numeric dtype (``uint8`` straight from a file).
        size: ``(OH, OW)``.
    Returns:
        float32 ``(OH, OW, C)``. Each output is a blend of the 2x2 input pixels
        around ``((i + 0.5) * H / OH - 0.5, (j + 0.5) * W / OW - 0.5)``.
    """
    x = np.asarray(x, dtype=np.float32)
    top, bottom, fy = _bilinear_taps(x.shape[0], size[0])
    left, right, fx = _bilinear_taps(x.shape[1], size[1])
    fx = fx[None, :, None]  # (1, OW, 1), broadcasts over rows and channels
    fy = fy[:, None, None]  # (OH, 1, 1)
    rows_top = np.take(x, top, axis=0)  # (OH, W, C)
    rows_bottom = np.take(x, bottom, axis=0)  # (OH, W, C)
    # TF blends horizontally first, then vertically; same order, same float32 rounding.
    tl, tr = np.take(rows_top, left, axis=1), np.take(rows_top, right, axis=1)  # (OH, OW, C)
    bl, br = np.take(rows_bottom, left, axis=1), np.take(rows_bottom, right, axis=1)  # (OH, OW, C)
    upper_row = tl + (tr - tl) * fx
    lower_row = bl + (br - bl) * fx
    return upper_row + (lower_row - upper_row) * fy  # (OH, OW, C)


def _nearest_taps(in_size: int, out_size: int) -> np.ndarray:
    """Input index picked for each output index: ``floor((i + 0.5) * scale)``, clamped."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale)
    return np.minimum(src.astype(np.int64), in_size - 1)


def resize_nearest(x: np.ndarray, size) -> np.ndarray:
    """Nearest-neighbour resize with half-pixel centres (TF's ``'nearest'``).

    Args:
        x: ``(H, W, C)``; size: ``(OH, OW)``.
    Returns:
        float32 ``(OH, OW, C)``: pixel ``(i, j)`` copies input pixel
        ``(floor((i + 0.5) * H / OH), floor((j + 0.5) * W / OW))``.
        (TF keeps the input dtype here, so Keras' ``'nearest'`` datasets yield
        ``uint8``; numvgg yields the same values as float32, like every other method.)
    """
    rows = _nearest_taps(x.shape[0], size[0])
    cols = _nearest_taps(x.shape[1], size[1])
    picked = np.take(np.take(x, rows, axis=0), cols, axis=1)  # (OH, OW, C)
    return picked.astype(np.float32)


def resize_with_pillow(x: np.ndarray, size, interpolation: str) -> np.ndarray:
    """Resize each channel as a float32 Pillow image (no rounding to 8 bits).

    Args:
        x: ``(H, W, C)``; size: ``(OH, OW)``; interpolation: a key of
            ``PILLOW_METHODS``. Returns float32 ``(OH, OW, C)``.
    """
    x = np.asarray(x, dtype=np.float32)
    resample = PILLOW_METHODS[interpolation]
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(x[:, :, c]), mode="F").resize((size[1], size[0]), resample)
        )  # Pillow wants (W, H)
        for c in range(x.shape[2])
    ]
    return np.stack(channels, axis=-1)  # (OH, OW, C)


def check_interpolation(interpolation: str) -> str:
    """Lower-case ``interpolation`` and check numvgg can resize with it."""
    name = str(interpolation).lower()
    if name in EXACT_METHODS or name in PILLOW_METHODS:
        return name
    if name in KERAS_ONLY_METHODS:
        raise ValueError(
            f"interpolation='{name}' is accepted by Keras (TensorFlow kernels) but "
            "numvgg has no equivalent; use one of "
            f"{EXACT_METHODS + tuple(PILLOW_METHODS)} ('bilinear' and 'nearest' "
            "match Keras exactly)."
        )
    raise ValueError(
        "Argument `interpolation` should be one of "
        f"{EXACT_METHODS + tuple(PILLOW_METHODS)}. Received: interpolation={interpolation}"
    )


def resize(x: np.ndarray, size, interpolation: str = "bilinear") -> np.ndarray:
    """Resize an ``(H, W, C)`` image to ``size = (OH, OW)`` like ``tf.image.resize``.

    Returns float32 ``(OH, OW, C)``, also when the size does not change.
    """
    name = check_interpolation(interpolation)
    if name == "bilinear":
        return resize_bilinear(x, size)
    if name == "nearest":
        return resize_nearest(x, size)
    return resize_with_pillow(x, size, name)


def aspect_ratio_crop(x: np.ndarray, size) -> np.ndarray:
    """Centre crop of ``x`` with the aspect ratio of ``size`` (Keras' ``smart_resize``, step 1).

    Args:
        x: ``(H, W, C)``; size: target ``(OH, OW)``.
    Returns:
        A view ``(CH, CW, C)`` with ``CH / CW`` as close to ``OH / OW`` as whole
        pixels allow; the largest such window, centred (extra pixel goes right/bottom).
    """
    height, width = x.shape[:2]
    target_h, target_w = size
    # Integer floor division equals Keras' float-then-truncate for these positive sizes.
    crop_h = max(min(height, (width * target_h) // target_w), 1)
    crop_w = max(min(width, (height * target_w) // target_h), 1)
    top = (height - crop_h) // 2
    left = (width - crop_w) // 2
    return x[top : top + crop_h, left : left + crop_w]
