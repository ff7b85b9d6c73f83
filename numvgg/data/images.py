"""Image files <-> arrays, exactly as ``keras.utils`` does it.

``load_img`` opens a file with Pillow and returns a ``PIL.Image``;
``img_to_array`` turns it into a float32 ``(H, W, C)`` array. Both follow
Keras 3's ``keras/src/utils/image_utils.py`` step for step, so the arrays they
give are *identical* to Keras' (the tests check it), including Keras' quirks:

* **Colour modes.** ``color_mode='rgb'`` calls Pillow's ``convert('RGB')``
  unless the image already is RGB: grayscale is copied to three channels, the
  alpha channel of RGBA / LA images is dropped (not blended onto a
  background), palette images are looked up, CMYK uses Pillow's formula.
  ``'grayscale'`` keeps 8-bit ``L``, 16-bit ``I;16`` and 32-bit ``I`` images
  as they are (so a 16-bit PNG gives values up to 65535) and converts
  anything else to ``L``. ``'rgba'`` converts to RGBA (opaque alpha 255 added).
* **16-bit PNGs.** Pillow opens 16-bit RGB(A) PNGs as 8-bit (the high byte
  of each sample), but a 16-bit *grayscale* PNG as ``I;16``; converting that
  to RGB clips every value above 255 to 255, so with ``color_mode='rgb'``
  such an image comes out almost white. Keras does the same; use
  ``color_mode='grayscale'`` to get the 16-bit values.
* **EXIF orientation is ignored.** Keras never calls
  ``ImageOps.exif_transpose``, so a phone photo stored sideways with an
  "rotate 90" EXIF tag loads sideways, in Keras and here alike. Call
  ``PIL.ImageOps.exif_transpose(img)`` yourself if you want it upright.
* **Resizing** (``target_size``) uses Pillow's ``resize`` with
  ``interpolation='nearest'`` by default. Pillow's bilinear / bicubic
  filters antialias when shrinking; ``image_dataset_from_directory``
  resizes like TensorFlow instead (see :mod:`numvgg.data.resize`).
* Animated GIFs: the first frame.

What numvgg adds: a missing or unreadable file raises
:class:`ImageNotFoundError` / :class:`ImageFileError` naming the path, with
Pillow's own error chained as the cause.

**Big images.** Pillow refuses images of more than twice
``PIL.Image.MAX_IMAGE_PIXELS`` pixels (about 179 million by default) as
possible decompression bombs; ``load_img`` then raises
:class:`ImageFileError` naming the file (raise Pillow's limit to load it on
purpose). Below that, decoding costs width x height x channels bytes, as in
Keras, whatever ``target_size`` is. One exception, where numvgg departs from
Keras on purpose: a JPEG of more than ``DRAFT_ABOVE_PIXELS`` (16.7 million,
4096 x 4096) pixels loaded with a ``target_size`` at most half its size is
decoded at 1/2, 1/4 or 1/8 scale (Pillow's ``draft``, the JPEG decoder's own
downscaling) and then resized: the memory drops by up to 64x, and the
pixels differ slightly from Keras', which decodes every pixel first.
"""

from __future__ import annotations

import io
import os
import pathlib
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageFileError, ImageNotFoundError, ShapeError

# Keras' table: interpolation name -> Pillow resampling filter.
PIL_INTERPOLATION_METHODS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "hamming": Image.Resampling.HAMMING,
    "box": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
}

COLOR_MODES = ("grayscale", "rgb", "rgba")

# JPEGs above this many pixels are decoded at a reduced scale when the target
# size allows it (see the module docstring); below it, exactly like Keras.
DRAFT_ABOVE_PIXELS = 4096 * 4096
DATA_FORMATS = ("channels_last", "channels_first")


def _check_data_format(data_format) -> str:
    # ``None`` means Keras' global default, which numvgg fixes to NHWC.
    if data_format is None:
        return "channels_last"
    data_format = str(data_format).lower()
    if data_format not in DATA_FORMATS:
        raise ValueError(
            "The `data_format` argument must be one of "
            f"{{'channels_first', 'channels_last'}}. Received: data_format={data_format}"
        )
    return data_format


