"""numvgg: VGG16 by hand in NumPy, forward and backward, with Keras' weights and numbers.

Keras' names carry over -- ``numvgg.Input``, ``numvgg.Model``, ``numvgg.Sequential``,
and the modules ``numvgg.applications``, ``numvgg.layers``,
``numvgg.models``, ``numvgg.optimizers``, ``numvgg.losses``, ``numvgg.metrics``,
``numvgg.callbacks``, ``numvgg.utils``.
"""
__version__ = "0.1.0"

from . import applications, callbacks, layers, losses, metrics, models, optimizers, utils  # noqa: E402
from .applications import VGG16  # noqa: E402
from .layers import Input  # noqa: E402
from .models import Model, Sequential  # noqa: E402
from .random import set_random_seed  # noqa: E402
from . import saving  # noqa: E402, F401  (numvgg.saving.load_model, as keras.saving.load_model)

__all__ = ["VGG16", "Input", "Model", "Sequential", "applications", "callbacks", "layers", "losses", "metrics",
           "models", "optimizers", "utils", "set_random_seed"]
