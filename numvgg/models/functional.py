"""``Functional``: what ``Model(inputs, outputs)`` is called in Keras.

Keras' ``keras.Model(inputs, outputs)`` returns an instance of its class
``Functional``, and ``summary()`` shows nested models as ``(Functional)``;
``VGG16`` returns one. The class lives next to :class:`~numvgg.models.model.Model`
(which creates it); this module gives it Keras' import path.
"""

from .model import Functional

__all__ = ["Functional"]
