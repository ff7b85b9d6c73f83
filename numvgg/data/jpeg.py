"""Decode JPEG files to the same pixels as TensorFlow (what Keras' datasets see).

``keras.utils.image_dataset_from_directory`` reads every file with
``tf.image.decode_image``. For JPEGs, TensorFlow's decoder is libjpeg-turbo
with two settings that change pixel values:

* the **fast integer inverse DCT** (``JDCT_IFAST``), not the accurate one
  Pillow always uses;
* **fancy upsampling** of the subsampled chroma planes (4:2:0, 4:2:2):
  chroma is interpolated, not repeated.

``simplejpeg`` is a small binding to libjpeg-turbo that exposes both switches:
``decode_jpeg(data, fastdct=True, fastupsample=False)`` gives *bit-identical*
pixels to TF on baseline and progressive JPEGs with 4:4:4, 4:2:2 and 4:2:0
subsampling, colour and grayscale (``tests/test_jpeg_decoding.py`` checks each
against TensorFlow). With Pillow instead, about 70% of pixels differ by 1 to
5 grey levels. ``colorspace='GRAY'`` keeps libjpeg's luma channel, which is
also what TF returns for ``channels=1``.

``keras.utils.load_img`` uses Pillow, so :func:`numvgg.data.images.load_img`
keeps Pillow: each entry point decodes like its Keras twin.

If ``simplejpeg`` cannot be imported, :func:`decode_jpeg` returns ``None``
after one warning and the caller falls back to Pillow (pixels then differ
from Keras' as described above). CMYK JPEGs also go through libjpeg-turbo's
own colour conversion and may differ from TF's by 1-2 grey levels.
"""

from __future__ import annotations

import warnings

try:
    import simplejpeg
except ImportError:  # an optional speed/fidelity path: Pillow still decodes every file
    simplejpeg = None

JPEG_MAGIC = b"\xff\xd8\xff"
# color_mode -> libjpeg-turbo output colour space (alpha 255 added for 'rgba').
_COLORSPACES = {"rgb": "RGB", "grayscale": "GRAY", "rgba": "RGBA"}
_warned_missing = False


def is_jpeg(data: bytes) -> bool:
    """Does ``data`` start with the JPEG start-of-image marker?"""
    return data[:3] == JPEG_MAGIC


def decode_jpeg(data: bytes, color_mode: str):
    """Decode JPEG bytes like ``tf.image.decode_image``: uint8 ``(H, W, C)``.

    Args:
        data: the file's bytes.
        color_mode: ``'rgb'`` (C=3), ``'grayscale'`` (C=1, libjpeg's luma) or
            ``'rgba'`` (C=4, alpha 255; TF refuses this for JPEGs).
    Returns:
        The pixels, or ``None`` when ``simplejpeg`` is not installed (the
        caller then decodes with Pillow).
    Raises:
        ValueError: damaged or truncated data (simplejpeg's strict mode, which
            refuses what TF refuses).
    """
    global _warned_missing
    if simplejpeg is None:
        if not _warned_missing:
            _warned_missing = True
            warnings.warn(
                "simplejpeg is not installed: JPEGs are decoded with Pillow, whose "
                "pixels differ from Keras' (TensorFlow's) by up to ~5 grey levels. "
                "pip install simplejpeg for identical pixels.",
                stacklevel=3,
            )
        return None
    pixels = simplejpeg.decode_jpeg(
        data, colorspace=_COLORSPACES[color_mode], fastdct=True, fastupsample=False, strict=True
    )
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]  # (H, W) -> (H, W, 1)
    return pixels
