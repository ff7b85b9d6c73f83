"""Keras' ``keras.applications`` for VGG16: ``numvgg.applications.VGG16``;
and HED (Xie & Tu 2015), a VGG16-based edge detector: ``numvgg.applications.HED``."""

from . import vgg16
from .vgg16 import VGG16

__all__ = ["VGG16", "vgg16"]

from . import hed  # noqa: E402
from .hed import HED  # noqa: E402

__all__ += ["HED", "hed"]
