"""One snake-case rule (numvgg.naming, Keras' rule) gives Keras' default names."""
import re

import pytest

from numvgg import optimizers
from numvgg.naming import to_snake_case

CLASSES = ["Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Dense",
           "InputLayer", "RMSprop", "SGD", "Adam", "Adadelta", "HTTPServer2D"]


def test_to_snake_case_examples():
    assert [to_snake_case(c) for c in ("Conv2D", "MaxPooling2D", "RMSprop", "SGD")] == \
        ["conv2d", "max_pooling2d", "rm_sprop", "sgd"]


def test_to_snake_case_is_keras_rule(keras):
    from keras.src.utils import naming
    assert [to_snake_case(c) for c in CLASSES] == [naming.to_snake_case(c) for c in CLASSES]


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad", "Adadelta"])
def test_optimizer_default_names_are_keras(name, keras):
    # Keras makes names unique in a session ("sgd_2" after two others): compare the stem.
    ours, theirs = getattr(optimizers, name)().name, getattr(keras.optimizers, name)().name
    assert re.fullmatch(rf"{re.escape(ours)}(_\d+)?", theirs), (ours, theirs)


def test_layer_default_names_are_keras():
    # layers/base.py still has its own copy of the rule (it is being rewritten);
    # until it imports numvgg.naming, the two must agree on every layer class.
    from numvgg import layers
    from numvgg.layers.base import _snake_case
    for name in layers.__all__:
        cls = getattr(layers, name)
        assert _snake_case(cls.__name__) == to_snake_case(cls.__name__), cls
