"""Weight and training-state files that do not fit: the wrong model, the wrong dtype, damage.

``test_io_weights.py`` covers the layouts, shape mismatches, missing and
truncated files, links and external data; this file covers what it does not:

* the VGG-sized mistakes: a VGG19 file, a with-top file into a no-top model and
  the reverse, a different head. The files have the real published shapes but
  are written *lazily* (HDF5 datasets with no data stored read back as a fill
  value), so a 500 MB layout costs a few KB and milliseconds;
* weights stored as float16, int32, bool or big-endian floats (converted to
  float32, as Keras' ``variable.assign`` casts) and as complex, strings or
  records (refused);
* training-state files (``save_training_state``): every way one can fail to
  fit, and that a failure changes nothing -- weights, optimizer, generators.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from reliability_helpers import assert_same_state, small_data, small_model, snapshot

from numvgg import random as nv_random
from numvgg.applications.vgg16 import ARCH, VGG16
from numvgg.errors import TrainingStateError, WeightFileError
from numvgg.io import training_state
from numvgg.io.keras3_h5 import auto_names
from numvgg.io.weights import load_weights, save_weights

ARCH19 = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
SIDE = 32


def conv_layers(arch):
    """``[(name, [kernel shape, bias shape])]`` for the convolutions of a VGG architecture."""
    layers, channels = [], 3
    for block, (n_convs, filters) in enumerate(arch, start=1):
        for i in range(1, n_convs + 1):
            layers.append((f"block{block}_conv{i}", [(3, 3, channels, filters), (filters,)]))
            channels = filters
    return layers


def top_layers(side=224, classes=1000):
    flat = (side // 32) ** 2 * 512
    return [
        ("fc1", [(flat, 4096), (4096,)]),
        ("fc2", [(4096, 4096), (4096,)]),
        ("predictions", [(4096, classes), (classes,)]),
    ]


def fill_value(layer_index, weight_index):
    """The value every entry of a lazily written weight reads back as."""
    return 0.01 * (layer_index + 1) + 0.001 * weight_index


def lazy_dataset(group, name, shape, fill):
    # chunks=True and no data: HDF5 stores nothing and reads back `fill`.
    return group.create_dataset(name, shape=shape, dtype=np.float32, chunks=True, fillvalue=fill)


def write_published(path, layers):
    """The published Keras-2-era layout (``<name>_W_1:0`` / ``<name>_b_1:0``), lazily."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"input_1"] + [n.encode() for n, _ in layers])
        f.create_group("input_1").attrs["weight_names"] = np.zeros((0,))
        for k, (name, shapes) in enumerate(layers):
            group = f.create_group(name)
            names = [f"{name}_W_1:0", f"{name}_b_1:0"]
            group.attrs["weight_names"] = np.array([n.encode() for n in names])
            for j, (wname, shape) in enumerate(zip(names, shapes)):
                lazy_dataset(group, wname, shape, fill_value(k, j))
    return path


def write_keras3(path, layers, pools=5):
    """Keras 3's ``.weights.h5`` tree for a functional VGG (conv2d, conv2d_1, ...), lazily."""
    classes = ["InputLayer"] + ["Conv2D" if n.startswith("block") else "Dense" for n, _ in layers]
    names = auto_names(classes + ["MaxPooling2D"] * pools)
    with h5py.File(path, "w") as f:
        f.create_group("vars").attrs["name"] = "vgg"
        for k, auto in enumerate(names):
            group = f.create_group(f"layers/{auto}/vars")
            if 1 <= k <= len(layers):
                name, shapes = layers[k - 1]
                group.attrs["name"] = name
                for j, shape in enumerate(shapes):
                    lazy_dataset(group, str(j), shape, fill_value(k - 1, j))
    return path


@pytest.fixture(scope="module")
def vgg_notop():
    return VGG16(include_top=False, weights=None, input_shape=(SIDE, SIDE, 3))


@pytest.fixture(scope="module")
def vgg_top():
    return VGG16(include_top=True, weights=None, input_shape=(SIDE, SIDE, 3), classes=1000)


def assert_unchanged(model, before):
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- VGG19 into VGG16 -----------------------------------------------------------------------
def test_vgg19_file_into_vgg16_names_the_extra_layers(vgg_notop, tmp_path):
    path = write_published(
        tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", conv_layers(ARCH19)
    )
    before = vgg_notop.get_weights()
    with pytest.raises(WeightFileError) as info:
        load_weights(vgg_notop, path)
    message = str(info.value)
    for part in (
        str(path),
        "has 13 layers with weights",
        "holds 16",
        "Only in the file: block3_conv4, block4_conv4, block5_conv4",
        "only in the model: none",
    ):
        assert part in message, part
    assert_unchanged(vgg_notop, before)


