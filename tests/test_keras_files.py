"""Keras 3 ``.keras`` files, both ways: numvgg writes what Keras loads, and loads what Keras writes.

Each architecture is built by the same code in both libraries (``lib`` is
``numvgg`` or ``keras``), so a test can save with one and load with the other
and compare predictions, layer names, trainable flags and weights.
"""

import json
import os
import zipfile

import numpy as np
import pytest

import numvgg
from numvgg import layers as nl
from numvgg.applications.vgg16 import VGG16 as NumvggVGG16
from numvgg.callbacks import ModelCheckpoint
from numvgg.models import Model, Sequential, load_model
from numvgg.saving import KerasFileError

SHAPE = (32, 32, 3)


class _Lib:
    """``keras`` or numvgg, behind the same names."""

    def __init__(self, keras=None):
        if keras is None:
            self.layers, self.Model, self.Sequential = nl, Model, Sequential
            self.VGG16 = NumvggVGG16
        else:
            self.layers, self.Model, self.Sequential = keras.layers, keras.Model, keras.Sequential
            self.VGG16 = keras.applications.VGG16


def recipe_model(lib):
    """The original blog post's recipe: Sequential nesting a frozen VGG16 base, with a head."""
    base = lib.VGG16(weights=None, include_top=False, input_shape=SHAPE)
    base.trainable = False
    return lib.Sequential(
        [
            base,
            lib.layers.GlobalAveragePooling2D(),
            lib.layers.Dense(8, activation="relu"),
            lib.layers.Dense(1, activation="sigmoid"),
        ]
    )


def transfer_model(lib):
    """Functional: Input -> VGG16 base -> GAP -> Dropout -> Dense."""
    base = lib.VGG16(weights=None, include_top=False, input_shape=SHAPE)
    for layer in base.layers[:-4]:
        layer.trainable = False
    inputs = lib.layers.Input(SHAPE)
    x = base(inputs)
    x = lib.layers.GlobalAveragePooling2D()(x)
    x = lib.layers.Dropout(0.5)(x)
    return lib.Model(inputs, lib.layers.Dense(1, activation="sigmoid")(x), name="transfer")


def branches_model(lib):
    """Two branches merged by Concatenate, plus a layer of each other kind numvgg has."""
    L = lib.layers
    inputs = L.Input((8, 8, 3))
    x = L.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    a = L.Conv2D(4, 3, padding="same", activation="relu")(x)
    a = L.MaxPooling2D()(a)
    b = L.Conv2D(4, 1, strides=2, use_bias=False)(x)
    b = L.BatchNormalization()(b)
    b = L.Activation("relu")(b)
    s = L.Add()([a, b])
    m = L.Multiply()([a, b])
    v = L.Average()([a, b])
    x = L.Concatenate()([s, m, v])
    g = L.GlobalMaxPooling2D()(x)
    f = L.Dense(3)(L.Flatten()(x))
    x = L.Concatenate(axis=-1)([g, f])
    return lib.Model(inputs, L.Dense(2, activation="softmax")(x), name="branches")


BUILDERS = {
    "recipe": (recipe_model, SHAPE),
    "transfer": (transfer_model, SHAPE),
    "branches": (branches_model, (8, 8, 3)),
}


def _images(shape, n=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, *shape)).astype("float32")


def _randomize(model, seed=1):
    """Give every weight (BatchNormalization's statistics too) a non-trivial value."""
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            rng.uniform(0.5, 1.5, w.shape).astype("float32")
            if w.ndim == 1
            else w * rng.uniform(0.5, 1.5, w.shape).astype("float32")
            for w in model.get_weights()
        ]
    )


def _layer_flags(model):
    """(name, trainable) of every layer, nested models as sub-lists. Input layers
    are left out: Keras' config does not record their flag (they hold no weights)."""
    out = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        out.append((layer.name, bool(layer.trainable)))
        if hasattr(layer, "layers"):
            out.append(_layer_flags(layer))
    return out


def _assert_same_predictions(ours, theirs, x):
    a = ours.predict(x, verbose=0)
    b = np.asarray(theirs.predict(x, verbose=0))
    assert a.shape == b.shape
    scale = max(float(np.abs(b).max()), 1e-12)
    assert float(np.abs(a - b).max()) / scale <= 1e-5


