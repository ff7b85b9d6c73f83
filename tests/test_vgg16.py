"""numvgg.applications.vgg16.VGG16: Keras' argument rules, layer names,
parameter counts and the summary table, compared with keras.applications."""

import re

import numpy as np
import pytest

from numvgg.applications.vgg16 import VGG16
from numvgg.layers import Dense, GlobalAveragePooling2D
from numvgg.models import Sequential


def keras_summary(model) -> str:
    lines = []
    model.summary(print_fn=lambda text, **kwargs: lines.append(text))
    return "".join(lines).rstrip("\n")


# -- argument rules ---------------------------------------------------------------------

# Arguments Keras rejects with a ValueError before building anything (so no download).
# Each pair: VGG16 keyword arguments, a phrase numvgg's message must contain.
BOTH_REJECT = [
    (dict(include_top=False, weights=None, input_shape=(31, 32, 3)), "at least 32x32"),
    (dict(include_top=False, weights=None, input_shape=(32, 16, 3)), "at least 32x32"),
    (dict(include_top=False, weights=None, input_shape=(32, 32)), "three integers"),
    (dict(include_top=True, weights="imagenet", input_shape=(32, 32, 3)), "(224, 224, 3)"),
    (dict(include_top=True, weights="imagenet", input_shape=(225, 224, 3)), "(224, 224, 3)"),
    (dict(include_top=True, weights="imagenet", classes=10), "`classes` should be 1000"),
    (dict(include_top=False, weights="imagenet", input_shape=(64, 64, 1)), "3 channels"),
    (
        dict(include_top=True, weights=None, input_shape=(None, None, 3)),
        "Received input_shape=(None, None, 3)",
    ),
    (dict(include_top=False, weights="/no/such/weights.h5", input_shape=(32, 32, 3)), "no/such/weights.h5"),
]


@pytest.mark.parametrize(
    "kwargs, phrase", BOTH_REJECT, ids=[re.sub(r"\W+", "-", str(k)).strip("-") for k, _ in BOTH_REJECT]
)
def test_rejected_like_keras(kwargs, phrase, keras):
    with pytest.raises(ValueError):
        keras.applications.VGG16(**kwargs)
    with pytest.raises(ValueError) as info:
        VGG16(**kwargs)
    assert phrase.lower() in str(info.value).lower(), str(info.value)


@pytest.mark.parametrize(
    "kwargs, phrase",
    [
        (dict(include_top=False, weights=None, pooling="mean"), "pooling"),  # Keras ignores it
        (dict(include_top=False, weights=None, input_tensor=np.zeros((1, 32, 32, 3))), "symbolic tensor"),
        (dict(include_top=False, weights=None, input_shape=(32, 32, 4)), "3 channels"),
        (dict(include_top=False, weights=42), "weights"),
        (
            dict(include_top=True, weights=None, input_shape=(32, 32, 3), classifier_activation="swish"),
            "classifier_activation",
        ),
        # Keras rejects this too, but only after building the whole 224x224 model (slow to test).
        (
            dict(include_top=True, weights="imagenet", classifier_activation="relu"),
            "Only `None` and `softmax` activations are allowed",
        ),
    ],
)
def test_numvgg_only_rules(kwargs, phrase):
    with pytest.raises(ValueError) as info:
        VGG16(**kwargs)
    assert phrase in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "kwargs, out_shape",
    [
        (dict(include_top=False, input_shape=(32, 32, 3)), (None, 1, 1, 512)),
        (dict(include_top=False, input_shape=(48, 40, 3)), (None, 1, 1, 512)),
        (dict(include_top=False, input_shape=(100, 70, 3)), (None, 3, 2, 512)),
        (dict(include_top=False, input_shape=(32, 32, 3), pooling="avg"), (None, 512)),
        (dict(include_top=False, input_shape=(32, 32, 3), pooling="max"), (None, 512)),
        (dict(include_top=True, input_shape=(32, 32, 3), classes=10), (None, 10)),
        (dict(include_top=True, input_shape=(64, 32, 3), classes=3, classifier_activation=None), (None, 3)),
    ],
)
def test_output_shapes(kwargs, out_shape):
    model = VGG16(weights=None, **kwargs)
    assert model.input_shape == (None, *kwargs["input_shape"])
    assert model.output_shape == out_shape
    assert model.name == "vgg16"


def test_no_top_default_input_size_is_free_like_keras():
    assert VGG16(include_top=False, weights=None).input_shape == (None, None, None, 3)