def test_vgg19_keras3_file_into_vgg16_names_layer_group_and_both_shapes(vgg_notop, tmp_path):
    path = write_keras3(tmp_path / "vgg19.weights.h5", conv_layers(ARCH19))
    before = vgg_notop.get_weights()
    with pytest.raises(WeightFileError) as info:
        load_weights(vgg_notop, path)
    message = str(info.value)
    # The 8th conv of VGG16 is block4_conv1 (256 -> 512); VGG19's is block3_conv4 (256 -> 256).
    for part in (
        "layer 'block4_conv1'",
        "'layers/conv2d_7' (block3_conv4)",
        "(3, 3, 256, 512)",
        "(3, 3, 256, 256)",
        "nothing was loaded",
    ):
        assert part in message, part
    assert_unchanged(vgg_notop, before)


# -- with top / without top ---------------------------------------------------------------------
def test_top_file_into_notop_model_by_order_names_the_top_layers(vgg_notop, tmp_path):
    path = write_published(
        tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5", conv_layers(ARCH) + top_layers()
    )
    with pytest.raises(
        WeightFileError,
        match=r"has 13 .* holds 16 .*Only in the file: fc1, fc2, "
        r"predictions.*by_name=True",
    ):
        load_weights(vgg_notop, path)


def test_top_file_into_notop_model_by_name_loads_the_convolutions_like_keras(tmp_path):
    model = VGG16(include_top=False, weights=None, input_shape=(SIDE, SIDE, 3))
    path = write_published(tmp_path / "top.h5", conv_layers(ARCH) + top_layers())
    load_weights(model, path, by_name=True)
    for k, (name, _) in enumerate(conv_layers(ARCH)):
        layer = model.get_layer(name)
        assert np.all(layer.params["kernel"] == np.float32(fill_value(k, 0))), name
        assert np.all(layer.params["bias"] == np.float32(fill_value(k, 1))), name


def test_notop_file_into_top_model_names_the_missing_top(vgg_top, tmp_path):
    legacy = write_published(tmp_path / "notop.h5", conv_layers(ARCH))
    with pytest.raises(
        WeightFileError,
        match=r"has 16 .* holds 13 .*Only in the file: none; only "
        r"in the model: fc1, fc2, predictions",
    ):
        load_weights(vgg_top, legacy)
    keras3 = write_keras3(tmp_path / "notop.weights.h5", conv_layers(ARCH))
    with pytest.raises(WeightFileError, match=r"layer 'fc1' has 2 weight\(s\).*no group 'layers/dense'"):
        load_weights(vgg_top, keras3)


def test_top_keras3_file_into_notop_model_loads_the_base_and_warns(tmp_path):
    model = VGG16(include_top=False, weights=None, input_shape=(SIDE, SIDE, 3))
    path = write_keras3(tmp_path / "top.weights.h5", conv_layers(ARCH) + top_layers())
    with pytest.warns(UserWarning, match=r"no layer for; they were ignored: 'layers/dense' \(fc1\)"):
        load_weights(model, path)
    assert np.all(model.get_layer("block5_conv3").params["bias"] == np.float32(fill_value(12, 1)))


def test_top_file_for_224_into_a_32x32_top_model_names_fc1(vgg_top, tmp_path):
    path = write_keras3(tmp_path / "top224.weights.h5", conv_layers(ARCH) + top_layers(224))
    with pytest.raises(WeightFileError, match=r"'fc1/kernel'.*\(512, 4096\).*\(25088, 4096\)"):
        load_weights(vgg_top, path)


def test_different_head_names_predictions_and_skip_mismatch_loads_the_rest(vgg_top, tmp_path):
    path = write_keras3(tmp_path / "ten_classes.weights.h5", conv_layers(ARCH) + top_layers(SIDE, classes=10))
    before = vgg_top.get_weights()
    with pytest.raises(WeightFileError, match=r"predictions/kernel.*\(4096, 1000\).*\(4096, 10\)"):
        load_weights(vgg_top, path)
    assert_unchanged(vgg_top, before)
    with pytest.warns(UserWarning, match="Skipping weights.*predictions"):
        load_weights(vgg_top, path, skip_mismatch=True)
    assert np.all(vgg_top.get_layer("fc2").params["bias"] == np.float32(fill_value(14, 1)))
    np.testing.assert_array_equal(vgg_top.get_layer("predictions").params["kernel"], before[-2])


# -- dtypes ---------------------------------------------------------------------------------
def tiny_weights_file(path, dtype):
    model = small_model(compile=False)
    save_weights(model, path)
    kernel = np.arange(3 * 3 * 3 * 4).reshape(3, 3, 3, 4) % 7 - 3
    with h5py.File(path, "a") as f:
        del f["layers/conv2d/vars/0"]
        f["layers/conv2d/vars"].create_dataset("0", data=kernel.astype(dtype))
    return model, kernel