# -- numvgg -> Keras -----------------------------------------------------------------
@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_numvgg_file_loads_in_keras_and_predicts_the_same(keras, tmp_path, kind):
    build, shape = BUILDERS[kind]
    ours = build(_Lib())
    _randomize(ours)
    path = str(tmp_path / "m.keras")
    ours.save(path)
    theirs = keras.models.load_model(path)
    assert _layer_flags(theirs) == _layer_flags(ours)
    assert len(theirs.get_weights()) == len(ours.get_weights())
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    _assert_same_predictions(ours, theirs, _images(shape))


# -- Keras -> numvgg -----------------------------------------------------------------
@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_keras_file_loads_in_numvgg_and_predicts_the_same(keras, tmp_path, kind):
    build, shape = BUILDERS[kind]
    theirs = build(_Lib(keras))
    theirs.set_weights(
        [w * np.float32(1.3) + np.float32(0.1) if w.ndim == 1 else w for w in theirs.get_weights()]
    )
    path = str(tmp_path / "k.keras")
    theirs.save(path)
    ours = load_model(path)
    assert type(ours).__name__ == type(theirs).__name__
    assert _layer_flags(ours) == _layer_flags(theirs)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    _assert_same_predictions(ours, theirs, _images(shape))


# -- compile config ------------------------------------------------------------------
def _small_model():
    inputs = nl.Input((4,))
    return Model(inputs, nl.Dense(1, activation="sigmoid")(nl.Dense(3, activation="relu")(inputs)))


def test_round_trip_keeps_compile_config_and_predictions(tmp_path):
    model = _small_model()
    model.compile(
        optimizer=numvgg.optimizers.Adam(learning_rate=3e-4), loss="binary_crossentropy", metrics=["accuracy"]
    )
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded.optimizer).__name__ == "Adam"
    assert loaded.optimizer.get_config()["learning_rate"] == pytest.approx(3e-4)
    assert type(loaded.loss).__name__ == "BinaryCrossentropy"
    assert loaded._metric_specs == ["accuracy"]
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert not getattr(load_model(path, compile=False), "compiled", False)
    # The numvgg alias of Keras' keras.saving.load_model reads it too.
    assert numvgg.saving.load_model(path).count_params() == model.count_params()


