"""preprocess_input and decode_predictions against keras.applications."""

from __future__ import annotations

import json

import numpy as np
import pytest

from numvgg.applications import imagenet_utils
from numvgg.applications.imagenet_utils import ClassIndexError, decode_predictions, preprocess_input
from numvgg.errors import ShapeError


# ---------------------------------------------------------------------------- preprocess_input
@pytest.mark.parametrize("shape", [(5, 7, 3), (2, 5, 7, 3)])
@pytest.mark.parametrize("dtype", ["float32", "uint8", "int64", "float64"])
def test_vgg16_preprocess_matches_keras(keras, rng, shape, dtype):
    x = rng.integers(0, 256, shape).astype(dtype)
    mine, keras_input = x.copy(), x.copy()
    theirs = keras.applications.vgg16.preprocess_input(keras_input)  # Keras writes into float input
    ours = preprocess_input(mine)
    assert ours.dtype == np.asarray(theirs).dtype and ours.shape == shape
    np.testing.assert_array_equal(ours, np.asarray(theirs))
    np.testing.assert_array_equal(mine, keras_input)  # the caller's array: as Keras leaves it


def test_caffe_is_bgr_minus_the_imagenet_mean():
    pixel = np.array([[[10.0, 20.0, 30.0]]], dtype=np.float32)  # R, G, B
    out = preprocess_input(pixel)
    np.testing.assert_allclose(out[0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
@pytest.mark.parametrize(
    "data_format, shape",
    [
        ("channels_last", (2, 4, 5, 3)),
        ("channels_first", (2, 3, 4, 5)),
        ("channels_first", (3, 4, 5)),
        ("channels_last", (4, 5, 3)),
    ],
)
def test_all_modes_and_layouts_match_keras(keras, rng, mode, data_format, shape):
    from keras.src.applications.imagenet_utils import preprocess_input as keras_preprocess

    x = rng.uniform(0, 255, shape).astype(np.float32)
    theirs = keras_preprocess(x.copy(), data_format=data_format, mode=mode)
    ours = preprocess_input(x, data_format=data_format, mode=mode)
    np.testing.assert_array_equal(ours, theirs)


def test_float_input_is_changed_in_place_as_keras_does(keras, rng):
    """A script that ignores the return value sees what it would see in Keras;
    integer and read-only input is left alone (a new array comes back)."""
    x = rng.uniform(0, 255, (1, 4, 4, 3)).astype(np.float32)
    ours, theirs = x.copy(), x.copy()
    out = preprocess_input(ours)
    keras.applications.vgg16.preprocess_input(theirs)
    np.testing.assert_array_equal(ours, theirs)
    assert np.shares_memory(out, ours)  # the channel-reversed view, as Keras
    pixels = rng.integers(0, 256, (1, 4, 4, 3)).astype(np.uint8)
    frozen = x.copy()
    frozen.flags.writeable = False
    for untouched in (pixels, frozen):
        before = untouched.copy()
        assert not np.shares_memory(preprocess_input(untouched), untouched)
        np.testing.assert_array_equal(untouched, before)


def test_preprocess_input_accepts_lists():
    np.testing.assert_array_equal(
        preprocess_input([[[0, 0, 0]]]), -np.array([[[103.939, 116.779, 123.68]]], dtype=np.float32)
    )


def test_preprocess_input_errors():
    with pytest.raises(ShapeError, match=r"\(5, 5\)"):
        preprocess_input(np.zeros((5, 5)))
    with pytest.raises(ShapeError, match="3 colour channels.*\\(2, 5, 5, 1\\)"):
        preprocess_input(np.zeros((2, 5, 5, 1)))
    with pytest.raises(ShapeError, match="channels_first"):
        preprocess_input(np.zeros((2, 5, 5, 3)), data_format="channels_first")
    with pytest.raises(ValueError, match="mode"):
        preprocess_input(np.zeros((5, 5, 3)), mode="pytorch")
    with pytest.raises(ValueError, match="data_format=<ndarray>"):
        preprocess_input(np.zeros((5, 5, 3)), np.zeros(3))


# ---------------------------------------------------------------------------- decode_predictions
@pytest.fixture
def fake_class_index(tmp_path, monkeypatch):
    """A class-index file in Keras' format, served instead of the real one."""
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    path = tmp_path / "imagenet_class_index.json"
    path.write_text(json.dumps(index))
    monkeypatch.setattr(imagenet_utils, "class_index_path", lambda: str(path))
    return index


def test_decode_predictions_matches_keras(keras, rng, fake_class_index, monkeypatch):
    import keras.src.applications.imagenet_utils as keras_utils

    monkeypatch.setattr(keras_utils, "CLASS_INDEX", fake_class_index)  # no download for Keras
    preds = rng.random((3, 1000)).astype(np.float32)
    preds[1, [10, 20, 30]] = 2.0  # ties
    for top in (1, 5, 7):
        ours = decode_predictions(preds, top=top)
        theirs = keras.applications.vgg16.decode_predictions(preds, top=top)
        assert ours == theirs
        assert all(len(sample) == top for sample in ours)


def test_decode_predictions_gives_names_sorted_by_score(fake_class_index):
    preds = np.zeros((2, 1000), dtype=np.float32)
    preds[0, [3, 999, 500]] = [0.2, 0.7, 0.1]
    preds[1, 42] = 1.0
    first, second = decode_predictions(preds, top=3)
    assert [(w, n) for w, n, _ in first] == [
        ("n00000999", "class_999"),
        ("n00000003", "class_3"),
        ("n00000500", "class_500"),
    ]
    np.testing.assert_allclose([s for _, _, s in first], [0.7, 0.2, 0.1], rtol=1e-6)
    assert second[0][:2] == ("n00000042", "class_42")


@pytest.mark.parametrize("shape", [(1000,), (2, 10), (1, 1000, 1)])
def test_decode_predictions_shape_error_like_keras(shape):
    with pytest.raises(
        ShapeError, match=r"\(samples, 1000\).*" + str(shape).replace("(", r"\(").replace(")", r"\)")
    ):
        decode_predictions(np.zeros(shape))


def test_decode_predictions_bad_top(fake_class_index):
    with pytest.raises(ValueError, match="top must be at least 1"):
        decode_predictions(np.zeros((1, 1000)), top=0)


@pytest.mark.parametrize(
    "content, message", [("{not json", "Cannot read"), (json.dumps({"0": ["n1", "a"]}), "expected keys")]
)
def test_damaged_class_index_names_the_file(tmp_path, monkeypatch, content, message):
    path = tmp_path / "imagenet_class_index.json"
    path.write_text(content)
    monkeypatch.setattr(imagenet_utils, "class_index_path", lambda: str(path))
    monkeypatch.setattr(imagenet_utils, "_CLASS_INDEX_CACHE", {})
    with pytest.raises(ClassIndexError, match=message) as info:
        decode_predictions(np.zeros((1, 1000)))
    assert str(path) in str(info.value)


# ------------------------------------------------------------------ the class names numvgg ships
def test_shipped_class_index_is_keras_file():
    """Byte for byte the file Keras downloads: the md5 Keras checks, 1000 sorted WordNet ids."""
    import hashlib

    from numvgg.io import download

    with open(imagenet_utils.BUNDLED_CLASS_INDEX, "rb") as f:
        assert hashlib.md5(f.read()).hexdigest() == download.IMAGENET_CLASS_INDEX.md5
    index = imagenet_utils.load_class_index(imagenet_utils.BUNDLED_CLASS_INDEX)
    wnids = [index[str(i)][0] for i in range(1000)]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert index["0"] == ["n01440764", "tench"] and index["159"][1] == "Rhodesian_ridgeback"


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty KERAS_HOME for numvgg, and an empty home so ~/.keras is not found either."""
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    import numvgg.io.download as download

    monkeypatch.setattr(download, "_tmp_keras_home", lambda: str(tmp_path / "tmp_keras"))
    monkeypatch.setattr(download, "CHECKOUT_WEIGHTS_DIR", str(tmp_path / "no_weights"))
    return home


def test_class_names_offline_come_from_the_package(keras_home):
    assert imagenet_utils.class_index_path() == imagenet_utils.BUNDLED_CLASS_INDEX
    assert imagenet_utils.imagenet_class_name(281) == "tabby"
    with pytest.raises(ValueError, match="0..999; got 1000"):
        imagenet_utils.imagenet_class_name(1000)


def test_keras_cached_copy_is_preferred_and_a_damaged_one_ignored(keras_home):
    import shutil

    cached = keras_home / "models" / "imagenet_class_index.json"
    shutil.copyfile(imagenet_utils.BUNDLED_CLASS_INDEX, cached)
    assert imagenet_utils.class_index_path() == str(cached)
    cached.write_text(cached.read_text().replace("tench", "tinca"))  # md5 no longer Keras'
    with pytest.warns(UserWarning, match="md5"):
        assert imagenet_utils.class_index_path() == imagenet_utils.BUNDLED_CLASS_INDEX


@pytest.mark.keras
def test_decode_predictions_with_real_names_equals_keras(keras, keras_home, rng, monkeypatch):
    """The shipped names against Keras' own decode_predictions: Keras reads the same file from
    its cache (put there for it), so nothing is downloaded."""
    import shutil

    import keras.src.applications.imagenet_utils as keras_utils
    import keras.src.backend.config as keras_config
    import keras.src.utils.file_utils as keras_files

    shutil.copyfile(imagenet_utils.BUNDLED_CLASS_INDEX, keras_home / "models" / "imagenet_class_index.json")
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(keras_home))  # read at import time
    monkeypatch.setattr(keras_utils, "CLASS_INDEX", None)

    def no_download(*args, **kwargs):
        raise AssertionError(f"Keras tried to download {args[0]}")

    monkeypatch.setattr(keras_files, "urlretrieve", no_download)
    preds = rng.random((4, 1000)).astype(np.float32)
    preds[2, [134, 517, 638]] = 3.0  # ties, incl. both 'crane's
    for top in (1, 5, 10):
        theirs = keras.applications.vgg16.decode_predictions(preds, top=top)
        assert decode_predictions(preds, top=top) == theirs
    assert keras_utils.CLASS_INDEX == imagenet_utils.load_class_index(imagenet_utils.BUNDLED_CLASS_INDEX)