@pytest.mark.parametrize("dtype", ["float16", "int32", ">f4", "float64", "bool"])
def test_numeric_dtypes_are_cast_to_float32_like_keras(dtype, tmp_path):
    model, kernel = tiny_weights_file(tmp_path / "w.weights.h5", dtype)
    load_weights(model, tmp_path / "w.weights.h5")
    loaded = model.layers[0].params["kernel"]
    assert loaded.dtype == np.float32 and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, kernel.astype(dtype).astype(np.float32))


@pytest.mark.parametrize(
    "dtype, shown", [("complex64", "complex64"), ("S4", "|S4"), (np.dtype([("a", "f4"), ("b", "f4")]), "a")]
)
def test_non_numeric_datasets_are_refused_by_name(dtype, shown, tmp_path):
    path = tmp_path / "w.weights.h5"
    model = small_model(compile=False)
    save_weights(model, path)
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/1"]
        f["layers/dense/vars"].create_dataset("1", shape=(1,), dtype=dtype)
    before = model.get_weights()
    with pytest.raises(WeightFileError, match=r"/layers/dense/vars/1.*not numbers") as info:
        load_weights(model, path)
    assert shown in str(info.value) and str(path) in str(info.value)
    assert_unchanged(model, before)


# -- training-state files ---------------------------------------------------------------------------
def trained(n_steps=3, **kwargs):
    model = small_model(**kwargs)
    x, y = small_data(8)
    for _ in range(n_steps):
        model.train_on_batch(x, y)
    return model


def generator_states(model):
    return [nv_random.get_state()] + [
        g.bit_generator.state for _, g in training_state.layer_generators(model)
    ]


def test_round_trip_restores_weights_optimizer_and_generators(tmp_path):
    source = trained()
    path = tmp_path / "run.state.h5"
    source.save_training_state(path)
    expected_rng = generator_states(source)
    nv_random.generator().random(5)  # move the shared generator on
    target = small_model(dropout_seed=99)
    assert target.load_training_state(path) == 0
    assert_same_state(source, target)
    assert target.optimizer.iterations == 3
    assert generator_states(target) == expected_rng


def test_a_training_state_file_is_also_a_keras3_weights_file(tmp_path):
    source = trained()
    source.save_training_state(tmp_path / "run.state.h5")
    target = small_model(compile=False)
    load_weights(target, tmp_path / "run.state.h5")
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_loads_weights_and_adam_state_from_a_training_state_file(keras, tmp_path):
    source = trained()
    source.save_training_state(tmp_path / "run.weights.h5")  # Keras wants this suffix
    reference = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    reference.compile(optimizer="adam", loss="binary_crossentropy")
    reference.optimizer.build(reference.trainable_variables)
    reference.load_weights(tmp_path / "run.weights.h5")
    for a, b in zip(source.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    ours = list(source.optimizer.get_state().values())
    theirs = [v.numpy() for v in reference.optimizer.variables]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def assert_nothing_changed(model, before, rng_before):
    assert_same_state(before, model)
    assert generator_states(model) == rng_before


def load_fails(model, path, match):
    before, rng_before = snapshot(model), generator_states(model)
    with pytest.raises(TrainingStateError, match=match) as info:
        model.load_training_state(path)
    assert str(path) in str(info.value)
    assert_nothing_changed(model, before, rng_before)
    return info.value


def test_a_weights_file_is_not_a_training_state(tmp_path):
    save_weights(small_model(compile=False), tmp_path / "w.weights.h5")
    load_fails(
        trained(),
        tmp_path / "w.weights.h5",
        r"is a Keras weights file, not a numvgg training state.*model\.load_weights\(path\)",
    )


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "not found"),
        (b"not hdf5 at all\n" * 50, "not an HDF5 file"),
    ],
)
def test_missing_and_non_hdf5_state_files(content, match, tmp_path):
    path = tmp_path / "run.state.h5"
    if content is not None:
        path.write_bytes(content)
    error = load_fails(trained(), path, match)
    assert isinstance(error.__cause__, WeightFileError) and isinstance(error.__cause__.__cause__, OSError)


