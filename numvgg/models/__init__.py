"""Models: ``Model`` (a graph of layers; ``Model(inputs, outputs)`` is Keras'
functional API) and ``Sequential`` (a chain). Both are layers themselves."""

from .functional import Functional
from .model import Model
from .sequential import Sequential


def leaf_layers(model):
    """Every layer inside ``model`` that computes (no models, no input layers), in order."""
    return model.leaf_layers()


def load_model(filepath, compile: bool = True, custom_objects=None, safe_mode: bool = True):
    """Load a Keras 3 ``.keras`` file, as ``keras.models.load_model`` (see :mod:`numvgg.saving`)."""
    from ..saving import load_model as _load_model

    return _load_model(filepath, compile=compile, custom_objects=custom_objects, safe_mode=safe_mode)


__all__ = ["Model", "Functional", "Sequential", "leaf_layers", "load_model"]
