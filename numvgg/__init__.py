"""numvgg: VGG16 by hand in NumPy, forward and backward, with Keras' weights and numbers.

Keras' module names carry over: ``numvgg.applications``, ``numvgg.layers``,
``numvgg.models``, ``numvgg.optimizers``, ``numvgg.losses``, ``numvgg.metrics``,
``numvgg.callbacks``, ``numvgg.utils``.
"""
__version__ = "0.1.0"

from . import applications, callbacks, layers, losses, metrics, models, optimizers, utils  # noqa: E402
from .applications import VGG16  # noqa: E402
from .models import Sequential  # noqa: E402
from .random import set_random_seed  # noqa: E402

__all__ = ["VGG16", "Sequential", "applications", "callbacks", "layers", "losses", "metrics",
           "models", "optimizers", "utils", "set_random_seed"]
