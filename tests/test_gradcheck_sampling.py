"""check_layer on a real VGG16 layer samples entries (seeded, largest gradients
always in, progress bar) and still catches a gradient that is 1% wrong."""

from __future__ import annotations

import numpy as np
import pytest

from numvgg.applications.vgg16 import VGG16
from numvgg.debug import gradcheck
from numvgg.debug.gradcheck import check_layer, sample_indices
from numvgg.layers import Conv2D


@pytest.fixture(scope="module")
def block5_conv3():
    from numvgg import initializers

    initializers.set_seed(5)
    model = VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    return model.get_layer("block5_conv3")  # 3x3x512x512 kernel: 2,359,296 weights


class ScaledKernelGrad(Conv2D):
    """A Conv2D whose kernel gradient is ``scale`` times the right one,
    optionally only on the entries where ``only`` is True."""

    scale = 1.01
    only = None

    def backward(self, dout, need_input_grad=True, need_weight_grads=True, from_logits=False):
        dx = super().backward(dout, need_input_grad, need_weight_grads, from_logits)
        wrong = self.grads[0] * self.scale
        self.grads[0] = wrong if self.only is None else np.where(self.only, wrong, self.grads[0])
        return dx


@pytest.mark.slow
def test_real_vgg16_layer_is_sampled_with_a_progress_bar(block5_conv3, capsys, monkeypatch):
    assert block5_conv3.params["kernel"].size == 2_359_296
    forwards = []
    real_forward = Conv2D.forward
    monkeypatch.setattr(
        Conv2D,
        "forward",
        lambda self, x, training=False: forwards.append(1) or real_forward(self, x, training),
    )
    errors = check_layer(block5_conv3, (1, 2, 2, 512), samples=16)
    assert set(errors) == {"x", "kernel", "bias"}
    assert max(errors.values()) < 1e-6, errors
    # One forward for the analytic gradient, two per checked entry: 97, not ~4.7 million.
    assert len(forwards) == 1 + 2 * 3 * 16
    out = capsys.readouterr().out
    assert "48/48" in out and "entry" in out  # 3 tensors x 16 entries


def test_sample_is_seeded_and_holds_the_largest_gradients():
    analytic = np.random.default_rng(0).standard_normal((40, 50))
    a = sample_indices(analytic, 100, np.random.default_rng(7))
    b = sample_indices(analytic, 100, np.random.default_rng(7))
    c = sample_indices(analytic, 100, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and len(a) == len(set(a)) == 100
    n_largest = int(100 * gradcheck.LARGEST_SHARE)
    largest = np.argsort(np.abs(analytic).ravel())[-n_largest:]
    assert set(largest) <= set(a)
    np.testing.assert_array_equal(sample_indices(analytic[:5, :5], 100, None), np.arange(25))


@pytest.mark.slow
def test_a_one_percent_wrong_kernel_gradient_is_caught_when_sampled(block5_conv3):
    wrong = ScaledKernelGrad(**block5_conv3.get_config())
    wrong.build(block5_conv3.input_shape)
    wrong.set_weights(block5_conv3.get_weights())
    errors = check_layer(wrong, (1, 2, 2, 512), samples=16, verbose=0)
    assert errors["x"] < 1e-6 and errors["bias"] < 1e-6
    assert errors["kernel"] > 1e-3, errors  # ~0.005 = 0.01 / (1 + 1.01)


@pytest.mark.slow
def test_a_bug_on_a_few_largest_entries_is_caught(block5_conv3):
    # Wrong only where |dkernel| is largest (16 of 2.4M entries): a random
    # sample of 16 would miss it almost surely; the largest-first part does not.
    rng = np.random.default_rng(0)
    probe = ScaledKernelGrad(**{**block5_conv3.get_config(), "dtype": "float64"})
    probe.scale = 1.0
    probe.build(block5_conv3.input_shape)
    probe.set_weights(block5_conv3.get_weights())
    x = rng.standard_normal((1, 2, 2, 512))  # the same draws check_layer(seed=0) makes
    out = probe.forward(x)
    probe.backward(rng.standard_normal(out.shape))
    top = np.argsort(np.abs(probe.grads[0]).ravel())[-16:]
    only = np.zeros(probe.grads[0].size, dtype=bool)
    only[top] = True

    wrong = ScaledKernelGrad(**block5_conv3.get_config())
    wrong.only = only.reshape(probe.grads[0].shape)
    wrong.build(block5_conv3.input_shape)
    wrong.set_weights(block5_conv3.get_weights())
    errors = check_layer(wrong, (1, 2, 2, 512), samples=16, verbose=0)
    assert errors["kernel"] > 1e-3, errors


def test_small_tensors_are_checked_whole(capsys):
    errors = check_layer(Conv2D(3, 2), (1, 4, 4, 2))  # x: 32 entries, kernel: 24
    assert max(errors.values()) < 1e-7
    assert capsys.readouterr().out == ""  # nothing sampled, no bar
