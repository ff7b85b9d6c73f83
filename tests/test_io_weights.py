"""Weight files: numvgg reads what Keras writes and Keras reads what numvgg writes.

Keras 3 writes the reference files (its ``.weights.h5``, its legacy HDF5
writer, a whole model saved as ``.h5``) and the published Keras-2-era layout
is written by hand with h5py from Keras' own arrays. Every comparison is
array-exact. The error paths use a tiny model so they stay fast.
"""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from numvgg.applications.vgg16 import VGG16
from numvgg.errors import WeightFileError
from numvgg.io import keras3_h5, legacy_h5, weights
from numvgg.io.h5access import read_name_list, write_name_list
from numvgg.io.weights import detect_layout, load_weights, save_weights
from numvgg.layers import Conv2D, Dense, Flatten, GlobalAveragePooling2D, Input, MaxPooling2D
from numvgg.models import Sequential

SIDE = 32  # smallest VGG16 input: block5 ends at 1x1x512
INPUT_SHAPE = (SIDE, SIDE, 3)
CONV_NAMES = [f"block{b}_conv{i}" for b, n in enumerate((2, 2, 3, 3, 3), start=1) for i in range(1, n + 1)]


# -- helpers (the `keras` fixture comes from conftest.py) ------------------------------------
def randomize_keras(model, seed):
    """Give every Keras weight random values (Keras' zero biases would hide a swapped bias)."""
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            rng.normal(0.0, np.sqrt(2.0 / np.prod(w.shape[:-1])) if w.ndim > 1 else 0.05, w.shape).astype(
                np.float32
            )
            for w in model.get_weights()
        ]
    )


def randomize_numvgg(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            rng.normal(0.0, np.sqrt(2.0 / np.prod(w.shape[:-1])) if w.ndim > 1 else 0.05, w.shape).astype(
                np.float32
            )
            for w in model.get_weights()
        ]
    )


def keras_seed_model(keras, base):
    """The transfer-learning recipe in Keras: conv base + GAP + Dense(512) + Dense(1)."""
    model = keras.Sequential(
        [
            base,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.build((None, *INPUT_SHAPE))
    return model


def numvgg_seed_model():
    base = VGG16(include_top=False, weights=None, input_shape=INPUT_SHAPE)
    return Sequential(
        [base, GlobalAveragePooling2D(), Dense(512, activation="relu"), Dense(1, activation="sigmoid")]
    )


def write_keras_legacy(path, keras_model):
    """What Keras' legacy HDF5 writer produces (the weights part of model.save('m.h5'))."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras_model)


def write_published_layout(path, keras_model):
    """The layout of the published VGG16 files (Keras 2 era), written from Keras' arrays:
    fixed-length byte-string names, ``input_1`` first, datasets named
    ``<layer>_W_1:0`` / ``<layer>_b_1:0`` directly in each layer's group."""
    names = ["input_1" if i == 0 else layer.name for i, layer in enumerate(keras_model.layers)]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name, layer in zip(names, keras_model.layers):
            group = f.create_group(name)
            arrays = layer.get_weights()
            weight_names = [f"{name}_W_1:0", f"{name}_b_1:0"][: len(arrays)]
            group.attrs["weight_names"] = np.array([n.encode() for n in weight_names], dtype="S")
            for weight_name, array in zip(weight_names, arrays):
                group.create_dataset(weight_name, data=array)


def assert_same_weights(keras_model, numvgg_model):
    keras_weights = keras_model.get_weights()
    ours = numvgg_model.get_weights()
    assert len(keras_weights) == len(ours)
    for expected, got in zip(keras_weights, ours):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)


@pytest.fixture(scope="session")
def keras_vgg16(keras):
    keras.utils.set_random_seed(1)
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=INPUT_SHAPE)
    randomize_keras(model, seed=1)
    return model


