"""Receptive fields from layer configs: VGG16's known values, a brute-force
check through backward, and the `numvgg tour` column."""

from __future__ import annotations

import numpy as np
import pytest

from numvgg.applications.vgg16 import VGG16
from numvgg.debug.receptive_field import receptive_fields
from numvgg.layers import AveragePooling2D, Conv2D, Dense, Dropout, Flatten, Layer
from numvgg.models import Sequential


def test_vgg16_known_values():
    model = VGG16(include_top=True, weights=None)
    fields = {f.name: f for f in receptive_fields(model.layers)}
    expected = {
        "block1_conv1": (3, 1),
        "block1_pool": (6, 2),
        "block2_conv2": (14, 2),
        "block3_conv3": (40, 4),
        "block4_pool": (100, 16),
        "block5_conv3": (196, 16),
        "block5_pool": (212, 32),
    }
    for name, (size, jump) in expected.items():
        assert fields[name].size == (size, size) and fields[name].jump == (jump, jump), fields[name]
    assert fields["block1_conv1"].start == (0.5, 0.5)  # 'same' 3x3: centred on pixel 0
    assert fields["block5_pool"].start == (16.0, 16.0)
    assert fields["flatten"].size is None and fields["predictions"].size is None


def test_unknown_input_size_still_gives_sizes():
    fields = receptive_fields(VGG16(include_top=False, weights=None).layers)  # input (None, None, 3)
    assert fields[-2].size == (196, 196) and fields[-1].size == (212, 212)


def _touched_box(model, x_shape, out_pixel):
    """Rows/columns of the input whose gradient is non-zero for one output pixel."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    out = model.forward(x)
    dout = np.zeros_like(out)
    dout[(0, *out_pixel)] = 1.0
    dx = model.backward(dout)
    rows, cols = np.nonzero(np.abs(dx[0]).sum(axis=-1))
    return rows.min(), rows.max(), cols.min(), cols.max()


@pytest.mark.parametrize(
    "stack",
    [
        [
            Conv2D(2, 3),
            AveragePooling2D(2),
            Conv2D(2, (3, 2), strides=(1, 2)),
            AveragePooling2D(3, strides=2),
        ],
        [Conv2D(2, 5, strides=2), Conv2D(3, 3), AveragePooling2D((2, 3))],
    ],
    ids=["conv-pool-conv-pool", "strided"],
)
def test_sizes_and_jumps_match_backward(stack):
    # Linear layers and average pools (every pixel of a window gets gradient),
    # 'valid' padding: the input pixels one output pixel depends on are exactly
    # its receptive field, found here through backward.
    model = Sequential(stack)
    shape = (1, 40, 41, 2)
    model.build((None, *shape[1:]))
    field = receptive_fields(model.layers)[-1]
    r0, r1, c0, c1 = _touched_box(model, shape, (0, 0))
    assert (r1 - r0 + 1, c1 - c0 + 1) == field.size
    assert ((r0 + r1 + 1) / 2, (c0 + c1 + 1) / 2) == field.start
    r0b, _, c0b, _ = _touched_box(model, shape, (1, 1))
    assert (r0b - r0, c0b - c0) == field.jump


def test_per_pixel_and_global_layers():
    model = Sequential([Conv2D(2, 3), Dropout(0.5), Flatten(), Dense(3)])
    model.build((None, 8, 8, 1))
    sizes = [f.size for f in receptive_fields(model.layers)]
    assert sizes == [(3, 3), (3, 3), None, None]


def test_unknown_layer_is_named():
    class Warp(Layer):
        def forward(self, x, training=False):
            return self._as_input(x)

        def backward(self, dout, need_input_grad=True, need_weight_grads=True):
            return dout

    with pytest.raises(ValueError, match=r"layer 'warp' \(Warp\)"):
        receptive_fields([Conv2D(1, 3), Warp(name="warp")])


def test_tour_prints_receptive_fields(capsys):
    from numvgg.cli import main

    assert main(["tour", "--input-size", "32"]) == 0
    lines = {
        line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  block")
    }
    assert lines["block5_conv3"].rstrip().endswith("RF 196 jump 16")
    assert lines["block5_pool"].rstrip().endswith("RF 212 jump 32")
