"""ImageNet input preprocessing and prediction decoding, as in Keras.

``preprocess_input`` prepares images for a network trained on ImageNet;
VGG16 uses mode ``'caffe'``: reverse the channels (RGB -> BGR, the order the
original Caffe weights were trained in) and subtract the mean ImageNet pixel
``[103.939, 116.779, 123.68]`` (B, G, R), without scaling. So a pixel of
value 0..255 ends up roughly in -124..152.

``decode_predictions`` turns the ``(N, 1000)`` softmax output into the top
classes by name, using Keras' ``imagenet_class_index.json``: Keras' cached copy
when there is one, else the identical copy shipped with numvgg (see
``imagenet_class_index.README.md`` next to this file), so it never needs the network.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..errors import ClassIndexError, ShapeError
from ..layers.base import Layer
from ..layers.symbolic import KerasTensor

# Mean pixel of the ImageNet training set, in BGR order ('caffe').
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# 'torch' mode: RGB mean and standard deviation of pixels scaled to 0..1.
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)
NUM_IMAGENET_CLASSES = 1000


def _short(value) -> str:
    """A value for an error message: strings as they are, anything else by type (an array
    passed by mistake, e.g. labels through ``ds.map(preprocess_input)``, is not printed)."""
    return value if isinstance(value, str) else f"<{type(value).__name__}>"


def preprocess_input(x, data_format=None, mode: str = "caffe") -> np.ndarray:
    """Prepare a batch of 0..255 images for an ImageNet network (VGG16: ``mode='caffe'``).

    Args:
        x: ``(H, W, 3)`` or ``(N, H, W, 3)`` (channels first: ``(3, H, W)`` /
            ``(N, 3, H, W)``), RGB, values 0..255, any numeric dtype.
        data_format: ``'channels_last'`` (default when ``None``) or ``'channels_first'``.
        mode: ``'caffe'``: RGB -> BGR, then subtract ``[103.939, 116.779, 123.68]``;
            ``'tf'``: ``x / 127.5 - 1`` (to -1..1); ``'torch'``: ``x / 255``, then
            per channel ``(x - mean) / std`` with ImageNet's RGB mean and std.
    Returns:
        As in Keras: a float NumPy array is **changed in place** and returned
        (in ``'caffe'`` mode as a channel-reversed view of it, so the caller's
        array ends up mean-subtracted but still in RGB order -- use the return
        value), in its own float dtype. Integer input, lists and read-only
        arrays get a new float32 array (Keras casts integers the same way; it
        raises for a read-only array, numvgg copies it).
    Raises:
        ValueError: unknown ``mode`` or ``data_format``.
        ShapeError: not 3-D / 4-D, or the channel axis is not 3 (``'caffe'``, ``'torch'``).
    """
    if not isinstance(mode, str) or mode not in ("caffe", "tf", "torch"):
        raise ValueError(
            f"Expected mode to be one of `caffe`, `tf` or `torch`. Received: mode={_short(mode)}"
        )
    if isinstance(x, KerasTensor):
        # Inside a functional model (Chollet's `x = preprocess_input(x)` after the
        # augmentation layers): a layer doing the same, forward and backward.
        if mode != "caffe" or data_format not in (None, "channels_last"):
            raise ValueError(
                "On a symbolic tensor numvgg's preprocess_input does VGG16's 'caffe' "
                "mode, channels last; preprocess the arrays before the model for "
                f"mode={mode!r}, data_format={data_format!r}."
            )
        return CaffePreprocessing()(x)
    if data_format is None:
        data_format = "channels_last"
    elif not isinstance(data_format, str) or data_format not in ("channels_first", "channels_last"):
        raise ValueError(
            "Expected data_format to be one of `channels_first` or `channels_last`. "
            f"Received: data_format={_short(data_format)}"
        )
    in_place = isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating) and x.flags.writeable
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ShapeError(
            f"preprocess_input expects one image (H, W, 3) or a batch (N, H, W, 3); "
            f"received an array of shape {x.shape}."
        )
    # Move channels last so one code path serves both layouts (a view: writes reach x).
    channel_axis = -1 if data_format == "channels_last" else x.ndim - 3
    x = np.moveaxis(x, channel_axis, -1)  # (..., H, W, C)
    if mode in ("caffe", "torch") and x.shape[-1] != 3:
        raise ShapeError(
            f"preprocess_input(mode='{mode}') needs 3 colour channels on the "
            f"{data_format} axis; received an array of shape "
            f"{np.moveaxis(x, -1, channel_axis).shape}."
        )
    if not in_place:
        from ..config import floatx

        x = x.astype(floatx())  # Keras: integers become floatx
    dtype = x.dtype

    if mode == "tf":
        x /= 127.5
        x -= 1.0
    elif mode == "torch":
        x /= 255.0
        x -= np.asarray(TORCH_MEAN_RGB, dtype=dtype)
        x /= np.asarray(TORCH_STD_RGB, dtype=dtype)
    else:
        x = x[..., ::-1]  # RGB -> BGR: a view, as in Keras
        x -= np.asarray(CAFFE_MEAN_BGR, dtype=dtype)
    return np.moveaxis(x, -1, channel_axis)


class CaffePreprocessing(Layer):
    """``preprocess_input`` as a layer, for a functional model: RGB -> BGR, then
    subtract ImageNet's mean ``[103.939, 116.779, 123.68]`` (BGR).

    Shapes: in and out ``(N, H, W, 3)``. Backward caches nothing: the map is
    a channel reversal plus a constant, so ``dx = dout`` with its channels
    reversed back.
    """

    def compute_output_shape(self, input_shape):
        if input_shape[-1] != 3:
            raise ShapeError(
                f"CaffePreprocessing '{self.name}' needs 3 colour channels last; "
                f"received input of shape {input_shape}."
            )
        return tuple(input_shape)

    def forward(self, x, training=False):
        x = self._as_input(x)
        self._cache = True  # nothing to keep, but a forward happened
        return x[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, dtype=x.dtype)

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        self._take_cache()
        return np.ascontiguousarray(dout[..., ::-1]) if need_input_grad else None


_CLASS_INDEX_CACHE: dict[str, dict] = {}

# Byte-identical to the file Keras downloads (same md5), so either copy gives the same names.
BUNDLED_CLASS_INDEX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_class_index.json")


def class_index_path() -> str:
    """Where the class names are read from; never downloads.

    Keras' cached ``imagenet_class_index.json`` when one with the right md5 is
    in the folders ``numvgg weights`` lists (``$KERAS_HOME/models`` or
    ``~/.keras/models``, ...), else the copy shipped in this package.
    """
    from ..io import download  # imported here: numvgg.io is not needed until decoding

    published = download.IMAGENET_CLASS_INDEX
    cached = download.find_local(published.fname, published.md5, download.search_folders("models"))
    return cached if cached is not None else BUNDLED_CLASS_INDEX


def imagenet_class_index() -> dict:
    """``{"0": ["n01440764", "tench"], ...}``: the 1000 ImageNet classes, offline."""
    return load_class_index(class_index_path())


def imagenet_class_name(index: int) -> str:
    """The name of ImageNet class ``index`` (0..999), e.g. ``281 -> 'tabby'``."""
    if not 0 <= int(index) < NUM_IMAGENET_CLASSES:
        raise ValueError(f"ImageNet class index must be in 0..{NUM_IMAGENET_CLASSES - 1}; got {index}")
    return imagenet_class_index()[str(int(index))][1]


def load_class_index(path) -> dict:
    """Read ``imagenet_class_index.json``: ``{"0": ["n01440764", "tench"], ...}``.

    Returns the dict, cached per path. Raises :class:`ClassIndexError`
    naming the file if it is not valid JSON or not 1000 ``[wnid, name]`` pairs.
    """
    path = str(path)
    if path in _CLASS_INDEX_CACHE:
        return _CLASS_INDEX_CACHE[path]
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        raise ClassIndexError(f"Cannot read the ImageNet class index '{path}': {e}") from e
    wanted = {str(i) for i in range(NUM_IMAGENET_CLASSES)}
    if (
        not isinstance(index, dict)
        or set(index) != wanted
        or not all(isinstance(v, list) and len(v) == 2 for v in index.values())
    ):
        raise ClassIndexError(
            f"'{path}' is not the ImageNet class index: expected keys '0'..'999' "
            "each mapping to [wnid, class_name]."
        )
    _CLASS_INDEX_CACHE[path] = index
    return index


def decode_predictions(preds, top: int = 5) -> list[list[tuple]]:
    """The ``top`` most probable ImageNet classes of each prediction.

    Args:
        preds: ``(N, 1000)`` scores, e.g. VGG16's softmax output.
        top: how many classes to return per sample.
    Returns:
        One list per sample of ``(wnid, class_name, score)`` tuples, highest
        score first, e.g. ``[('n02123045', 'tabby', 0.62), ...]``. Ties are
        ordered as Keras orders them (same ``argsort`` call).
    Raises:
        ShapeError: ``preds`` is not ``(N, 1000)`` (Keras' message).
        ClassIndexError: Keras' cached class index cannot be read.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != NUM_IMAGENET_CLASSES:
        raise ShapeError(
            "`decode_predictions` expects a batch of predictions (i.e. a 2D array of "
            f"shape (samples, 1000)). Received array with shape: {preds.shape}"
        )
    if int(top) < 1:
        raise ValueError(f"top must be at least 1. Received: top={top}")
    index = imagenet_class_index()
    results = []
    for pred in preds:  # pred: (1000,)
        top_indices = pred.argsort()[-int(top) :][::-1]
        result = [(*index[str(i)], pred[i]) for i in top_indices]
        result.sort(key=lambda item: item[2], reverse=True)
        results.append(result)
    return results