@pytest.fixture(scope="session")
def keras_files(keras_vgg16, tmp_path_factory):
    """Keras' VGG16 (32x32, no top, random weights) in every layout numvgg reads."""
    folder = tmp_path_factory.mktemp("keras_written")
    files = {
        "keras3": folder / "vgg16_notop.weights.h5",
        "legacy": folder / "vgg16_notop_legacy.h5",
        "whole_model": folder / "vgg16_notop_model.h5",
        "published": folder / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    }
    keras_vgg16.save_weights(files["keras3"])
    write_keras_legacy(files["legacy"], keras_vgg16)
    keras_vgg16.save(files["whole_model"])  # legacy layout under 'model_weights'
    write_published_layout(files["published"], keras_vgg16)
    return files


@pytest.fixture(scope="session")
def sample_images():
    return np.random.default_rng(7).normal(0.0, 1.0, (2, *INPUT_SHAPE)).astype(np.float32)


# -- Keras -> numvgg --------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["keras3", "legacy", "whole_model", "published"])
def test_loads_every_keras_layout_into_vgg16(layout, keras_files, keras_vgg16, sample_images):
    model = VGG16(include_top=False, weights=None, input_shape=INPUT_SHAPE)
    load_weights(model, keras_files[layout])

    assert_same_weights(keras_vgg16, model)
    for name in CONV_NAMES:  # by name too, so a consistent shuffle cannot pass
        kernel, bias = keras_vgg16.get_layer(name).get_weights()
        np.testing.assert_array_equal(model.get_layer(name).params["kernel"], kernel)
        np.testing.assert_array_equal(model.get_layer(name).params["bias"], bias)
        assert model.get_layer(name).params["kernel"].flags["C_CONTIGUOUS"]
    expected = keras_vgg16.predict(sample_images, verbose=0)
    np.testing.assert_allclose(
        model(sample_images), expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max())
    )


def test_detects_each_layout(keras_files):
    expected = {"keras3": "keras3", "legacy": "legacy", "whole_model": "legacy", "published": "legacy"}
    for key, layout in expected.items():
        with h5py.File(keras_files[key], "r") as f:
            assert detect_layout(f) == layout


def test_keras3_group_order_is_rebuilt_from_the_counter(keras_files, keras_vgg16):
    with h5py.File(keras_files["keras3"], "r") as f:
        assert list(f["layers"])[:4] == ["conv2d", "conv2d_1", "conv2d_10", "conv2d_11"]  # h5py's order
        tree = keras3_h5.read_tree(f)
        conv_nodes = [node for node in tree.children.values() if node.weights]
        assert [node.real_name for node in conv_nodes] == CONV_NAMES
        assert [node.path for node in conv_nodes][-3:] == [
            "layers/conv2d_10",
            "layers/conv2d_11",
            "layers/conv2d_12",
        ]


def test_auto_names_follow_keras(keras):
    from keras.src.utils import naming

    classes = [
        "Conv2D",
        "MaxPooling2D",
        "GlobalAveragePooling2D",
        "Dense",
        "Flatten",
        "InputLayer",
        "Functional",
        "Sequential",
        "GlobalMaxPooling2D",
        "Dropout",
    ]
    for class_name in classes:
        assert keras3_h5.to_snake_case(class_name) == naming.to_snake_case(class_name)
    assert keras3_h5.auto_names(["Conv2D", "Conv2D", "MaxPooling2D", "Conv2D"]) == [
        "conv2d",
        "conv2d_1",
        "max_pooling2d",
        "conv2d_2",
    ]
    assert sorted(["conv2d_10", "conv2d", "conv2d_2", "conv2d_1"], key=keras3_h5.auto_name_key) == [
        "conv2d",
        "conv2d_1",
        "conv2d_2",
        "conv2d_10",
    ]


# -- numvgg -> Keras ----------------------------------------------------------------------------
@pytest.mark.parametrize("filename", ["vgg16.weights.h5", "vgg16_legacy.h5"])
def test_keras_loads_what_numvgg_saves(filename, keras, tmp_path, sample_images):
    model = VGG16(include_top=False, weights=None, input_shape=INPUT_SHAPE)
    randomize_numvgg(model, seed=3)
    path = tmp_path / filename
    save_weights(model, path)

    reference = keras.applications.VGG16(weights=None, include_top=False, input_shape=INPUT_SHAPE)
    reference.load_weights(path)
    assert_same_weights(reference, model)
    expected = reference.predict(sample_images, verbose=0)
    np.testing.assert_allclose(
        model(sample_images), expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max())
    )
    assert [p.name for p in tmp_path.iterdir()] == [filename]  # no temporary file left


