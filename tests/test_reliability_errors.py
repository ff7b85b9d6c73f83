"""Bad arguments to the training API get a clear error, early, in the user's own terms.

Each case asserts the error type (numvgg's errors subclass the built-in ones
Keras raises, so ``except ValueError`` keeps working), that the message names
the problem (the argument, the shapes, the reason), and that the model did
not change. Weight files, images and datasets have their own error tests in
``test_io_weights.py``, ``test_images.py`` and ``test_dataset.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from reliability_helpers import assert_same_state, small_data, small_model, snapshot

from numvgg.applications.vgg16 import VGG16
from numvgg.errors import NumvggError, ShapeError
from numvgg.layers import Conv2D, Dense, Flatten, MaxPooling2D
from numvgg.models import Sequential


@pytest.fixture(scope="module")
def vgg_top():
    """VGG16 with its top, on 32x32 inputs: fc1 takes the 1x1x512 block5 output."""
    model = VGG16(include_top=True, weights=None, input_shape=(32, 32, 3), classes=2)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    return model


@pytest.fixture
def model():
    return small_model()


# -- input shapes: expected vs received, and why --------------------------------------------
CALLS = {
    "fit": lambda m, x: m.fit(x, np.zeros((len(x), 2), np.float32), verbose=0),
    "evaluate": lambda m, x: m.evaluate(x, np.zeros((len(x), 2), np.float32), verbose=0),
    "predict": lambda m, x: m.predict(x, verbose=0),
    "train_on_batch": lambda m, x: m.train_on_batch(x, np.zeros((len(x), 2), np.float32)),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_image_size_that_fc1_fixes_is_explained(vgg_top, call):
    before = snapshot(vgg_top)
    with pytest.raises(ShapeError) as info:
        CALLS[call](vgg_top, np.zeros((2, 64, 64, 3), np.float32))
    message = str(info.value)
    assert message.startswith(f"{call}():")
    for part in (
        "(None, 32, 32, 3)",
        "(2, 64, 64, 3)",
        "'fc1' takes 512 features",
        "'block5_pool' (1x1x512) for 32x32 images",
        "64x64 images would give 2x2x512 = 2,048",
        "include_top=False",
    ):
        assert part in message, part
    assert_same_state(before, vgg_top)


def test_image_size_too_small_names_the_layer(vgg_top):
    with pytest.raises(ShapeError, match=r"16x16 images are too small.*'block5_pool'"):
        vgg_top.predict(np.zeros((1, 16, 16, 3), np.float32), verbose=0)


@pytest.mark.parametrize(
    "shape, reason",
    [
        ((32, 32, 3), r"without the batch axis.*x\[np\.newaxis\].*\(1, 32, 32, 3\)"),
        ((2, 3, 32, 32), r"channels-first.*x\.transpose\(0, 2, 3, 1\)"),
        ((2, 32, 32, 1), r"takes 3 channel\(s\) but this input has 1.*grayscale.*color_mode='rgb'"),
        ((2, 32, 32, 4), r"has 4.*RGBA.*x\[\.\.\., :3\]"),
        ((2, 2, 32, 32, 3), r"takes 4-D input .* this array is 5-D"),
        ((1, 1, 32, 32, 3), r"extra axis of length 1.*np\.squeeze"),
        ((2, 32, 32), r"takes 4-D input \(batch, height, width, channels\) but this array is 3-D"),
    ],
)
def test_input_shape_mistakes_are_named(vgg_top, shape, reason):
    with pytest.raises(ShapeError) as info:
        vgg_top.predict(np.zeros(shape, np.float32), verbose=0)
    assert str(shape) in str(info.value)
    assert re.search(reason, str(info.value)), str(info.value)


def test_conv_model_built_for_one_size_says_how_to_build_for_another():
    model = Sequential([Conv2D(2, (3, 3), input_shape=(8, 8, 3)), MaxPooling2D()])
    with pytest.raises(ShapeError, match=r"built for 8x8 images.*input_shape=\(12, 12, 3\)"):
        model.predict(np.zeros((1, 12, 12, 3)), verbose=0)


def test_dataset_batch_with_the_wrong_shape_names_epoch_and_step(model):
    x, y = small_data(16)

    def batches():
        yield x[:8], y[:8]
        yield x[8:, :, :8], y[8:]  # cropped by mistake

    with pytest.raises(ShapeError, match=r"fit\(\): epoch 1/1, step 2/\?.*\(8, 16, 8, 3\)"):
        model.fit(batches(), verbose=0)


# -- data that is not an array of numbers -----------------------------------------------------
def test_file_names_instead_of_pixels(model):
    with pytest.raises(ValueError, match=r"x holds strings \(e\.g\. 'cat\.jpg'\).*load_img"):
        model.predict(["cat.jpg", "dog.jpg"], verbose=0)


def test_images_of_different_sizes_name_both_shapes_and_chain_numpys_error(model):
    images = [np.zeros((16, 16, 3)), np.zeros((16, 16, 3)), np.zeros((15, 16, 3))]
    with pytest.raises(ValueError) as info:
        model.fit(images, [0, 1, 0], verbose=0)
    assert re.search(r"item 0 is \(16, 16, 3\) but item 2 is \(15, 16, 3\).*target_size", str(info.value))
    assert isinstance(info.value.__cause__, ValueError)  # NumPy's own message is kept


def test_class_names_as_targets(model):
    x, _ = small_data(4)
    with pytest.raises(ValueError, match=r"y holds strings \(e\.g\. 'cat'\).*np\.unique"):
        model.fit(x, np.array(["cat", "dog", "cat", "dog"]), verbose=0)


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((2, 16, 16, 3), complex), "dtype complex128; numvgg takes real numbers"),
        (np.zeros((0, 16, 16, 3)), r"x holds no samples.*\(0, 16, 16, 3\)"),
        (np.float32(3.0), "x is a single number"),
        ([None, None], r"dtype object.*\(NoneType\)"),
    ],
)
def test_other_non_arrays(model, x, message):
    with pytest.raises(ValueError, match=message):
        model.predict(x, verbose=0)


def test_missing_targets_with_arrays(model):
    x, _ = small_data(4)
    with pytest.raises(ValueError, match=r"fit\(\): y is missing"):
        model.fit(x, verbose=0)


# -- fit's own arguments -------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(epochs="3"), "epochs must be a non-negative int, got '3'"),
        (dict(epochs=-1), "epochs must be a non-negative int"),
        (dict(initial_epoch=1.5), "initial_epoch must be a non-negative int"),
        (dict(validation_split="0.2"), r"validation_split must be a number in \[0, 1\), got '0.2'"),
        (dict(validation_split=1.0), r"validation_split must be a number in \[0, 1\)"),
        (dict(validation_freq=0), "validation_freq must be a positive int"),
        (dict(validation_data=np.zeros((2, 16, 16, 3))), r"single array.*\(x_val, y_val\)"),
        (dict(validation_data=(np.zeros((2, 16, 16, 3)),)), "a tuple of 1 item"),
    ],
)
def test_fit_arguments_are_checked_before_training(model, kwargs, message):
    x, y = small_data(8)
    before = snapshot(model)
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, verbose=0, **kwargs)
    assert_same_state(before, model)


def test_initial_epoch_after_epochs_warns_that_nothing_trains(model):
    x, y = small_data(8)
    before = snapshot(model)
    with pytest.warns(UserWarning, match=r"initial_epoch=3 is after epochs=1.*epochs=6"):
        model.fit(x, y, epochs=1, initial_epoch=3, verbose=0)
    assert_same_state(before, model)


def test_validation_data_as_a_list_is_read_as_a_tuple_like_keras(model):
    x, y = small_data(8)
    history = model.fit(x, y, validation_data=[x, y], verbose=0)
    assert "val_loss" in history.history


# -- unknown names list the valid choices ------------------------------------------------------
@pytest.mark.parametrize(
    "build, message",
    [
        (
            lambda: small_model(optimizer="adamw"),
            "Unknown optimizer 'adamw'. numvgg has: adadelta, adagrad, adam, rmsprop, sgd",
        ),
        (
            lambda: VGG16(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="mean"),
            "Unknown pooling 'mean'. Valid choices: None, 'avg', 'max'",
        ),
        (
            lambda: small_model().compile(optimizer="adam", loss="binary_crossentropyy"),
            "Unknown loss 'binary_crossentropyy'.*binary_crossentropy",
        ),
        (lambda: Dense(2, activation="relux"), r"Unknown activation 'relux'.*'relu'"),
    ],
)
def test_unknown_names_list_the_choices(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_unknown_metric_is_named_at_the_first_batch_with_the_choices(model):
    x, y = small_data(4)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acuracy"])
    with pytest.raises(ValueError, match=r"Unknown metric 'acuracy'.*'accuracy'"):
        model.fit(x, y, verbose=0)


# -- numvgg's errors are catchable as numvgg errors and as Keras' built-in types -------------
def test_errors_are_numvgg_errors_and_builtin_types(vgg_top):
    with pytest.raises(ShapeError) as info:
        vgg_top.predict(np.zeros((2, 32, 32, 1)), verbose=0)
    assert isinstance(info.value, NumvggError) and isinstance(info.value, ValueError)


def test_flatten_dense_model_without_vgg_names_is_explained_too():
    model = Sequential(
        [
            Conv2D(2, (3, 3), padding="same", input_shape=(8, 8, 3)),
            MaxPooling2D(),
            Flatten(name="flat"),
            Dense(3, name="head"),
        ]
    )
    with pytest.raises(ShapeError, match=r"'head' takes 32 features.*4x4x2.*6x6x2 = 72"):
        model.predict(np.zeros((1, 12, 12, 3)), verbose=0)
