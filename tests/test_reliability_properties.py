"""Property-based tests (hypothesis): the layers agree with the naive loop ops for any
shape, kernel or pool size, stride and padding -- or refuse the input with a clear error.

``test_ops_conv.py`` already checks the conv *op* against its naive version on
random shapes; here hypothesis drives the *layers* (what a model runs: float32,
the layer's algorithm choice, including Winograd) and the max-pool op with
``same`` padding and ties, and checks that ``compute_output_shape`` (used to
build models and to explain shape errors) always matches what ``forward`` returns.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numvgg.layers import Conv2D, MaxPooling2D
from numvgg.ops.conv import conv2d_backward_naive, conv2d_forward_naive, conv_pads
from numvgg.ops.pooling import (
    maxpool2d_backward,
    maxpool2d_backward_naive,
    maxpool2d_forward,
    maxpool2d_forward_naive,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.integers(1, 7)
small = st.integers(1, 3)
paddings = st.sampled_from(["valid", "same"])


def padded_with(x, pads, value):
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


@SETTINGS
@given(
    n=st.integers(1, 2),
    h=sizes,
    w=sizes,
    c=small,
    ph=small,
    pw=small,
    sh=small,
    sw=small,
    padding=paddings,
    ties=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_maxpool_matches_the_naive_loops(n, h, w, c, ph, pw, sh, sw, padding, ties, seed):
    rng = np.random.default_rng(seed)
    # Small integers make ties common: the first maximum in row-major order must win.
    x = rng.integers(0, 3, (n, h, w, c)).astype(np.float64) if ties else rng.standard_normal((n, h, w, c))
    pads = conv_pads(h, w, ph, pw, (sh, sw), padding)
    xp = padded_with(x, pads, -np.inf)  # Keras' 'same' pads with -inf
    if xp.shape[1] < ph or xp.shape[2] < pw:
        return  # empty output: the layer refuses it (below)
    out, cache = maxpool2d_forward(x, (ph, pw), (sh, sw), padding)
    np.testing.assert_array_equal(out, maxpool2d_forward_naive(xp, (ph, pw), (sh, sw)))
    dout = rng.standard_normal(out.shape)
    top, _, left, _ = pads
    expected = maxpool2d_backward_naive(dout, xp, (ph, pw), (sh, sw))[:, top : top + h, left : left + w]
    np.testing.assert_allclose(maxpool2d_backward(dout, cache), expected, rtol=0, atol=1e-12)


@SETTINGS
@given(
    n=st.integers(1, 2),
    h=sizes,
    w=sizes,
    c=small,
    f=small,
    kh=small,
    kw=small,
    sh=st.integers(1, 2),
    sw=st.integers(1, 2),
    padding=paddings,
    algorithm=st.sampled_from(["im2col", "winograd"]),
    seed=st.integers(0, 2**16),
)
def test_conv2d_layer_matches_the_naive_loops(n, h, w, c, f, kh, kw, sh, sw, padding, algorithm, seed):
    layer = Conv2D(f, (kh, kw), strides=(sh, sw), padding=padding, algorithm=algorithm)
    try:
        expected_shape = layer.compute_output_shape((n, h, w, c))
    except ValueError as e:
        assert layer.name in str(e) and "too small" in str(e)
        with pytest.raises(ValueError, match="too small"):
            layer(np.zeros((n, h, w, c), np.float32))
        return
    rng = np.random.default_rng(seed)
    layer.build((None, h, w, c))
    layer.set_weights([rng.standard_normal((kh, kw, c, f)), rng.standard_normal(f)])
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    out = layer.forward(x, training=True)
    assert out.shape == expected_shape and out.dtype == np.float32
    kernel, bias = (p.astype(np.float64) for p in layer.get_weights())
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(
        out, conv2d_forward_naive(x64, kernel, bias, (sh, sw), padding), rtol=1e-4, atol=1e-4
    )
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = layer.backward(dout)
    naive = conv2d_backward_naive(dout.astype(np.float64), x64, kernel, (sh, sw), padding)
    for got, want in zip((dx, *layer.grads), naive):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(h=sizes, w=sizes, ph=small, pw=small, sh=small, sw=small, padding=paddings)
def test_maxpool_layer_output_shape_is_what_forward_returns_or_a_clear_error(h, w, ph, pw, sh, sw, padding):
    layer = MaxPooling2D((ph, pw), strides=(sh, sw), padding=padding)
    try:
        expected = layer.compute_output_shape((2, h, w, 3))
    except ValueError as e:
        assert layer.name in str(e) and "smaller than" in str(e)
        with pytest.raises(ValueError, match="smaller than"):
            layer(np.zeros((2, h, w, 3), np.float32))
        return
    assert layer(np.zeros((2, h, w, 3), np.float32)).shape == expected
