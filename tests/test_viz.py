"""numvgg.viz (numvgg.figures.network): filters, feature maps and saliency.

Each plot is written as a PNG and read back with Pillow: it must be a real
image whose pixels change when the weights or the input change. The arrays
behind the plots are checked exactly (filter_grid) or against Keras (the
saliency map is the gradient of the pre-softmax class score).
"""

import numpy as np
import pytest
from PIL import Image

from numvgg import initializers
from numvgg.applications.vgg16 import VGG16, preprocess_input
from numvgg.debug.trace import TraceKeyError
from numvgg.errors import ShapeError
from numvgg.figures.network import _displayable
from numvgg.models import leaf_layers
from numvgg.viz import filter_grid, plot_feature_maps, plot_filters, plot_saliency, saliency_map


def read_png(path):
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def assert_pixels_differ(a, b):
    assert a.shape != b.shape or np.count_nonzero(np.abs(a - b).sum(axis=-1)) > 50


@pytest.fixture(scope="module")
def conv_base():
    initializers.set_seed(21)
    return VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))


def image(seed, size=32):
    return preprocess_input(np.random.default_rng(seed).uniform(0, 255, (size, size, 3)))


# -- filters ------------------------------------------------------------------------------------
def test_filter_grid_places_and_scales_each_filter():
    kernel = np.zeros((3, 3, 3, 4), np.float32)
    kernel[:, :, 0, 0] = 1.0  # filter 0 looks at the B input channel (VGG16 is fed BGR)
    kernel[1, 1, 2, 1] = -1.0  # filter 1: a negative R weight in the centre
    grid = filter_grid(kernel)  # 4 filters -> 2 columns, 1-pixel white gaps
    assert grid.shape == (2 * 4 + 1, 2 * 4 + 1, 3)
    cell0, cell1 = grid[1:4, 1:4], grid[1:4, 5:8]
    # One scale for all: -1 -> 0, 0 -> 0.5, 1 -> 1. Shown as RGB: blue is the last channel.
    np.testing.assert_allclose(cell0[..., 2], 1.0)
    np.testing.assert_allclose(cell0[..., :2], 0.5)
    assert cell1[1, 1, 0] == 0.0 and np.allclose(cell1[1, 1, 1:], 0.5)
    np.testing.assert_allclose(np.delete(cell1.reshape(9, 3), 4, axis=0), 0.5)
    np.testing.assert_allclose(grid[0], 1.0)  # the gap row
    np.testing.assert_allclose(grid[5:8, 1:4], 0.5)  # filter 2: all zeros

    as_rgb = filter_grid(kernel, input_order="RGB")
    np.testing.assert_allclose(as_rgb[1:4, 1:4, 0], 1.0)  # channel 0 now read as red
    per_filter = filter_grid(kernel, normalize="filter")
    np.testing.assert_allclose(per_filter[1:4, 1:4, 2], 1.0)
    np.testing.assert_allclose(per_filter[1:4, 1:4, :2], 0.0)  # its own min is 0
    with pytest.raises(ShapeError, match=r"\(3, 3, 4\)"):
        filter_grid(np.zeros((3, 3, 4)))


def test_filter_grid_shows_one_input_channel_of_a_deep_kernel():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 5, 6))
    grid = filter_grid(kernel, channel=2)
    assert grid.shape == (2 * 4 + 1, 3 * 4 + 1, 3)  # 6 filters -> 3 columns
    cell = grid[1:4, 1:4, 0]
    k = kernel[:, :, 2, :]
    np.testing.assert_allclose(cell, (k[..., 0] - k.min()) / (k.max() - k.min()))
    with pytest.raises(ValueError, match="channel=7"):
        filter_grid(kernel, channel=7)


def test_plot_filters_writes_a_png_that_follows_the_weights(conv_base, tmp_path):
    first = read_png(plot_filters(conv_base, str(tmp_path / "a.png")))
    # A layer does not know its model: give it the model's weights source for the footer.
    again = read_png(
        plot_filters(
            conv_base.get_layer("block1_conv1"),
            str(tmp_path / "b.png"),
            weights_source=conv_base.weights_source,
        )
    )
    np.testing.assert_array_equal(first, again)  # a model or its layer: same picture
    assert first.shape[0] > 100 and first.shape[1] > 100
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 64  # 64 coloured filters, not a blank

    layer = conv_base.get_layer("block1_conv1")
    saved = layer.get_weights()
    try:
        layer.set_weights([np.random.default_rng(5).normal(size=saved[0].shape), saved[1]])
        changed = read_png(plot_filters(conv_base, str(tmp_path / "c.png")))
    finally:
        layer.set_weights(saved)
    assert_pixels_differ(first, changed)
    deep = read_png(plot_filters(conv_base, str(tmp_path / "d.png"), layer="block2_conv1"))
    assert deep.shape == first.shape == (720, 1280, 3)  # every figure is a 1280x720 slide
    assert_pixels_differ(first, deep)  # 128 grey filters, not 64 coloured
    with pytest.raises(ShapeError, match="block1_pool"):
        plot_filters(conv_base, str(tmp_path / "e.png"), layer="block1_pool")


