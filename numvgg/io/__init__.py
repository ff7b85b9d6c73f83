"""Keras weight files in and out (three layouts) and the ImageNet download."""

from .weights import load_weights, save_weights

__all__ = ["load_weights", "save_weights"]