def read_image_bytes(path) -> bytes:
    """The whole file at ``path`` (str, ``pathlib.Path`` or bytes) as bytes.

    Raises:
        ImageNotFoundError: no file at ``path``.
        ImageFileError: a folder, an unreadable or an empty file (naming it).
        TypeError: ``path`` is of another type.
    """
    if not isinstance(path, (pathlib.Path, bytes, str)):
        raise TypeError(f"path should be path-like or io.BytesIO, not {type(path)}")
    if isinstance(path, pathlib.Path):
        path = str(path.resolve())
    shown = os.fsdecode(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as e:
        raise ImageNotFoundError(f"No image file at '{shown}'.") from e
    except IsADirectoryError as e:
        raise ImageFileError(f"'{shown}' is a directory, not an image file.") from e
    except OSError as e:  # permissions, I/O errors
        raise ImageFileError(f"Cannot read image file '{shown}': {e}") from e
    if not data:
        raise ImageFileError(f"Cannot read image '{shown}': the file is empty (0 bytes).")
    return data


def open_image(path) -> Image.Image:
    """Open ``path`` (str, ``pathlib.Path``, bytes, or an ``io.BytesIO``) as a PIL image.

    The file is read into memory first, as Keras does, so no file handle stays
    open. Pillow decodes lazily: a truncated file may only fail later, when the
    pixels are needed (``convert``, ``resize``, ``np.asarray``).

    Raises:
        ImageNotFoundError: no file at ``path``.
        ImageFileError: the file cannot be opened as an image.
        TypeError: ``path`` is of another type.
    """
    if isinstance(path, io.BytesIO):
        try:
            return Image.open(path)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise ImageFileError(f"Cannot read the in-memory image: {e}") from e
    data = read_image_bytes(path)
    shown = os.fsdecode(str(path.resolve()) if isinstance(path, pathlib.Path) else path)
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise ImageFileError(
            f"Cannot read image '{shown}': it is too big to decode safely ({e}). If you trust "
            "it, raise Pillow's limit: PIL.Image.MAX_IMAGE_PIXELS = ..."
        ) from e
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ImageFileError(
            f"Cannot read image '{shown}': not an image file Pillow can read, or a damaged one."
        ) from e


def convert_color_mode(img: Image.Image, color_mode: str) -> Image.Image:
    """Convert a PIL image to the mode ``color_mode`` asks for (Keras' rules).

    ``'grayscale'`` keeps ``L``, ``I;16`` and ``I`` images unchanged and
    converts the rest to ``L`` (``L = 0.299 R + 0.587 G + 0.114 B``, rounded);
    ``'rgb'`` and ``'rgba'`` convert to ``RGB`` / ``RGBA`` unless already so.
    """
    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode == "rgba":
        if img.mode != "RGBA":
            img = img.convert("RGBA")
    elif color_mode == "rgb":
        if img.mode != "RGB":
            img = img.convert("RGB")
    else:
        raise ValueError(f'color_mode must be "grayscale", "rgb", or "rgba". Received: {color_mode!r}')
    return img


def keep_aspect_crop_box(width: int, height: int, target_width: int, target_height: int):
    """The centred box ``(left, top, right, bottom)`` with the target's aspect ratio.

    The largest window of the image whose width/height ratio is the target's,
    centred; integer floor divisions as in Keras' ``load_img``.
    """
    crop_height = min(height, (width * target_height) // target_width)
    crop_width = min(width, (height * target_width) // target_height)
    top = (height - crop_height) // 2
    left = (width - crop_width) // 2
    return [left, top, left + crop_width, top + crop_height]


def load_img(
    path,
    color_mode: str = "rgb",
    target_size=None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
) -> Image.Image:
    """Load an image file into a PIL image, like ``keras.utils.load_img``.

    Args:
        path: file path (str / ``pathlib.Path`` / bytes) or an ``io.BytesIO``.
        color_mode: ``'rgb'`` (3 channels), ``'rgba'`` (4) or ``'grayscale'``
            (1); conversions as described in the module docstring.
        target_size: ``None`` to keep the file's size, or ``(height, width)``.
        interpolation: Pillow filter used when resizing: ``'nearest'``
            (default, as Keras), ``'bilinear'``, ``'bicubic'``, ``'hamming'``,
            ``'box'`` or ``'lanczos'``.
        keep_aspect_ratio: crop the largest centred window with the target's
            aspect ratio before resizing, so nothing is stretched.
    Returns:
        A ``PIL.Image.Image`` of size ``(width, height)`` = ``target_size[::-1]``.
        EXIF orientation is *not* applied (Keras does not either).
    Raises:
        ImageNotFoundError / ImageFileError: missing or unreadable file, naming it.
        ValueError: unknown ``color_mode`` or ``interpolation``.
    """
    if color_mode not in COLOR_MODES:
        raise ValueError(f'color_mode must be "grayscale", "rgb", or "rgba". Received: {color_mode!r}')
    if target_size is not None and interpolation not in PIL_INTERPOLATION_METHODS:
        raise ValueError(
            f"Invalid interpolation method {interpolation} specified. Supported "
            f"methods are {', '.join(PIL_INTERPOLATION_METHODS)}"
        )
    img = open_image(path)
    shown = "<BytesIO>" if isinstance(path, io.BytesIO) else os.fsdecode(path)
    try:
        if target_size is not None:
            _draft_if_huge(img, color_mode, (target_size[1], target_size[0]))
        img.load()  # decode now, so a damaged file fails here, with its name
        img = convert_color_mode(img, color_mode)
        if target_size is not None:
            width_height = (target_size[1], target_size[0])  # PIL sizes are (W, H)
            if img.size != width_height:
                box = keep_aspect_crop_box(*img.size, *width_height) if keep_aspect_ratio else None
                img = img.resize(width_height, PIL_INTERPOLATION_METHODS[interpolation], box=box)
    except (OSError, SyntaxError) as e:
        raise ImageFileError(f"Cannot decode image '{shown}': {e}") from e
    return img


def _draft_if_huge(img: Image.Image, color_mode: str, width_height) -> None:
    """Let a huge JPEG decode at 1/2, 1/4 or 1/8 scale, still at least twice
    ``width_height`` (Pillow's ``draft``; see the module docstring)."""
    width, height = img.size
    if img.format != "JPEG" or width * height <= DRAFT_ABOVE_PIXELS:
        return
    wanted = (2 * width_height[0], 2 * width_height[1])
    if wanted[0] > width // 2 or wanted[1] > height // 2:
        return
    img.draft("L" if color_mode == "grayscale" else "RGB", wanted)


def img_to_array(img, data_format: str = "channels_last", dtype: str = "float32") -> np.ndarray:
    """PIL image -> array, like ``keras.utils.img_to_array``.

    Args:
        img: a PIL image (any object ``np.asarray`` understands works too).
        data_format: ``'channels_last'`` gives ``(H, W, C)``,
            ``'channels_first'`` gives ``(C, H, W)``; ``None`` = channels_last.
        dtype: output dtype, ``float32`` by default. Values are *not* scaled:
            an 8-bit image gives 0..255.
    Returns:
        A new array with 3 axes; a one-channel image gets ``C = 1``.
    Raises:
        ShapeError: the image is not 2-D or 3-D.
    """
    data_format = _check_data_format(data_format)
    if dtype is None:
        dtype = "float32"
    x = np.asarray(img, dtype=dtype)
    if x.ndim == 3:
        if data_format == "channels_first":
            x = x.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
    elif x.ndim == 2:
        if data_format == "channels_first":
            x = x.reshape((1, x.shape[0], x.shape[1]))  # (H, W) -> (1, H, W)
        else:
            x = x.reshape((x.shape[0], x.shape[1], 1))  # (H, W) -> (H, W, 1)
    else:
        raise ShapeError(f"Unsupported image shape: {x.shape}; expected (H, W) or (H, W, C).")
    return x


def array_to_img(
    x, data_format: str = "channels_last", scale: bool = True, dtype: str = "float32"
) -> Image.Image:
    """Array -> PIL image, like ``keras.utils.array_to_img``.

    Args:
        x: one image, ``(H, W, C)`` (or ``(C, H, W)`` with channels_first),
            ``C`` in 1, 3, 4.
        scale: stretch values linearly so that the minimum becomes 0 and the
            maximum 255 (Keras' default). With ``scale=False`` values are cast
            to ``uint8`` as they are: keep them within 0..255 yourself, as
            out-of-range values wrap around (Keras behaves the same).
    Returns:
        A PIL image in mode ``RGB``, ``RGBA``, ``L``, or ``I`` (a one-channel
        image whose values exceed 255 after scaling).
    Raises:
        ShapeError: not one image, or an unsupported channel count.
    """
    data_format = _check_data_format(data_format)
    x = np.asarray(x, dtype=dtype or "float32")
    if x.ndim != 3:
        raise ShapeError(
            f"Expected image array to have rank 3 (single image). Got array with shape: {x.shape}"
        )
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if scale:
        x = x - np.min(x)
        x_max = np.max(x)
        if x_max != 0:
            x /= x_max
        x *= 255
    channels = x.shape[2]
    if channels == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")  # 32-bit grayscale
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ShapeError(
        f"Unsupported channel number: {channels} (array of shape {x.shape}); expected 1, 3 or 4."
    )


def save_img(
    path, x, data_format: str = "channels_last", file_format=None, scale: bool = True, **kwargs
) -> None:
    """Save an image array to ``path`` (or a file object), like ``keras.utils.save_img``.

    Args:
        path: where to write; the format comes from the extension unless
            ``file_format`` is given (required for file objects).
        x: one image, see :func:`array_to_img` (``scale`` has the same meaning).
        **kwargs: passed to ``PIL.Image.save`` (e.g. ``quality=95``).

    An RGBA array saved as JPEG is converted to RGB with a warning, as Keras does.
    """
    data_format = _check_data_format(data_format)
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"  # Pillow's name for it
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn("The JPEG format does not support RGBA images, converting to RGB.", stacklevel=2)
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)
