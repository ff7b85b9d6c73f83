"""Keras' ``keras.preprocessing`` names that Keras 3 still has: ``image`` and
``image_dataset_from_directory``.

So ``from keras.preprocessing import image`` becomes
``from numvgg.preprocessing import image``.
"""

from ..data.dataset import image_dataset_from_directory
from . import image

__all__ = ["image", "image_dataset_from_directory"]