# -- feature maps --------------------------------------------------------------------------------
def test_plot_feature_maps_follows_the_input(conv_base, tmp_path):
    a = read_png(plot_feature_maps(conv_base, image(1), "block1_conv2", str(tmp_path / "a.png")))
    a_again = read_png(plot_feature_maps(conv_base, image(1)[None], "block1_conv2", str(tmp_path / "b.png")))
    np.testing.assert_array_equal(a, a_again)
    b = read_png(plot_feature_maps(conv_base, image(2), "block1_conv2", str(tmp_path / "c.png")))
    assert_pixels_differ(a, b)
    few = read_png(plot_feature_maps(conv_base, image(1), "block3_pool", str(tmp_path / "d.png"), max_maps=4))
    assert few.shape == a.shape == (720, 1280, 3)
    assert_pixels_differ(a, few)
    svg = (tmp_path / "a.svg").read_text()  # the panel's title: name and shape
    assert "block1_conv2" in svg and "32x32x64" in svg and "input" in svg
    assert all(leaf._cache is None for leaf in leaf_layers(conv_base))


def test_plot_feature_maps_rejects_bad_requests(conv_base, tmp_path):
    with pytest.raises(TraceKeyError, match="block9_conv1"):
        plot_feature_maps(conv_base, image(1), "block9_conv1", str(tmp_path / "x.png"))
    with pytest.raises(ShapeError, match=r"\(2, 32, 32, 3\)"):
        plot_feature_maps(conv_base, np.stack([image(1), image(2)]), "block1_conv1", str(tmp_path / "x.png"))


# -- saliency -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_top_pair(keras, vgg16_pair_factory):
    """numvgg VGG16 with a 10-class softmax top, and Keras' same model without
    the softmax (its logits), both with the same weights."""
    pair = vgg16_pair_factory(include_top=True, input_shape=(32, 32, 3), classes=10)
    logits_model = keras.applications.VGG16(
        include_top=True, weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    logits_model.set_weights(pair.numvgg.get_weights())
    return pair.numvgg, logits_model


def test_saliency_is_the_gradient_of_the_pre_softmax_score(tf, small_top_pair):
    ours, keras_logits = small_top_pair
    x = image(3)
    x_t = tf.constant(x[None])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x_t)
        logits = keras_logits(x_t)
        scores = [logits[0, c] for c in range(10)]
    top = int(np.argmax(np.asarray(logits)[0]))
    other = (top + 3) % 10
    for c, class_index in ((top, None), (other, other)):
        expected = np.max(np.abs(np.asarray(tape.gradient(scores[c], x_t))[0]), axis=-1)  # (32, 32)
        got = saliency_map(ours, x, class_index=class_index)
        assert got.shape == (32, 32) and got.dtype == np.float32
        assert np.max(np.abs(got - expected)) <= 1e-4 * np.max(expected), f"class {c}"


def test_saliency_leaves_the_model_as_it_was(small_top_pair):
    ours = small_top_pair[0]
    sentinel = [np.full((1,), 7.0)]
    last = ours.get_layer("predictions")
    for leaf in leaf_layers(ours):
        leaf.grads = sentinel
    logits_before = last.last_logits
    saliency_map(ours, image(4))
    assert all(leaf.grads is sentinel for leaf in leaf_layers(ours))
    assert all(leaf._cache is None for leaf in leaf_layers(ours))
    assert last.last_logits is logits_before  # as before the call
    with pytest.raises(ValueError, match="class_index 10 is out of range"):
        saliency_map(ours, image(4), class_index=10)


def test_saliency_of_a_model_without_top_explains_one_output_unit(conv_base):
    x = image(6)
    sal = saliency_map(conv_base, x, class_index=5)
    # The output is (1, 1, 1, 512): unit 5 is channel 5. Its gradient by hand:
    out = conv_base.forward(x[None])
    dout = np.zeros_like(out)
    dout[0, 0, 0, 5] = 1.0
    dx = conv_base.backward(dout)
    np.testing.assert_allclose(sal, np.abs(dx[0]).max(axis=-1), rtol=1e-6)


def test_plot_saliency_writes_a_png_that_follows_the_input(small_top_pair, tmp_path):
    ours = small_top_pair[0]
    a = read_png(plot_saliency(ours, image(7), str(tmp_path / "a.png"), class_name="tench"))
    b = read_png(plot_saliency(ours, image(8), str(tmp_path / "b.png"), class_name="tench"))
    assert a.shape == (720, 1280, 3)
    assert_pixels_differ(a, b)
    assert "'tench'" in (tmp_path / "a.svg").read_text()


def test_the_input_panel_undoes_caffe_preprocessing():
    rgb = np.random.default_rng(9).uniform(0, 255, (4, 5, 3))
    np.testing.assert_allclose(_displayable(preprocess_input(rgb.copy()), "caffe"), rgb / 255.0, atol=1e-5)
    stretched = _displayable(rgb, None)
    assert stretched.min() == 0.0 and stretched.max() == 1.0