def test_legacy_file_lists_layers_like_keras(tmp_path, keras_files):
    model = VGG16(include_top=False, weights=None, input_shape=INPUT_SHAPE)
    path = tmp_path / "ours.h5"
    save_weights(model, path)
    with h5py.File(path, "r") as ours, h5py.File(keras_files["legacy"], "r") as theirs:
        ours_names = read_name_list(ours, "layer_names")
        theirs_names = read_name_list(theirs, "layer_names")
        # Both number input layers per session (input_layer, input_layer_2, ...),
        # so only the first name's stem is compared.
        assert ours_names[0].startswith("input_layer") and theirs_names[0].startswith("input_layer")
        assert ours_names[1:] == theirs_names[1:]
        for name in CONV_NAMES:
            assert read_name_list(ours[name], "weight_names") == read_name_list(theirs[name], "weight_names")
        assert "top_level_model_weights" in ours


# -- the nested transfer-learning model -----------------------------------------------------------
@pytest.fixture(scope="session")
def keras_seed(keras):
    keras.utils.set_random_seed(2)
    model = keras_seed_model(
        keras, keras.applications.VGG16(weights=None, include_top=False, input_shape=INPUT_SHAPE)
    )
    randomize_keras(model, seed=2)
    return model


@pytest.mark.parametrize("layout", ["keras3", "legacy"])
def test_nested_model_from_keras(layout, keras_seed, tmp_path, sample_images):
    path = tmp_path / ("seed.weights.h5" if layout == "keras3" else "seed.h5")
    if layout == "keras3":
        keras_seed.save_weights(path)
    else:
        write_keras_legacy(path, keras_seed)
    model = numvgg_seed_model()
    load_weights(model, path)
    assert_same_weights(keras_seed, model)
    np.testing.assert_allclose(
        model(sample_images), keras_seed.predict(sample_images, verbose=0), rtol=1e-4, atol=1e-6
    )


def test_nested_plain_sequential_finds_keras_functional_group(keras_seed, tmp_path):
    """A nested numvgg Sequential without an input layer stands for keras.Sequential
    ('layers/sequential'); Keras' VGG16 is Functional ('layers/functional'). Either fits."""
    path = tmp_path / "seed.weights.h5"
    keras_seed.save_weights(path)
    functional = numvgg_seed_model()
    vgg = functional.layers[0]
    plain = Sequential([Input(INPUT_SHAPE), *vgg.layers[1:]], name="vgg16")  # the same layers, chained
    model = Sequential([plain, *functional.layers[1:]])
    assert weights.keras_class_name(model.layers[0]) == "Sequential"
    load_weights(model, path)
    assert_same_weights(keras_seed, model)


def test_keras3_file_of_another_model_gets_one_clear_message(keras_seed, tmp_path):
    path = tmp_path / "seed.weights.h5"
    keras_seed.save_weights(path)
    with pytest.raises(WeightFileError) as info:
        load_weights(VGG16(include_top=False, weights=None, input_shape=INPUT_SHAPE), path)
    message = str(info.value)
    assert "structure of model 'vgg16' does not match" in message
    assert "'layers/functional' (vgg16)" in message and "'layers/conv2d'" in message


