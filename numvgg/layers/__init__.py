"""Layer classes with Keras' names and defaults; each wraps one op from :mod:`numvgg.ops`."""
from .base import Layer
from .conv import Conv2D
from .core import Activation, Dense, Dropout, Flatten
from .pooling import GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D

__all__ = ["Layer", "Conv2D", "Dense", "Flatten", "Dropout", "Activation", "MaxPooling2D",
           "GlobalAveragePooling2D", "GlobalMaxPooling2D"]

from .pooling import AveragePooling2D, AvgPool2D, MaxPool2D  # noqa: E402

__all__ += ["AveragePooling2D", "AvgPool2D", "MaxPool2D"]
