"""Issue 9's small Keras API: AveragePooling2D (op, gradcheck, Keras parity), the
MaxPool2D/AvgPool2D aliases, to_categorical, numvgg.preprocessing.image,
Dense(input_dim=), and argument errors that name the argument (issue 12)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import numvgg
from numvgg.debug.gradcheck import check_layer, check_op
from numvgg.layers import AveragePooling2D, AvgPool2D, Conv2D, Dense, MaxPool2D, MaxPooling2D
from numvgg.layers.arguments import standardize_tuple
from numvgg.ops import pooling as pool_ops

# (pool_size, strides, padding, input shape): odd sizes, overlapping and
# over-hanging 'same' windows, so the border divisors differ from PH*PW.
AVG_CASES = [
    ((2, 2), None, "valid", (2, 7, 5, 3)),
    ((3, 3), (2, 2), "valid", (2, 7, 8, 2)),
    ((2, 2), None, "same", (2, 5, 7, 3)),
    ((3, 3), (2, 2), "same", (2, 6, 5, 3)),
    ((3, 2), (1, 2), "same", (1, 4, 5, 2)),
    ((3, 3), (1, 1), "same", (1, 3, 3, 1)),
]
AVG_IDS = [f"{p[0]}x{p[1]}-s{s}-{pad}-{'x'.join(map(str, sh))}" for p, s, pad, sh in AVG_CASES]


def rel_to_max(ours, theirs) -> float:
    theirs = np.asarray(theirs, dtype=np.float64)
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-30))


@pytest.mark.parametrize("pool, strides, padding, shape", AVG_CASES, ids=AVG_IDS)
def test_avgpool_op_matches_the_loop_version(pool, strides, padding, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    out, _ = pool_ops.avgpool2d_forward(x, pool, strides, padding)
    np.testing.assert_allclose(out, pool_ops.avgpool2d_forward_naive(x, pool, strides, padding), rtol=1e-12)


@pytest.mark.parametrize("pool, strides, padding, shape", AVG_CASES, ids=AVG_IDS)
def test_avgpool_gradcheck(pool, strides, padding, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    errors = check_op(
        pool_ops.avgpool2d_forward,
        pool_ops.avgpool2d_backward,
        x,
        pool_size=pool,
        strides=strides,
        padding=padding,
    )
    assert errors["input0"] < 1e-7, errors
    assert check_layer(AveragePooling2D(pool, strides=strides, padding=padding), shape)["x"] < 1e-7


def test_avgpool_same_border_divides_by_the_real_pixels():
    # 3x3 'same' on a 3x3 image of ones: every window averages ones, whatever its size.
    x = np.ones((1, 3, 3, 1))
    out, cache = pool_ops.avgpool2d_forward(x, (3, 3), (1, 1), "same")
    np.testing.assert_array_equal(out, np.ones((1, 3, 3, 1)))
    np.testing.assert_array_equal(cache.counts[..., 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])


@pytest.mark.parametrize("pool, strides, padding, shape", AVG_CASES, ids=AVG_IDS)
def test_avgpool_matches_keras(pool, strides, padding, shape, keras, tf):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    ours = AveragePooling2D(pool, strides=strides, padding=padding)
    out = ours.forward(x)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx = ours.backward(dout)
    theirs = keras.layers.AveragePooling2D(pool, strides=strides, padding=padding)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        k_out = theirs(xt)
        loss = tf.reduce_sum(k_out * dout)
    k_dx = tape.gradient(loss, xt)
    assert out.shape == tuple(k_out.shape) and out.dtype == np.float32
    batchless = (None, *shape[1:])
    assert ours.compute_output_shape(batchless) == tuple(theirs.compute_output_shape(batchless))
    assert rel_to_max(out, k_out) < 1e-6
    assert rel_to_max(dx, k_dx) < 1e-6


def test_aliases_are_the_same_classes_as_in_keras(keras):
    assert MaxPool2D is MaxPooling2D and AvgPool2D is AveragePooling2D
    assert keras.layers.MaxPool2D is keras.layers.MaxPooling2D
    assert keras.layers.AvgPool2D is keras.layers.AveragePooling2D
    for name in ("MaxPool2D", "AvgPool2D", "AveragePooling2D"):
        assert name in numvgg.layers.__all__


@pytest.mark.parametrize(
    "labels, num_classes",
    [
        ([0, 1, 2, 3], None),
        ([0, 2, 1], 5),
        ([[1], [0], [3]], None),
        ([[0, 1], [2, 0]], 3),
        (np.array([1.7, 0.2]), 3),
        (np.arange(6).reshape(2, 3, 1), 7),
        ([3], 0),
    ],
)
def test_to_categorical_matches_keras(labels, num_classes, keras):
    ours = numvgg.utils.to_categorical(labels, num_classes)
    theirs = keras.utils.to_categorical(labels, num_classes)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("labels, num_classes", [([0, 3], 3), ([-1, 0], 2)])
def test_to_categorical_refuses_an_index_out_of_range(labels, num_classes):
    with pytest.raises(ValueError, match=rf"class index -?\d is outside 0 \.\. {num_classes - 1}"):
        numvgg.utils.to_categorical(labels, num_classes)


def test_preprocessing_image_has_keras_names(keras, tmp_path):
    from numvgg.preprocessing import image

    keras_names = {n for n in dir(keras.preprocessing.image) if not n.startswith("_")}
    assert set(image.__all__) <= keras_names
    assert keras_names - set(image.__all__) == {"smart_resize"}  # the one numvgg lacks (docstring says so)
    assert image.load_img is numvgg.utils.load_img
    assert numvgg.preprocessing.image_dataset_from_directory is numvgg.utils.image_dataset_from_directory
    path = tmp_path / "a.png"
    pixels = np.random.default_rng(3).integers(0, 256, (9, 13, 3)).astype(np.uint8)
    keras.utils.array_to_img(pixels, scale=False).save(path)
    ours = image.img_to_array(image.load_img(path, target_size=(5, 7)))
    keras_image = keras.preprocessing.image
    theirs = keras_image.img_to_array(keras_image.load_img(path, target_size=(5, 7)))
    np.testing.assert_array_equal(ours, theirs)


def _warnings_of(make):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = make()
    return layer, [(w.category, str(w.message)) for w in caught]


def test_dense_input_dim_warns_like_keras(keras):
    ours, our_warnings = _warnings_of(lambda: Dense(3, input_dim=4))
    _, their_warnings = _warnings_of(lambda: keras.layers.Dense(3, input_dim=4))
    assert our_warnings == their_warnings and len(our_warnings) == 1
    model = numvgg.Sequential([ours])
    assert model.layers[0].input_shape == (None, 4)
    keras_model, _ = _warnings_of(lambda: keras.Sequential([keras.layers.Dense(3, input_dim=4)]))
    assert tuple(keras_model.input_shape) == model.layers[0].input_shape


@pytest.mark.parametrize(
    "make, keras_make",
    [
        (lambda: Conv2D(1, 0), lambda k: k.layers.Conv2D(1, 0)),
        (lambda: Conv2D(1, 3, strides=0), lambda k: k.layers.Conv2D(1, 3, strides=0)),
        (lambda: Conv2D(1, (3, 3, 3)), lambda k: k.layers.Conv2D(1, (3, 3, 3))),
        (lambda: MaxPooling2D(0), lambda k: k.layers.MaxPooling2D(0)),
        (lambda: MaxPooling2D((2, -1)), lambda k: k.layers.MaxPooling2D((2, -1))),
        (lambda: AveragePooling2D(0), lambda k: k.layers.AveragePooling2D(0)),
    ],
    ids=["conv-kernel0", "conv-strides0", "conv-kernel3d", "maxpool0", "maxpool-neg", "avgpool0"],
)
def test_bad_sizes_raise_keras_message(make, keras_make, keras):
    with pytest.raises(ValueError) as ours:
        make()
    with pytest.raises(ValueError) as theirs:
        keras_make(keras)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    "value, message",
    [
        (0, "Received strides=0, including values {0} that do not satisfy `value > 0`"),
        ((1, 2, 3), "must be a tuple of 2 integers. Received strides=(1, 2, 3)"),
        ((1, 2.0), "including element 2.0 of type float"),
        (True, "Received strides=True"),
        ("2", "Received strides='2'"),
        (None, "Received strides=None"),
    ],
)
def test_standardize_tuple_names_the_argument_and_value(value, message):
    with pytest.raises(ValueError) as err:
        standardize_tuple(value, 2, "strides")
    assert "The `strides` argument" in str(err.value) and message in str(err.value)


def test_standardize_tuple_accepts():
    assert standardize_tuple(3, 2, "kernel_size") == (3, 3)
    assert standardize_tuple([1, np.int64(2)], 2, "strides") == (1, 2)
    assert standardize_tuple((0, 1), 2, "strides", allow_zero=True) == (0, 1)
    assert Conv2D(2, [3, 1]).kernel_size == (3, 1) and MaxPooling2D(3).strides == (3, 3)
