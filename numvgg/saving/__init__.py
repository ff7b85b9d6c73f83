"""Whole-model files in Keras 3's ``.keras`` format (``model.save``, ``load_model``)."""

from .keras_file import load_model, save_model
from .serialization import KerasFileError

__all__ = ["KerasFileError", "load_model", "save_model"]