@pytest.mark.parametrize("filename", ["seed.weights.h5", "seed.h5"])
def test_nested_model_to_keras_and_back(filename, keras, tmp_path):
    model = numvgg_seed_model()
    randomize_numvgg(model, seed=4)
    path = tmp_path / filename
    save_weights(model, path)

    reference = keras_seed_model(
        keras, keras.applications.VGG16(weights=None, include_top=False, input_shape=INPUT_SHAPE)
    )
    reference.load_weights(path)
    assert_same_weights(reference, model)

    again = numvgg_seed_model()
    load_weights(again, path)
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_partly_frozen_nested_model_uses_keras_legacy_order(keras, tmp_path):
    """Keras' legacy writer stores a nested model's trainable weights first: with only
    block5 trainable, block5 comes before blocks 1-4. numvgg reads and writes the same."""
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=INPUT_SHAPE)
    reference = keras_seed_model(keras, base)
    randomize_keras(reference, seed=5)
    for layer in base.layers:
        layer.trainable = layer.name.startswith("block5")
    keras_path = tmp_path / "keras_partly_frozen.h5"
    write_keras_legacy(keras_path, reference)
    with h5py.File(keras_path, "r") as f:
        assert read_name_list(f["vgg16"], "weight_names")[0] == "block5_conv1/kernel"

    model = numvgg_seed_model()
    for layer in model.layers[0].layers:
        layer.trainable = layer.name.startswith("block5")
    load_weights(model, keras_path)
    assert_same_weights(reference, model)

    unfrozen = numvgg_seed_model()
    with pytest.raises(WeightFileError, match=r"block1_conv1/kernel.*\(3, 3, 3, 64\).*\(3, 3, 512, 512\)"):
        load_weights(unfrozen, keras_path)

    ours = tmp_path / "numvgg_partly_frozen.h5"
    randomize_numvgg(model, seed=6)
    save_weights(model, ours)
    reference.load_weights(ours)
    assert_same_weights(reference, model)


def test_published_notop_file_into_the_nested_model_is_a_count_error(keras_files):
    model = numvgg_seed_model()
    before = model.get_weights()
    with pytest.raises(WeightFileError) as info:
        load_weights(model, keras_files["published"])
    message = str(info.value)
    assert "3 layers with weights" in message and "holds 13" in message
    assert str(keras_files["published"]) in message and "by_name" in message
    with pytest.raises(WeightFileError, match="vgg16"):  # by name: nothing matches, say why
        load_weights(model, keras_files["published"], by_name=True)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    load_weights(model.get_layer("vgg16"), keras_files["published"])  # the way that works


# -- a tiny model for the error paths ----------------------------------------------------------
def tiny_model(head_units=2, head_name="dense_b", with_head=True, seed=0):
    """conv_a -> pool -> flat -> dense_a -> dense_b, random weights drawn from ``seed``."""
    layers = [
        Conv2D(4, (3, 3), name="conv_a", input_shape=(6, 6, 3)),
        MaxPooling2D(name="pool"),
        Flatten(name="flat"),
        Dense(5, name="dense_a"),
    ]
    if with_head:
        layers.append(Dense(head_units, name=head_name))
    model = Sequential(layers)
    randomize_numvgg(model, seed=seed)
    return model


def test_trained_keras_model_with_optimizer_state(keras, tmp_path):
    """A compiled, trained Keras model also saves its optimizer; the layers still load, matched
    by structure although Keras named them conv2d_*, dense_* and numvgg conv_a, dense_a, ..."""
    reference = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(4, (3, 3)),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
            keras.layers.Dense(2),
        ]
    )
    reference.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    reference.fit(rng.normal(size=(8, 6, 6, 3)), rng.normal(size=(8, 2)), epochs=1, verbose=0)
    path = tmp_path / "trained.weights.h5"
    reference.save_weights(path)
    with h5py.File(path, "r") as f:
        assert "optimizer" in f
    model = tiny_model(seed=3)
    load_weights(model, path)
    assert_same_weights(reference, model)


def snapshot(model):
    return [w.copy() for w in model.get_weights()]


def assert_unchanged(model, before):
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


LAYOUT_CASES = [("tiny.h5", False), ("tiny.h5", True), ("tiny.weights.h5", False)]