def test_truncated_state_file(tmp_path):
    path = tmp_path / "run.state.h5"
    trained().save_training_state(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    load_fails(trained(), path, "truncated")


def test_uncompiled_model_is_told_to_compile(tmp_path):
    trained().save_training_state(tmp_path / "run.state.h5")
    model = small_model(compile=False)
    before = model.get_weights()
    with pytest.raises(TrainingStateError, match=r"Adam optimizer but model '.*' is not compiled"):
        model.load_training_state(tmp_path / "run.state.h5")
    assert_unchanged(model, before)


def test_another_optimizer_class(tmp_path):
    trained().save_training_state(tmp_path / "run.state.h5")
    load_fails(
        trained(optimizer="sgd"),
        tmp_path / "run.state.h5",
        "holds the state of a Adam optimizer but .* compiled with SGD",
    )


def test_other_layers_frozen_than_when_saved(tmp_path):
    trained().save_training_state(tmp_path / "run.state.h5")
    model = small_model(compile=False)
    model.layers[0].trainable = False
    model.compile(optimizer="adam", loss="binary_crossentropy")
    load_fails(
        model,
        tmp_path / "run.state.h5",
        r"slots for 4 trained weight array\(s\), the model trains 2.*trainable=False",
    )


def test_optimizer_slot_shape_mismatch_names_the_weight(tmp_path):
    from numvgg.layers import Conv2D, Dense, GlobalAveragePooling2D
    from numvgg.models import Sequential

    def model(filters):
        m = Sequential(
            [
                Conv2D(filters, (3, 3), input_shape=(16, 16, 3)),
                GlobalAveragePooling2D(),
                Dense(1, activation="sigmoid", name="head"),
            ]
        )
        m.compile(optimizer="adam", loss="binary_crossentropy")
        m.train_on_batch(*small_data(4))
        return m

    model(4).save_training_state(tmp_path / "run.state.h5")
    load_fails(
        model(5),
        tmp_path / "run.state.h5",
        r"'momentum/0' \(for weight 'conv2d.*/kernel'\).*\(3, 3, 3, 5\).*\(3, 3, 3, 4\)",
    )


def test_weight_mismatch_after_the_optimizer_fits_changes_nothing(tmp_path):
    """The optimizer and generator parts fit, a weight does not: nothing is assigned."""
    source = trained()
    source.save_training_state(tmp_path / "run.state.h5")
    with h5py.File(tmp_path / "run.state.h5", "a") as f:
        del f["layers/dense/vars/1"]
        f["layers/dense/vars"].create_dataset("1", data=np.zeros(2, np.float32))
    load_fails(trained(), tmp_path / "run.state.h5", r"dense.*/bias.*\(1,\).*\(2,\)")


def test_different_number_of_dropout_layers(tmp_path):
    from numvgg.layers import Conv2D, Dense, GlobalAveragePooling2D
    from numvgg.models import Sequential

    trained().save_training_state(tmp_path / "run.state.h5")
    model = Sequential(
        [
            Conv2D(4, (3, 3), activation="relu", input_shape=(16, 16, 3)),
            GlobalAveragePooling2D(),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    load_fails(
        model,
        tmp_path / "run.state.h5",
        r"generator states for 1 layer\(s\).*has 0 layer\(s\) that draw random numbers",
    )


@pytest.mark.parametrize(
    "attr, value, match",
    [
        ("shuffle_rng", "{not json", "'numvgg_training_state/shuffle_rng' is not valid JSON"),
        ("shuffle_rng", '{"bit_generator": "PCG64", "state": 3}', "random-generator state does not fit"),
        ("layer_rngs", '[["dropout", 5]]', "not a list of \\[name, state\\] pairs"),
        ("epoch", -3, "'numvgg_training_state/epoch' should be a non-negative integer"),
        ("format_version", 7, "format version 7; this numvgg reads version 1"),
        ("optimizer_keys", '["iterations"]', "not all there|does not fit"),
    ],
)
def test_damaged_attributes(attr, value, match, tmp_path):
    path = tmp_path / "run.state.h5"
    trained().save_training_state(path)
    with h5py.File(path, "a") as f:
        f["numvgg_training_state"].attrs[attr] = value
    load_fails(trained(), path, match)


def test_missing_optimizer_arrays(tmp_path):
    path = tmp_path / "run.state.h5"
    trained().save_training_state(path)
    with h5py.File(path, "a") as f:
        del f["optimizer/vars/5"]
    load_fails(trained(), path, r"damaged: the optimizer's 10 arrays are not all there")


def test_failed_save_keeps_the_previous_state_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "run.state.h5"
    first = trained(n_steps=1)
    first.save_training_state(path)
    good = path.read_bytes()

    def broken(f, model):
        f.create_group("layers")
        raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr(training_state.weights_io, "_write_keras3", broken)
    with pytest.raises(TrainingStateError, match="No space left") as info:
        trained(n_steps=2).save_training_state(path)
    assert isinstance(info.value.__cause__, OSError)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.state.h5"]


def test_save_into_a_missing_folder(tmp_path):
    with pytest.raises(TrainingStateError, match="folder .* does not exist"):
        trained(n_steps=0).save_training_state(tmp_path / "nowhere" / "run.state.h5")
