"""numvgg.data.resize against tf.image.resize, the function Keras' datasets call."""

from __future__ import annotations

import numpy as np
import pytest

from numvgg.data.resize import aspect_ratio_crop, check_interpolation, resize, resize_bilinear, resize_nearest

# (in_h, in_w) -> (out_h, out_w): shrink, enlarge, mixed, same size, odd ratios, single pixels.
SIZES = [
    ((375, 500), (256, 256)),
    ((60, 80), (224, 224)),
    ((33, 17), (16, 40)),
    ((20, 20), (20, 20)),
    ((7, 13), (5, 3)),
    ((1, 1), (4, 3)),
    ((9, 5), (1, 1)),
    ((224, 224), (223, 225)),
]


def _picture(rng, h, w, c=3):
    """Smooth gradients plus noise, uint8: what a resized photo looks like to the kernel."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(np.sin(xx / 9) + 1) * 120, (np.cos(yy / 7) + 1) * 120, (xx + yy) * 250 / (h + w)], -1)[
        ..., :c
    ]
    return (base + rng.normal(0, 10, base.shape)).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("in_size, out_size", SIZES)
@pytest.mark.parametrize("method, fn", [("bilinear", resize_bilinear), ("nearest", resize_nearest)])
def test_exact_methods_equal_tensorflow_bit_for_bit(tf, rng, in_size, out_size, method, fn):
    x = rng.integers(0, 256, in_size + (3,), dtype=np.uint8)  # noise: the hardest case
    ours = fn(x, out_size)
    theirs = tf.image.resize(x, out_size, method=method).numpy()
    # TF keeps uint8 for 'nearest' (only copies pixels); numvgg always gives float32.
    assert ours.dtype == np.float32
    assert theirs.dtype == (np.uint8 if method == "nearest" else np.float32)
    assert ours.shape == out_size + (3,)
    np.testing.assert_array_equal(ours, theirs)


def test_float_input_and_one_channel(tf, rng):
    x = rng.normal(size=(11, 19, 1)).astype(np.float32)
    np.testing.assert_array_equal(resize(x, (29, 8)), tf.image.resize(x, (29, 8)).numpy())


@pytest.mark.parametrize("method, bound", [("bicubic", 0.05), ("lanczos3", 0.01)])
def test_pillow_fallback_matches_tensorflow_when_enlarging(tf, rng, method, bound):
    # bicubic: TF reads its kernel weights from a 1024-entry table, hence the 0.04.
    x = _picture(rng, 60, 80)
    diff = np.abs(resize(x, (224, 224), method) - tf.image.resize(x, (224, 224), method=method).numpy())
    assert diff.max() < bound, diff.max()


@pytest.mark.parametrize("method, bound", [("bicubic", 40), ("lanczos3", 40), ("area", 40)])
def test_pillow_fallback_shrinking_stays_within_the_documented_bound(tf, rng, method, bound):
    # Pillow antialiases when shrinking and TF does not: the documented difference
    # (module docstring: ~20-35 grey levels on this kind of picture) must not grow.
    x = _picture(rng, 375, 500)
    ours = resize(x, (256, 256), method)
    diff = np.abs(ours - tf.image.resize(x, (256, 256), method=method).numpy())
    assert ours.dtype == np.float32 and ours.shape == (256, 256, 3)
    assert 0 < diff.max() < bound, diff.max()


def test_unknown_or_unsupported_methods_are_explained():
    assert check_interpolation("BILINEAR") == "bilinear"
    with pytest.raises(ValueError, match="no equivalent"):
        check_interpolation("gaussian")
    with pytest.raises(ValueError, match="should be one of"):
        check_interpolation("cubic")


@pytest.mark.parametrize("in_size", [(375, 500), (500, 375), (100, 100), (3, 1000), (7, 5)])
@pytest.mark.parametrize("target", [(256, 256), (224, 160), (50, 300)])
def test_aspect_ratio_crop_matches_keras_smart_resize(keras, rng, in_size, target):
    x = rng.integers(0, 256, in_size + (3,)).astype(np.float32)
    crop = aspect_ratio_crop(x, target)
    ours = resize_nearest(crop, target)
    theirs = keras.preprocessing.image.smart_resize(x, target, interpolation="nearest")
    np.testing.assert_array_equal(ours, theirs)
    # The crop keeps the target's aspect ratio to within one pixel.
    assert abs(crop.shape[0] * target[1] - crop.shape[1] * target[0]) < max(target)
