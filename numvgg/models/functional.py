"""``Functional``: what ``Model(inputs, outputs)`` is called in Keras.

Keras' ``keras.Model(inputs, outputs)`` returns an instance of its class
``Functional``, and ``summary()`` shows nested models as ``(Functional)``;
``VGG16`` returns one. numvgg keeps the name for the same reasons: the type
shown in tables, and the group name ``functional`` in ``.weights.h5`` files.
All the work is done by :class:`~numvgg.models.model.Model`.
"""
from __future__ import annotations

from .model import Model


class Functional(Model):
    """A model built from ``Input`` tensors and layer calls (see :class:`Model`)."""
