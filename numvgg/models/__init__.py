"""Models: ``Model`` (a graph of layers; ``Model(inputs, outputs)`` is Keras'
functional API) and ``Sequential`` (a chain). Both are layers themselves."""
from .functional import Functional
from .model import Model
from .sequential import Sequential


def leaf_layers(model):
    """Every layer inside ``model`` that computes (no models, no input layers), in order."""
    return model.leaf_layers()


__all__ = ["Model", "Functional", "Sequential", "leaf_layers"]
