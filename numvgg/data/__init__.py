"""Images and image folders: Keras' ``load_img``, ``img_to_array`` and ``image_dataset_from_directory``."""
from .dataset import image_dataset_from_directory
from .images import array_to_img, img_to_array, load_img, save_img

__all__ = ["load_img", "img_to_array", "array_to_img", "save_img", "image_dataset_from_directory"]
