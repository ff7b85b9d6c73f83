"""Images, image folders and datasets: Keras' ``load_img``, ``img_to_array``,
``image_dataset_from_directory``, and a ``Dataset`` with tf.data's methods."""

from .dataset import ImageDataset, image_dataset_from_directory
from .images import array_to_img, img_to_array, load_img, save_img
from .pipeline import AUTOTUNE, INFINITE, UNKNOWN, Dataset

__all__ = [
    "load_img",
    "img_to_array",
    "array_to_img",
    "save_img",
    "image_dataset_from_directory",
    "Dataset",
    "ImageDataset",
    "AUTOTUNE",
    "INFINITE",
    "UNKNOWN",
]
