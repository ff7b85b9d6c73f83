"""Layer classes with Keras' names and defaults; each wraps one op from :mod:`numvgg.ops`."""

from .base import Layer
from .conv import Conv2D
from .core import Activation, Dense, Dropout, Flatten
from .input_layer import Input, InputLayer
from .merging import Add, Average, Concatenate, Multiply
from .normalization import BatchNormalization
from .pooling import GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from .preprocessing import (
    CenterCrop,
    RandomBrightness,
    RandomContrast,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Rescaling,
    Resizing,
)
from .resize_like import ResizeLike
from .symbolic import KerasTensor

__all__ = [
    "Layer",
    "Conv2D",
    "Dense",
    "Flatten",
    "Dropout",
    "Activation",
    "MaxPooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Concatenate",
    "Add",
    "Multiply",
    "Average",
    "ResizeLike",
    "BatchNormalization",
    "Rescaling",
    "Resizing",
    "CenterCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
]

from .pooling import AveragePooling2D, AvgPool2D, MaxPool2D  # noqa: E402

__all__ += ["AveragePooling2D", "AvgPool2D", "MaxPool2D"]
