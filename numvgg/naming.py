"""Keras' rule for default names, in one place (Keras: ``keras/src/utils/naming.py``).

``to_snake_case('MaxPooling2D') == 'max_pooling2d'``, ``'Conv2D' -> 'conv2d'``,
``'RMSprop' -> 'rm_sprop'`` (Keras' own spelling of RMSprop's default name).
Layers, optimizers and the ``.weights.h5`` reader all use this function, so a
default name is the one Keras would give.
"""

from __future__ import annotations

import re


def to_snake_case(class_name: str) -> str:
    """A class name in Keras' snake case (see the module docstring)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)  # split before a capitalised word
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