# -- names and counts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "include_top, pooling", [(False, None), (True, None), (False, "avg"), (False, "max")]
)
def test_layer_names_match_keras(include_top, pooling, vgg16_pair_factory):
    pair = vgg16_pair_factory(include_top=include_top, pooling=pooling)
    keras_layers = pair.keras.layers
    assert keras_layers[0].name.startswith("input_layer")
    # Both functional: the same number of layers, an InputLayer first (so
    # base.layers[15:] picks the same layers in both).
    assert len(pair.numvgg.layers) == len(keras_layers)
    assert pair.numvgg.layers[0].name.startswith("input_layer")
    ours = [layer.name for layer in pair.numvgg.layers[1:]]
    theirs = [layer.name for layer in keras_layers[1:]]
    if pooling:
        # Keras numbers automatic names per session (global_average_pooling2d_3): compare the stem.
        assert re.sub(r"_\d+$", "", ours[-1]) == re.sub(r"_\d+$", "", theirs[-1])
        ours, theirs = ours[:-1], theirs[:-1]
    assert ours == theirs
    assert [type(l).__name__ for l in pair.numvgg.layers] == [type(l).__name__ for l in keras_layers]
    assert [w.shape for w in pair.numvgg.weights] == [tuple(w.shape) for w in pair.keras.weights]


def test_totals_with_top_at_224(vgg16_top_224):
    model = vgg16_top_224
    assert model.input_shape == (None, 224, 224, 3)
    assert model.count_params() == 138_357_544
    assert model.get_layer("fc1").params["kernel"].shape == (25088, 4096)
    text = model.summary(print_fn=None)
    assert " Total params: 138,357,544 (527.79 MB)" in text
    assert " Trainable params: 138,357,544 (527.79 MB)" in text
    assert " Non-trainable params: 0 (0.00 B)" in text


def test_totals_without_top():
    model = VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert model.count_params() == 14_714_688
    assert len(model.weights) == 26


def test_seed_model_totals_with_frozen_base():
    base = VGG16(include_top=False, weights=None, input_shape=(150, 150, 3))
    model = Sequential(
        [base, GlobalAveragePooling2D(), Dense(512, activation="relu"), Dense(1, activation="sigmoid")]
    )
    base.trainable = False
    text = model.summary(print_fn=None)
    assert " Total params: 14,977,857 (57.14 MB)" in text
    assert " Trainable params: 263,169 (1.00 MB)" in text
    assert " Non-trainable params: 14,714,688 (56.13 MB)" in text


def test_summary_text_matches_keras_no_top_32(vgg16_pair):
    ours = vgg16_pair.numvgg.summary(print_fn=None)
    theirs = keras_summary(vgg16_pair.keras)
    # Both number automatic input-layer names per session (input_layer_2): compare the stem.
    for text, name in ((ours, vgg16_pair.numvgg.layers[0].name), (theirs, vgg16_pair.keras.layers[0].name)):
        assert f"{name} (InputLayer)" in text
    ours = ours.replace(
        f"{vgg16_pair.numvgg.layers[0].name} (InputLayer)",
        "input_layer (InputLayer)".ljust(len(vgg16_pair.numvgg.layers[0].name) + 13),
    )
    theirs = theirs.replace(
        f"{vgg16_pair.keras.layers[0].name} (InputLayer)",
        "input_layer (InputLayer)".ljust(len(vgg16_pair.keras.layers[0].name) + 13),
    )
    assert ours.splitlines() == theirs.splitlines()


def test_summary_of_the_seed_model_matches_keras(keras):
    """Same rows and totals as Keras; only the nested model's type differs (Sequential vs Functional)."""
    ours_base = VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    ours = Sequential(
        [ours_base, GlobalAveragePooling2D(), Dense(512, activation="relu"), Dense(1, activation="sigmoid")]
    )
    theirs_base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    theirs = keras.Sequential(
        [
            theirs_base,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    ours_base.trainable = False
    theirs_base.trainable = False

    def rows(text):
        # Drop the title and the name column: automatic names carry per-session counters.
        out = []
        for line in text.splitlines()[1:]:
            cells = line.split("│")
            out.append(cells[2:] if len(cells) == 5 else [line])
        return out

    ours_text, theirs_text = ours.summary(print_fn=None), keras_summary(theirs)
    assert rows(ours_text) == rows(theirs_text)
    assert ours_text.splitlines()[-3:] == theirs_text.splitlines()[-3:]
    assert "vgg16 (Functional)" in ours_text and "vgg16 (Functional)" in theirs_text
