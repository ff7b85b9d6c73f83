"""Models: ``Sequential`` (a stack of layers that is itself a layer)."""
from .sequential import Sequential, leaf_layers

__all__ = ["Sequential", "leaf_layers"]
