"""Keras' ``keras.applications`` for VGG16: ``numvgg.applications.VGG16``."""
from . import vgg16
from .vgg16 import VGG16

__all__ = ["VGG16", "vgg16"]
