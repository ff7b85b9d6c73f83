"""Winograd F(2x2, 3x3) forward: the optional conv algorithm, tested against im2col and Keras."""
import numpy as np
import pytest

from numvgg import config
from numvgg.layers import Conv2D
from numvgg.ops.conv import conv2d_backward, conv2d_forward
from numvgg.ops.winograd import conv2d_forward_winograd, transform_kernel


@pytest.mark.parametrize("shape, filters, padding", [
    ((2, 7, 9, 3), 4, "same"),      # odd sizes: a half-empty last tile
    ((1, 8, 8, 5), 2, "valid"),
    ((3, 5, 6, 4), 3, "valid"),
    ((2, 1, 1, 2), 3, "same"),      # one pixel
    ((1, 3, 3, 1), 1, "valid"),     # one output pixel
])
def test_winograd_equals_im2col_in_float64(shape, filters, padding):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape)
    kernel = rng.standard_normal((3, 3, shape[-1], filters))
    bias = rng.standard_normal(filters)
    ref, ref_cache = conv2d_forward(x, kernel, bias, (1, 1), padding)
    out, cache = conv2d_forward_winograd(x, kernel, bias, (1, 1), padding)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)
    # The cache is im2col's, so the shared backward gives the same gradients.
    dout = rng.standard_normal(out.shape)
    for a, b in zip(conv2d_backward(dout, cache), conv2d_backward(dout, ref_cache)):
        np.testing.assert_array_equal(a, b)


def test_kernel_transform_is_G_g_Gt():
    rng = np.random.default_rng(0)
    k = rng.standard_normal((3, 3, 2, 3))
    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    u = transform_kernel(k).reshape(4, 4, 2, 3)
    for c in range(2):
        for f in range(3):
            np.testing.assert_allclose(u[:, :, c, f], g @ k[:, :, c, f] @ g.T, atol=1e-12)


def test_winograd_rejects_what_it_cannot_do():
    x = np.zeros((1, 8, 8, 2), np.float32)
    with pytest.raises(ValueError, match="3x3 kernel and stride 1"):
        conv2d_forward_winograd(x, np.zeros((5, 5, 2, 1), np.float32), None)
    with pytest.raises(ValueError, match="3x3 kernel and stride 1"):
        conv2d_forward_winograd(x, np.zeros((3, 3, 2, 1), np.float32), None, strides=(2, 2))
    with pytest.raises(ValueError, match="Valid choices"):
        config.set_conv_algorithm("fft")
    with pytest.raises(ValueError, match="unknown algorithm"):
        Conv2D(2, 3, algorithm="fft")


def test_layer_choice_and_global_switch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 9, 7, 3)).astype(np.float32)
    a = Conv2D(4, 3, padding="same", activation="relu", name="w_a")
    b = Conv2D(4, 3, padding="same", activation="relu", algorithm="winograd", name="w_b")
    a.build(x.shape)
    b.build(x.shape)
    b.set_weights(a.get_weights())
    ya, yb = a(x), b(x)
    assert config.conv_algorithm() == "im2col"
    np.testing.assert_allclose(yb, ya, rtol=1e-5, atol=1e-5)
    with config.using_conv_algorithm("winograd"):
        assert config.conv_algorithm() == "winograd"
        np.testing.assert_allclose(a(x), ya, rtol=1e-5, atol=1e-5)
    assert config.conv_algorithm() == "im2col"
    # A 1x1 kernel cannot use Winograd: it quietly stays on im2col.
    c = Conv2D(2, 1, algorithm="winograd", name="w_c")
    assert c(x).shape == (2, 9, 7, 2)


def test_vgg16_with_winograd_matches_keras(vgg16_pair):
    ours, theirs = vgg16_pair.numvgg, vgg16_pair.keras
    rng = np.random.default_rng(2)
    x = rng.uniform(-100, 100, size=(2, *ours.input_shape[1:])).astype(np.float32)
    expected = theirs(x).numpy()
    with config.using_conv_algorithm("winograd"):
        got = ours(x)
    err = np.abs(got - expected).max() / np.abs(expected).max()
    assert err < 1e-5, err
