"""``keras.preprocessing.image``: the image helpers Keras 3 keeps under this
old name (``image.load_img``, ``image.img_to_array``, ...), the same functions
as in :mod:`numvgg.utils`.

Keras 3 also lists ``smart_resize`` here; numvgg does not have it.
"""

from ..data.images import array_to_img, img_to_array, load_img, save_img

__all__ = ["load_img", "img_to_array", "array_to_img", "save_img"]
