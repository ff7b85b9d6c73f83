"""Preprocessing and augmentation layers (Keras 3's image preprocessing layers).

``Rescaling``, ``Resizing`` and ``CenterCrop`` act the same in training and
inference. The ``Random*`` layers change images only when called with
``training=True`` (in ``fit``); otherwise they pass them through. All have a
backward pass, so they can sit inside a model in front of the layers that train.
"""

from .random_affine import RandomRotation, RandomTranslation, RandomZoom
from .random_color import RandomBrightness, RandomContrast
from .random_flip import RandomFlip
from .rescaling import Rescaling
from .resizing import CenterCrop, Resizing

__all__ = [
    "CenterCrop",
    "RandomBrightness",
    "RandomContrast",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "Rescaling",
    "Resizing",
]
