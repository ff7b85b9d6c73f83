"""One snake-case rule (numvgg.naming, Keras' rule) gives Keras' default names."""

import re

import pytest

from numvgg import optimizers
from numvgg.naming import to_snake_case

CLASSES = [
    "Conv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "Dense",
    "InputLayer",
    "RMSprop",
    "SGD",
    "Adam",
    "Adadelta",
    "HTTPServer2D",
]


def test_to_snake_case_examples():
    assert [to_snake_case(c) for c in ("Conv2D", "MaxPooling2D", "RMSprop", "SGD")] == [
        "conv2d",
        "max_pooling2d",
        "rm_sprop",
        "sgd",
    ]


def test_to_snake_case_is_keras_rule(keras):
    from keras.src.utils import naming

    assert [to_snake_case(c) for c in CLASSES] == [naming.to_snake_case(c) for c in CLASSES]


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad", "Adadelta"])
def test_optimizer_default_names_are_keras(name, keras):
    # Keras makes names unique in a session ("sgd_2" after two others): compare the stem.
    ours, theirs = getattr(optimizers, name)().name, getattr(keras.optimizers, name)().name
    assert re.fullmatch(rf"{re.escape(ours)}(_\d+)?", theirs), (ours, theirs)


def test_layer_default_names_are_keras():
    """A layer made without a name gets Keras' snake-case stem (then _1, _2, ...)."""
    from numvgg import layers
    from numvgg.layers.base import Layer

    for name in layers.__all__:
        cls = getattr(layers, name)
        if not (isinstance(cls, type) and issubclass(cls, Layer)) or cls is Layer:
            continue
        try:
            layer = cls.__new__(cls)
            Layer.__init__(layer)
        except TypeError:
            continue
        assert layer.name.split("_")[0] == to_snake_case(cls.__name__).split("_")[0], cls
        assert layer.name.startswith(to_snake_case(cls.__name__)), (layer.name, cls)