@pytest.mark.parametrize("filename, by_name", LAYOUT_CASES)
def test_shape_mismatch_names_everything_and_changes_nothing(filename, by_name, tmp_path):
    path = tmp_path / filename
    save_weights(tiny_model(head_units=3, seed=1), path)
    model = tiny_model(head_units=2, seed=2)
    before = snapshot(model)
    with pytest.raises(WeightFileError) as info:
        load_weights(model, path, by_name=by_name)
    message = str(info.value)
    for part in (str(path), "dense_b", "dense_b/kernel", "(5, 2)", "(5, 3)", "dense_b/bias"):
        assert part in message
    assert isinstance(info.value, ValueError)
    assert_unchanged(model, before)  # conv_a and dense_a fit but were not written


@pytest.mark.parametrize("filename, by_name", LAYOUT_CASES)
def test_skip_mismatch_warns_and_loads_the_rest(filename, by_name, tmp_path):
    path = tmp_path / filename
    source = tiny_model(head_units=3, seed=1)
    save_weights(source, path)
    model = tiny_model(head_units=2, seed=2)
    head_before = model.get_layer("dense_b").get_weights()
    with pytest.warns(UserWarning, match="dense_b"):
        load_weights(model, path, by_name=by_name, skip_mismatch=True)
    for name in ("conv_a", "dense_a"):
        for a, b in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_layer("dense_b").get_weights(), head_before):
        np.testing.assert_array_equal(a, b)


def test_by_order_count_mismatch_names_both_counts(tmp_path):
    path = tmp_path / "tiny.h5"
    save_weights(tiny_model(), path)
    model = tiny_model(with_head=False)
    with pytest.raises(WeightFileError, match=r"has 2 layers with weights.*holds 3"):
        load_weights(model, path)
    with pytest.raises(WeightFileError, match="layer count mismatch"):
        load_weights(model, path, skip_mismatch=True)  # Keras does not skip this either


def test_by_name_matches_names_not_order(tmp_path):
    path = tmp_path / "tiny.h5"
    source = tiny_model()
    save_weights(source, path)
    model = Sequential(
        [
            Conv2D(4, (3, 3), name="conv_a", input_shape=(6, 6, 3)),
            MaxPooling2D(name="pool"),
            Flatten(name="flat"),
            Dense(5, name="dense_a"),
            Dense(7, name="new_head"),
        ]
    )
    new_head = model.get_layer("new_head").get_weights()
    with pytest.raises(WeightFileError, match="new_head"):
        load_weights(model, path)  # by order, new_head meets dense_b
    load_weights(model, path, by_name=True)
    for name in ("conv_a", "dense_a"):
        for a, b in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_layer("new_head").get_weights(), new_head):
        np.testing.assert_array_equal(a, b)


def test_by_name_finds_keras3_layers_by_their_name_attribute(tmp_path):
    # Keras refuses by_name for .weights.h5; numvgg matches the groups' name attributes
    # (tests/test_pretrained.py covers layers nested deep inside, as in HED's file).
    path = tmp_path / "tiny.weights.h5"
    source = tiny_model()
    save_weights(source, path)
    model = Sequential(
        [
            Conv2D(4, (3, 3), name="conv_a", input_shape=(6, 6, 3)),
            MaxPooling2D(name="pool"),
            Flatten(name="flat"),
            Dense(5, name="dense_a"),
            Dense(7, name="new_head"),
        ]
    )
    new_head = model.get_layer("new_head").get_weights()
    load_weights(model, path, by_name=True)
    for name in ("conv_a", "dense_a"):
        for a, b in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_layer("new_head").get_weights(), new_head):
        np.testing.assert_array_equal(a, b)
    stranger = Sequential([Dense(3, name="other", input_shape=(4,))])
    with pytest.raises(WeightFileError, match="no layer of model .* is in the file by name"):
        load_weights(stranger, path, by_name=True)


def test_keras3_missing_layer_is_an_error_and_extra_layer_a_warning(tmp_path):
    short, full = tmp_path / "short.weights.h5", tmp_path / "full.weights.h5"
    save_weights(tiny_model(with_head=False, seed=1), short)
    save_weights(tiny_model(seed=1), full)
    model = tiny_model(seed=2)
    before = snapshot(model)
    with pytest.raises(WeightFileError, match=r"dense_b.*no group 'layers/dense_1'"):
        load_weights(model, short)
    assert_unchanged(model, before)

    small = tiny_model(with_head=False, seed=2)
    with pytest.warns(UserWarning, match=r"ignored: 'layers/dense_1' \(dense_b\)"):
        load_weights(small, full)
    np.testing.assert_array_equal(
        small.get_layer("dense_a").params["kernel"], tiny_model(seed=1).get_layer("dense_a").params["kernel"]
    )


