"""Keras' ``keras.utils`` names for numvgg's image helpers.

So code written for Keras, ``from keras.utils import load_img, img_to_array``,
becomes ``from numvgg.utils import load_img, img_to_array``.
"""
from .data.dataset import image_dataset_from_directory
from .data.images import array_to_img, img_to_array, load_img, save_img

from .random import set_random_seed  # Keras: keras.utils.set_random_seed

__all__ = ["load_img", "img_to_array", "array_to_img", "save_img", "image_dataset_from_directory",
           "set_random_seed"]