@pytest.mark.keras
def test_compile_config_both_ways_with_keras(keras, tmp_path):
    ours = _small_model()
    ours.compile(
        optimizer=numvgg.optimizers.RMSprop(learning_rate=2e-5),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    ours.save(tmp_path / "ours.keras")
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        theirs = keras.models.load_model(tmp_path / "ours.keras")  # no optimizer slots stored
    assert type(theirs.optimizer).__name__ == "RMSprop"
    assert float(theirs.optimizer.learning_rate) == pytest.approx(2e-5)
    assert type(theirs.loss).__name__ == "BinaryCrossentropy"

    k_in = keras.Input((4,))
    k_model = keras.Model(k_in, keras.layers.Dense(1, activation="sigmoid")(k_in))
    k_model.compile(optimizer=keras.optimizers.SGD(0.03, momentum=0.9), loss="mse", metrics=["mae"])
    k_model.save(tmp_path / "theirs.keras")
    ours = load_model(tmp_path / "theirs.keras", compile=False)
    assert not getattr(ours, "compiled", False)
    k_model.compile(optimizer=keras.optimizers.SGD(0.03, momentum=0.9), loss="mse", metrics=["accuracy"])
    k_model.save(tmp_path / "theirs.keras")
    ours = load_model(tmp_path / "theirs.keras")
    assert type(ours.optimizer).__name__ == "SGD"
    assert ours.optimizer.get_config()["momentum"] == pytest.approx(0.9)
    assert type(ours.loss).__name__ == "MeanSquaredError"


# -- errors, atomic saves ------------------------------------------------------------
def _rewrite(path, member, edit):
    """Copy the zip at ``path`` with ``member`` changed by ``edit(bytes) -> bytes | None``
    (None drops it)."""
    with zipfile.ZipFile(path) as z:
        items = {name: z.read(name) for name in z.namelist()}
    new = edit(items[member])
    if new is None:
        del items[member]
    else:
        items[member] = new
    with zipfile.ZipFile(path, "w") as z:
        for name, data in items.items():
            z.writestr(name, data)


def _edit_layer(path, layer_name, change):
    def edit(data):
        config = json.loads(data)
        for entry in config["config"]["layers"]:
            if entry["config"].get("name") == layer_name:
                change(entry)
        return json.dumps(config).encode()

    _rewrite(path, "config.json", edit)


def test_unknown_layer_class_names_the_class_and_the_layer(tmp_path):
    path = tmp_path / "m.keras"
    model = _small_model()
    model.save(path)
    name = model.layers[1].name
    _edit_layer(path, name, lambda e: e.update(class_name="LayerNormalization"))
    with pytest.raises(KerasFileError, match=f"'{name}' is a LayerNormalization"):
        load_model(path)


def _options_model():
    inputs = nl.Input((6, 6, 3))
    x = nl.Conv2D(2, 3, name="conv")(inputs)
    x = nl.GlobalAveragePooling2D(name="gap")(x)
    x = nl.Dropout(0.5, name="drop")(x)
    return Model(inputs, nl.Dense(1, name="dense")(x))


@pytest.mark.parametrize(
    "layer, option, value",
    [
        ("dense", "kernel_regularizer", {"class_name": "L2", "config": {"l2": 0.01}}),
        ("conv", "data_format", "channels_first"),
        ("conv", "groups", 2),
        ("conv", "dilation_rate", [2, 2]),
        ("gap", "keepdims", True),
        ("drop", "noise_shape", [None, 1]),
    ],
)
def test_an_option_numvgg_lacks_is_an_error_naming_it(tmp_path, layer, option, value):
    path = tmp_path / "m.keras"
    _options_model().save(path)
    _edit_layer(path, layer, lambda e: e["config"].update({option: value}))
    with pytest.raises(KerasFileError, match=f"'{layer}' \\(\\w+\\): {option}=.* is not supported"):
        load_model(path)


def test_an_optimizer_option_numvgg_lacks_is_refused(tmp_path):
    path = tmp_path / "m.keras"
    model = _small_model()
    model.compile(optimizer="adam", loss="mse")
    model.save(path)

    def use_ema(data):
        config = json.loads(data)
        config["compile_config"]["optimizer"]["config"]["use_ema"] = True
        return json.dumps(config).encode()

    _rewrite(path, "config.json", use_ema)
    with pytest.raises(KerasFileError, match="use_ema=True is not supported"):
        load_model(path)
    assert load_model(path, compile=False).count_params() == model.count_params()


def test_custom_objects_are_refused(tmp_path):
    _small_model().save(tmp_path / "m.keras")
    with pytest.raises(KerasFileError, match="custom_objects"):
        load_model(tmp_path / "m.keras", custom_objects={"MyLayer": object})


def test_a_layer_called_twice_runs_forward_and_backward():
    inputs = nl.Input((3,))
    shared = nl.Dense(3, name="shared")
    model = Model(inputs, nl.Add()([shared(inputs), shared(inputs)]))
    x = np.arange(6, dtype="float32").reshape(2, 3)
    out = model(x)
    np.testing.assert_allclose(out, 2 * shared(x), rtol=1e-6)
    model(x)
    dout = np.ones_like(out)
    dx = model.backward(dout)
    np.testing.assert_allclose(dx, 2 * dout @ shared.params["kernel"].T, rtol=1e-6)
    np.testing.assert_allclose(shared.grads[0], 2 * x.T @ dout, rtol=1e-6)  # summed over the calls


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "not a readable .keras file"),
        ("not_zip", "not a readable .keras file"),
        ("no_weights", "has no model.weights.h5"),
        ("no_config", "has no config.json"),
        ("bad_json", "config.json is not valid JSON"),
    ],
)
def test_damaged_files_give_clear_errors(tmp_path, damage, message):
    path = tmp_path / "m.keras"
    _small_model().save(path)
    if damage == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "not_zip":
        path.write_bytes(b"hello")
    elif damage == "no_weights":
        _rewrite(path, "model.weights.h5", lambda d: None)
    elif damage == "no_config":
        _rewrite(path, "config.json", lambda d: None)
    else:
        _rewrite(path, "config.json", lambda d: d[:-3])
    with pytest.raises(KerasFileError, match=message):
        load_model(path)