def test_top_level_weights_in_a_legacy_file_are_an_error(tmp_path):
    path = tmp_path / "tiny.h5"
    save_weights(tiny_model(), path)
    with h5py.File(path, "a") as f:
        group = f["top_level_model_weights"]
        write_name_list(group, "weight_names", ["extra"])
        group.create_dataset("extra", data=np.zeros(3, np.float32))
    with pytest.raises(WeightFileError, match="top-level"):
        load_weights(tiny_model(), path)


def test_unbuilt_model_is_refused(tmp_path):
    path = tmp_path / "tiny.h5"
    save_weights(tiny_model(), path)
    with pytest.raises(WeightFileError, match="not built"):
        load_weights(Sequential([Dense(3, name="d")]), path)


def test_other_dtypes_become_float32(tmp_path):
    path = tmp_path / "tiny.h5"
    save_weights(tiny_model(), path)
    with h5py.File(path, "a") as f:
        kernel = f["conv_a/conv_a/kernel"][()].astype(np.float64)
        del f["conv_a/conv_a/kernel"]
        f["conv_a"].create_dataset("conv_a/kernel", data=kernel)
        layers = legacy_h5.read_layers(f)
        values = layers[0].weights[0].read()
        assert values.dtype == np.float32 and values.flags["C_CONTIGUOUS"]
    model = tiny_model(seed=1)
    load_weights(model, path)
    np.testing.assert_array_equal(model.get_layer("conv_a").params["kernel"], kernel.astype(np.float32))


# -- files that are not (good) weight files --------------------------------------------------------
def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.h5"
    with pytest.raises(WeightFileError, match="not found: '" + re.escape(str(path))) as info:
        load_weights(tiny_model(), path)
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("these are not weights\n" * 100)
    with pytest.raises(WeightFileError, match="not an HDF5 file") as info:
        load_weights(tiny_model(), path)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


def test_truncated_file(tmp_path, keras_files):
    path = tmp_path / "half.weights.h5"
    data = keras_files["keras3"].read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match="truncated") as info:
        load_weights(VGG16(include_top=False, weights=None, input_shape=INPUT_SHAPE), path)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


