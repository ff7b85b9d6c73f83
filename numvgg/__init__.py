"""numvgg: VGG16 by hand in NumPy, forward and backward, with Keras' weights and numbers.

Keras' names carry over -- ``numvgg.Input``, ``numvgg.Model``, ``numvgg.Sequential``,
and the modules ``numvgg.applications``, ``numvgg.layers``,
``numvgg.models``, ``numvgg.optimizers``, ``numvgg.losses``, ``numvgg.metrics``,
``numvgg.callbacks``, ``numvgg.utils``.
"""

# First: modules that still read the version from the package top
# (``from .. import __version__``) find it while the imports below run.
from .version import __version__  # noqa: I001  (first: see the comment above)

from . import applications, callbacks, layers, losses, metrics, models, optimizers, preprocessing, utils
from .applications import VGG16
from .layers import Input
from .models import Model, Sequential
from .random import set_random_seed
from . import saving  # noqa: F401  (numvgg.saving.load_model, as keras.saving.load_model)

__all__ = [
    "VGG16",
    "Input",
    "Model",
    "Sequential",
    "applications",
    "callbacks",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "preprocessing",
    "utils",
    "set_random_seed",
    "__version__",
]