def test_weights_that_do_not_fit_name_the_file(tmp_path):
    path = tmp_path / "m.keras"
    model = _small_model()
    model.save(path)
    _edit_layer(path, model.layers[1].name, lambda e: e["config"].update(units=5))
    with pytest.raises(KerasFileError, match="m.keras/model.weights.h5"):
        load_model(path)


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    good = _small_model()
    good.save(path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", broken)
    with pytest.raises(KerasFileError, match="No space left"):
        _small_model().save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.keras"]


def test_save_refuses_other_names_and_overwrite_false(tmp_path):
    model = _small_model()
    with pytest.raises(KerasFileError, match="must end in '.keras'"):
        model.save(tmp_path / "m.h5")
    model.save(tmp_path / "m.keras")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.keras", overwrite=False)


# -- ModelCheckpoint -----------------------------------------------------------------
def test_model_checkpoint_keras_name_writes_a_keras_file(tmp_path):
    model = _small_model()
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[
            ModelCheckpoint(str(tmp_path / "e{epoch}.keras")),
            ModelCheckpoint(str(tmp_path / "e{epoch}.state.h5")),
        ],
    )
    assert sorted(os.listdir(tmp_path)) == ["e1.keras", "e1.state.h5", "e2.keras", "e2.state.h5"]
    assert zipfile.is_zipfile(tmp_path / "e2.keras")
    loaded = load_model(tmp_path / "e2.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    fresh = _small_model()
    fresh.compile(optimizer="sgd", loss="binary_crossentropy")
    assert fresh.load_training_state(tmp_path / "e2.state.h5") == 2


@pytest.mark.keras
def test_model_checkpoint_keras_file_loads_in_keras(keras, tmp_path):
    model = _small_model()
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.fit(
        x,
        (x[:, :1] > 0).astype("float32"),
        epochs=1,
        verbose=0,
        callbacks=[ModelCheckpoint(str(tmp_path / "best.keras"))],
    )
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        theirs = keras.models.load_model(tmp_path / "best.keras")
    _assert_same_predictions(model, theirs, x)


def augmentation_model(lib):
    """Sequential with an Input first and every preprocessing layer numvgg has."""
    L = lib.layers
    return lib.Sequential(
        [
            L.Input((10, 10, 3)),
            L.RandomFlip("horizontal"),
            L.RandomRotation(0.1, seed=3),
            L.RandomZoom(0.2, seed=4),
            L.RandomTranslation(0.1, 0.2, seed=5),
            L.RandomContrast(0.3, seed=6),
            L.RandomBrightness(0.1, seed=7),
            L.Resizing(8, 8),
            L.CenterCrop(6, 6),
            L.Rescaling(1 / 255.0),
            L.GlobalAveragePooling2D(),
            L.Dense(2),
        ]
    )


@pytest.mark.keras
def test_preprocessing_layers_both_ways(keras, tmp_path):
    ours = augmentation_model(_Lib())
    ours.save(tmp_path / "ours.keras")
    theirs = keras.models.load_model(tmp_path / "ours.keras")
    x = _images((10, 10, 3))
    _assert_same_predictions(ours, theirs, x)
    for a, b in zip(ours.layers, theirs.layers):
        assert (type(a).__name__, a.name) == (type(b).__name__, b.name)
        if hasattr(a, "seed"):
            assert a.seed == b.get_config()["seed"]
    theirs = augmentation_model(_Lib(keras))
    theirs.save(tmp_path / "theirs.keras")
    ours = load_model(tmp_path / "theirs.keras")
    _assert_same_predictions(ours, theirs, x)
    assert ours.layers[1].get_config()["factor"] == pytest.approx((-0.1, 0.1))


@pytest.mark.keras
def test_a_keras_layer_numvgg_lacks_is_named_with_its_class(keras, tmp_path):
    inputs = keras.Input((4,))
    x = keras.layers.LayerNormalization(name="norm")(keras.layers.Dense(3)(inputs))
    keras.Model(inputs, x).save(tmp_path / "ln.keras")
    with pytest.raises(
        KerasFileError, match="Layer 'norm' is a LayerNormalization, a class numvgg does not have"
    ):
        load_model(tmp_path / "ln.keras")


@pytest.mark.keras
def test_a_keras_dilated_conv_is_refused_not_changed(keras, tmp_path):
    inputs = keras.Input((9, 9, 3))
    outputs = keras.layers.Conv2D(2, 3, dilation_rate=2, name="atrous")(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "d.keras")
    with pytest.raises(
        KerasFileError,
        match=r"'atrous' \(Conv2D\): dilation_rate=\[2, 2\] is not "
        "supported",
    ):
        load_model(tmp_path / "d.keras")


def test_subclassed_models_are_refused_with_the_reason():
    class MyModel(Model):
        def __init__(self):
            super().__init__()
            self.dense = nl.Dense(1)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(TypeError, match="Subclassing with a custom call"):
        MyModel()


@pytest.mark.keras
def test_several_inputs_outputs_a_nested_sequential_and_a_lazy_sequential(keras, tmp_path):
    a, b = nl.Input((4,), name="a"), nl.Input((4,), name="b")
    h = nl.Dense(3, activation="relu")(nl.Concatenate()([a, b]))
    inner = Sequential([nl.Dense(2), nl.Dense(2)])
    ours = Model([a, b], [nl.Dense(1, name="o1")(h), inner(h)])
    ours.save(tmp_path / "multi.keras")
    theirs = keras.models.load_model(tmp_path / "multi.keras")
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(3, 4)).astype("float32") for _ in range(2)]
    for mine, keras_out in zip(ours(x), theirs.predict(x, verbose=0)):
        np.testing.assert_allclose(mine, keras_out, rtol=1e-5, atol=1e-6)
    theirs.save(tmp_path / "multi_k.keras")
    again = load_model(tmp_path / "multi_k.keras")
    for mine, loaded in zip(ours(x), again(x)):
        np.testing.assert_array_equal(mine, loaded)

    k_seq = keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(1)])
    k_seq.build((None, 5))  # no Input: the file records the built shape
    k_seq.save(tmp_path / "lazy.keras")
    seq = load_model(tmp_path / "lazy.keras")
    _assert_same_predictions(seq, k_seq, x[0][:, :1].repeat(5, axis=1))
    with pytest.raises(KerasFileError, match="not built yet"):
        Sequential([nl.Dense(3)]).save(tmp_path / "unbuilt.keras")