def test_hdf5_without_keras_structure(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(WeightFileError, match="not a Keras weights file"):
        load_weights(tiny_model(), path)


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(WeightFileError, match="folder"):
        load_weights(tiny_model(), tmp_path)


def _legacy_with(tmp_path, edit):
    path = tmp_path / "tiny.h5"
    save_weights(tiny_model(seed=1), path)
    with h5py.File(path, "a") as f:
        edit(f, tmp_path)
    return path


def _soft_link(f, _):
    del f["conv_a/conv_a/kernel"]
    f["conv_a/conv_a/kernel"] = h5py.SoftLink("/dense_a/dense_a/kernel")


def _external_link(f, tmp_path):
    other = tmp_path / "elsewhere.h5"
    with h5py.File(other, "w") as g:
        g.create_dataset("kernel", data=np.zeros((3, 3, 3, 4), np.float32))
    del f["conv_a/conv_a/kernel"]
    f["conv_a/conv_a/kernel"] = h5py.ExternalLink(str(other), "/kernel")


def _external_dataset(f, tmp_path):
    raw = tmp_path / "kernel.raw"
    np.zeros((3, 3, 3, 4), np.float32).tofile(raw)
    del f["conv_a/conv_a/kernel"]
    f["conv_a/conv_a"].create_dataset(
        "kernel", shape=(3, 3, 3, 4), dtype=np.float32, external=[(str(raw), 0, h5py.h5f.UNLIMITED)]
    )


def _soft_link_group(f, _):
    del f["dense_a"]
    f["dense_a"] = h5py.SoftLink("/dense_b")


@pytest.mark.parametrize(
    "edit, what",
    [
        (_soft_link, "SoftLink"),
        (_external_link, "ExternalLink"),
        (_external_dataset, "external"),
        (_soft_link_group, "SoftLink"),
    ],
)
def test_links_and_external_data_are_refused(edit, what, tmp_path):
    path = _legacy_with(tmp_path, edit)
    model = tiny_model()
    before = snapshot(model)
    with pytest.raises(WeightFileError, match=what):
        load_weights(model, path)
    assert_unchanged(model, before)


def test_links_are_refused_in_keras3_files(tmp_path):
    path = tmp_path / "tiny.weights.h5"
    save_weights(tiny_model(), path)
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars"]
        f["layers/dense/vars"] = h5py.SoftLink("/layers/dense_1/vars")
    with pytest.raises(WeightFileError, match="SoftLink"):
        load_weights(tiny_model(), path)


# -- attributes split across chunks (Keras' 64 KB header limit) ------------------------------------
def test_long_name_lists_are_split_like_keras(tmp_path, keras):
    from keras.src.legacy.saving import legacy_h5_format

    names = [f"layer_with_a_rather_long_name_{i:05d}" for i in range(3000)]
    with h5py.File(tmp_path / "names.h5", "w") as f:
        write_name_list(f, "layer_names", names)
        assert "layer_names" not in f.attrs and "layer_names0" in f.attrs
        assert read_name_list(f, "layer_names") == names
        assert legacy_h5_format.load_attributes_from_hdf5_group(f, "layer_names") == names


# -- saving -----------------------------------------------------------------------------------
def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "tiny.h5"
    save_weights(tiny_model(), path)
    good = path.read_bytes()

    def broken(f, layers, **kwargs):
        f.create_group("half_written")
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(legacy_h5, "write_legacy", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        save_weights(tiny_model(head_units=3), path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.h5"]


def test_save_refuses_unknown_extension_and_missing_folder(tmp_path):
    with pytest.raises(WeightFileError, match=r"\.weights\.h5"):
        save_weights(tiny_model(), tmp_path / "tiny.npz")
    with pytest.raises(WeightFileError, match="does not exist"):
        save_weights(tiny_model(), tmp_path / "no_such_folder" / "tiny.h5")


def test_keras3_writer_layout(tmp_path):
    path = tmp_path / "vgg.weights.h5"
    save_weights(VGG16(include_top=False, weights=None, input_shape=INPUT_SHAPE), path)
    with h5py.File(path, "r") as f:
        assert dict(f["vars"].attrs) == {"name": "vgg16"}
        assert f["layers/conv2d_10/vars"].attrs["name"] == "block5_conv1"
        assert f["layers/max_pooling2d_4/vars"].attrs["name"] == "block5_pool"
        assert f["layers/input_layer/vars"].attrs["name"].startswith("input_layer")
        assert sorted(f["layers/conv2d/vars"]) == ["0", "1"]
        assert f["layers/conv2d/vars/0"].shape == (3, 3, 3, 64)


@pytest.mark.parametrize("filename", ["tiny.weights.h5", "tiny.h5", "tiny.hdf5"])
def test_round_trip(filename, tmp_path):
    model = tiny_model(seed=1)
    save_weights(model, tmp_path / filename)
    again = tiny_model(seed=2)
    load_weights(again, tmp_path / filename)
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    save_weights(again, tmp_path / filename)  # overwriting an existing file works
    assert sorted(p.name for p in tmp_path.iterdir()) == [filename]


def test_load_plans_before_reading(monkeypatch, tmp_path):
    """No array is read when a shape does not fit (a bad file costs no memory)."""
    path = tmp_path / "tiny.h5"
    save_weights(tiny_model(head_units=3, seed=1), path)
    reads = []
    original = weights.SavedWeight.read
    monkeypatch.setattr(weights.SavedWeight, "read", lambda self: reads.append(self) or original(self))
    with pytest.raises(WeightFileError):
        load_weights(tiny_model(head_units=2), path)
    assert reads == []
