"""numvgg.debug.compare_with_keras: one layer against Keras on the user's own input."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from numvgg import initializers
from numvgg.applications.vgg16 import VGG16
from numvgg.debug import compare_with_keras
from numvgg.debug.parity import KerasUnavailableError
from numvgg.layers import (
    Activation,
    AveragePooling2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Layer,
    MaxPooling2D,
)
from numvgg.models import Sequential


@pytest.fixture(scope="module")
def transfer_model():
    """The transfer-learning recipe's model (VGG16 base nested), small input."""
    initializers.set_seed(9)
    base = VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    base.trainable = False
    # Explicit names: default ones depend on how many layers other tests made before.
    model = Sequential(
        [
            base,
            GlobalAveragePooling2D(name="gap"),
            Dense(8, activation="relu", name="fc"),
            Dropout(0.5, name="drop"),
            Dense(1, activation="sigmoid", name="out"),
        ]
    )
    model.build((None, 32, 32, 3))
    return model


@pytest.fixture
def image():
    return np.random.default_rng(0).uniform(-100, 150, (1, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize(
    "name", ["block1_conv1", "vgg16/block3_conv2", "block3_pool", "block5_conv3", "gap", "fc", "drop", "out"]
)
def test_layers_of_a_real_model_match(transfer_model, image, name, keras):
    report = compare_with_keras(transfer_model, name, image)
    assert report.passed, str(report)
    assert report.max_rel_diff < 1e-5, str(report)
    has_weights = "conv" in name or name in ("fc", "out")
    expected = {"output", "dL/d input"} | ({"dL/d kernel", "dL/d bias"} if has_weights else set())
    assert {row.tensor for row in report.rows} == expected
    assert name.split("/")[-1] in str(report) and "PASS" in str(report)


def test_the_input_is_what_the_layer_really_got(transfer_model, image, keras):
    report = compare_with_keras(transfer_model, "block2_conv1", image)
    assert report.input_shape == (1, 16, 16, 64)
    assert report["output"].shape == (1, 16, 16, 128)
    for layer in transfer_model.get_layer("vgg16").layers:  # caches cleared
        assert layer._cache is None


@pytest.mark.parametrize(
    "layer",
    [
        MaxPooling2D(3, strides=2, padding="same"),
        AveragePooling2D(3, strides=2, padding="same"),
        Flatten(),
        Activation("tanh"),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_layers_without_weights(layer, image, keras):
    model = Sequential([layer])
    model.build((None, 32, 32, 3))
    report = compare_with_keras(model, layer.name, image)
    assert report.passed and report.max_rel_diff < 1e-6, str(report)


def test_a_wrong_backward_is_reported(transfer_model, image, keras, monkeypatch):
    layer = transfer_model.get_layer("fc")
    real_backward = type(layer).backward

    def off_by_one_percent(self, dout, *args, **kwargs):
        dx = real_backward(self, dout, *args, **kwargs)
        self.grads[0] = self.grads[0] * 1.01
        return dx

    monkeypatch.setattr(type(layer), "backward", off_by_one_percent)
    report = compare_with_keras(transfer_model, "fc", image)
    assert not report.passed
    assert report["dL/d kernel"].error > 1e-3 and report["dL/d bias"].ok
    assert "FAIL" in str(report)


def test_unknown_layer_name_and_unsupported_class(transfer_model, image, keras):
    with pytest.raises(KeyError, match="no_such_layer"):
        compare_with_keras(transfer_model, "no_such_layer", image)

    class Warp(Layer):
        def forward(self, x, training=False):
            return self._as_input(x)

        def backward(self, dout, need_input_grad=True, need_weight_grads=True):
            return dout

    model = Sequential([Warp(name="warp")])
    model.build((None, 32, 32, 3))
    with pytest.raises(ValueError, match=r"layer 'warp' \(Warp\)"):
        compare_with_keras(model, "warp", image)


def test_clear_error_without_keras(transfer_model, image, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(KerasUnavailableError, match=r"compare_with_keras needs Keras(.|\n)*pip install"):
        compare_with_keras(transfer_model, "fc", image)