# -- get_config / from_config ---------------------------------------------------------
def _every_layer():
    return [
        nl.Dense(3, activation="relu", use_bias=False),
        nl.Conv2D(2, (3, 1), strides=2, padding="same"),
        nl.MaxPooling2D(3, strides=1),
        nl.AveragePooling2D(2, padding="same"),
        nl.GlobalAveragePooling2D(),
        nl.GlobalMaxPooling2D(),
        nl.Flatten(),
        nl.Dropout(0.3, seed=2),
        nl.Activation("sigmoid"),
        nl.Concatenate(axis=1),
        nl.Add(),
        nl.Multiply(),
        nl.Average(),
        nl.BatchNormalization(momentum=0.9),
        nl.Rescaling(0.5, offset=1.0),
        nl.Resizing(5, 6),
        nl.CenterCrop(4, 4),
        nl.RandomFlip("vertical", seed=1),
        nl.RandomRotation(0.2),
        nl.RandomZoom(0.1, 0.2),
        nl.RandomTranslation(0.1, 0.3),
        nl.RandomContrast(0.4),
        nl.RandomBrightness(0.2),
        nl.InputLayer(shape=(4, 4, 3)),
    ]


@pytest.mark.parametrize("layer", _every_layer(), ids=lambda l: type(l).__name__)
def test_from_config_of_get_config_is_the_same_layer(layer):
    again = type(layer).from_config(layer.get_config())
    assert type(again) is type(layer)
    assert again.get_config() == layer.get_config()


def test_every_layer_class_can_be_rebuilt_from_a_file():
    from numvgg.saving.serialization import layer_classes

    made = {type(layer).__name__ for layer in _every_layer()}
    assert set(layer_classes()) - {"Functional", "Model", "Sequential"} == made


def _connections(config):
    """A functional config's graph with layers numbered by position (names differ
    between libraries: each counts its own auto-names)."""
    index = {entry["name"]: i for i, entry in enumerate(config["layers"])}

    def calls(node):
        arg = node["args"][0]
        tensors = arg if isinstance(arg, list) else [arg]
        return [
            (index[t["config"]["keras_history"][0]],) + tuple(t["config"]["keras_history"][1:])
            for t in tensors
        ]

    return [
        (entry["class_name"], [calls(node) for node in entry["inbound_nodes"]]) for entry in config["layers"]
    ]


@pytest.mark.keras
def test_functional_get_config_has_keras_graph_and_rebuilds(keras):
    ours, theirs = branches_model(_Lib()), branches_model(_Lib(keras))
    ours_config, theirs_config = ours.get_config(), theirs.get_config()
    assert _connections(ours_config) == _connections(theirs_config)
    again = Model.from_config(ours_config)
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in ours.layers]
    again.set_weights(ours.get_weights())
    x = _images((8, 8, 3))
    np.testing.assert_array_equal(again.predict(x, verbose=0), ours.predict(x, verbose=0))
    seq = augmentation_model(_Lib())
    assert type(Sequential.from_config(seq.get_config())) is Sequential
