"""numvgg.debug.parity: the per-layer numvgg-vs-Keras report.

One report on random weights (which Keras writes and numvgg reads back) must
pass with float32-level errors; one on a file numvgg wrote, with a
deliberately broken kernel gradient, must fail on exactly those rows.
"""

import sys

import numpy as np
import pytest

from numvgg import initializers
from numvgg.applications.vgg16 import VGG16
from numvgg.debug import parity
from numvgg.debug.parity import (
    BACKWARD_TOLERANCE,
    FORWARD_TOLERANCE,
    KerasUnavailableError,
    compare,
    parity_report,
)
from numvgg.ops import conv as conv_ops

CONVS = [f"block{b}_conv{i}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for i in range(1, n + 1)]
POOLS = [f"block{b}_pool" for b in range(1, 6)]


@pytest.fixture(scope="module")
def report(keras):
    return parity_report(input_size=32, batch=2, seed=0)


def test_random_weights_report_passes_with_float32_errors(report):
    assert report.ok, str(report)
    assert report.failures == []
    assert 0.0 < report.max_error("forward") < 1e-5  # float32 rounding, not exact equality
    assert 0.0 < report.max_error("backward") < 1e-5
    layers = list(dict.fromkeys(row.layer for row in report.rows))
    assert layers[:3] == ["block1_conv1", "block1_conv2", "block1_pool"]
    assert sorted(layers[:-1]) == sorted(CONVS + POOLS) and layers[-1] == "(model input)"
    for conv in CONVS:
        tensors = [row.tensor for row in report.rows if row.layer == conv]
        assert tensors == ["output", "dL/d output", "dL/d kernel", "dL/d bias"]
    assert [r.tensor for r in report.rows if r.layer == "block3_pool"] == ["output", "dL/d output"]
    row = next(r for r in report.rows if r.layer == "block2_conv1" and r.tensor == "dL/d kernel")
    assert row.shape == row.keras_shape == (3, 3, 64, 128) and row.kind == "backward"
    assert row.tolerance == BACKWARD_TOLERANCE
    assert row.max_abs_keras > 0 and row.error == row.max_abs_diff / row.max_abs_keras
    assert next(r for r in report.rows if r.tensor == "output").tolerance == FORWARD_TOLERANCE
    assert report.rows[-1].shape == (2, 32, 32, 3)


def test_report_table_is_readable(report):
    text = str(report)
    lines = text.splitlines()
    assert "Keras 3." in lines[0] and "input (2, 32, 32, 3)" in lines[0] and "random (seed 0)" in lines[0]
    assert "max|numvgg - keras| / max|keras|" in lines[1]
    assert lines[3].split() == ["layer", "tensor", "shape", "max|keras|", "max|diff|", "error", "result"]
    assert sum(line.startswith("block4_conv2 ") for line in lines) == 1
    assert "(3, 3, 512, 512)" in text
    # 18 outputs; 18 upstream gradients + 13 x (kernel, bias) + the input gradient
    assert lines[-1].startswith("OK. Forward: 18 tensors") and "Backward: 45 tensors" in lines[-1]


@pytest.mark.slow
def test_a_wrong_kernel_gradient_fails_on_exactly_those_rows(keras, tmp_path, monkeypatch):
    """Weights from a file numvgg wrote (legacy .h5, loaded by both sides), pooling
    'avg', and a conv backward whose kernel gradient is 1% too large."""
    initializers.set_seed(3)
    source = VGG16(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    path = str(tmp_path / "numvgg_written.h5")
    source.save_weights(path)

    true_backward = conv_ops.conv2d_backward

    def kernel_grad_off_by_one_percent(*args, **kwargs):
        dx, dkernel, dbias = true_backward(*args, **kwargs)
        return dx, None if dkernel is None else dkernel * 1.01, dbias

    monkeypatch.setattr(conv_ops, "conv2d_backward", kernel_grad_off_by_one_percent)
    broken = parity_report(weights_path=path, input_size=32, pooling="avg", batch=1, seed=1)
    assert not broken.ok
    assert {(r.layer, r.tensor) for r in broken.failures} == {(c, "dL/d kernel") for c in CONVS}
    assert all(0.009 < r.error < 0.011 for r in broken.failures)
    # The forward pass read the same weights as Keras: every output matches.
    assert broken.max_error("forward") < 1e-5
    assert any(r.layer.startswith("global_average_pooling2d") for r in broken.rows)
    assert path in str(broken).splitlines()[0]
    assert "FAIL (> 1e-03)" in str(broken)
    assert str(broken).splitlines()[-1].startswith("FAILED: 13 tensor(s) above tolerance")


def test_compare_measures_relative_to_keras():
    row = compare("l", "output", "forward", np.array([1.0, 2.0]), np.array([1.0, 4.0]), 1e-4)
    assert (row.max_abs_keras, row.max_abs_diff, row.error, row.ok) == (4.0, 2.0, 0.5, False)
    zeros = compare("l", "output", "forward", np.zeros(3), np.zeros(3), 1e-4)
    assert zeros.error == 0.0 and zeros.ok
    assert compare("l", "output", "forward", np.ones(3), np.zeros(3), 1e-4).error == np.inf
    mismatch = compare("l", "output", "forward", np.ones((2, 3)), np.ones((3, 2)), 1e-4)
    assert not mismatch.ok and mismatch.keras_shape == (3, 2)


def test_missing_weights_file_is_named(keras, tmp_path):
    missing = str(tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        parity_report(weights_path=missing)


def test_missing_keras_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # makes `import keras` fail
    with pytest.raises(KerasUnavailableError, match="pip install") as info:
        parity.import_keras()
    assert isinstance(info.value, ImportError) and isinstance(info.value.__cause__, ImportError)
