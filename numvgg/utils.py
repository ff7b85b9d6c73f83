"""Keras' ``keras.utils`` names: numvgg's image helpers, ``to_categorical``, ``set_random_seed``.

So code written for Keras, ``from keras.utils import load_img, img_to_array``,
becomes ``from numvgg.utils import load_img, img_to_array``.
"""

import numpy as np

from .data.dataset import image_dataset_from_directory
from .data.images import array_to_img, img_to_array, load_img, save_img
from .random import set_random_seed  # Keras: keras.utils.set_random_seed

__all__ = [
    "load_img",
    "img_to_array",
    "array_to_img",
    "save_img",
    "image_dataset_from_directory",
    "set_random_seed",
    "to_categorical",
]


def to_categorical(x, num_classes=None) -> np.ndarray:
    """Class indices to one-hot rows, as ``keras.utils.to_categorical``.

    ``to_categorical([0, 2], 3)`` is ``[[1, 0, 0], [0, 0, 1]]``.

    Args:
        x: integer class indices, any shape; a last axis of size 1 is dropped
            (labels shaped ``(N, 1)`` give ``(N, num_classes)``). Non-integers
            are cut to integers, as Keras' ``np.array(x, dtype='int64')`` does.
        num_classes: number of classes; ``None`` (or 0) means ``max(x) + 1``.
    Returns:
        float64 array ``x.shape + (num_classes,)`` (Keras' dtype for NumPy input).
    Raises:
        ValueError: for an index outside ``0 .. num_classes - 1`` (Keras raises
            ``IndexError`` above the range and silently wraps negative ones).
    """
    x = np.array(x, dtype="int64")
    shape = x.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    x = x.reshape(-1)
    if not num_classes:
        num_classes = int(np.max(x)) + 1 if x.size else 0
    bad = x[(x < 0) | (x >= num_classes)]
    if bad.size:
        raise ValueError(
            f"to_categorical: class index {int(bad[0])} is outside 0 .. {num_classes - 1} "
            f"(num_classes={num_classes})"
        )
    one_hot = np.zeros((x.size, num_classes))
    one_hot[np.arange(x.size), x] = 1
    return one_hot.reshape(*shape, num_classes)
