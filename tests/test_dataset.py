"""image_dataset_from_directory against keras.utils.image_dataset_from_directory."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from numvgg.applications.imagenet_utils import preprocess_input
from numvgg.data import directory as directory_module
from numvgg.data.dataset import ImageSpec, image_dataset_from_directory
from numvgg.errors import DatasetError


def _save(path, pixels, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory):
    """Three classes of lossless images of different sizes, with every trap Keras handles:
    upper-case and mixed extensions, nested folders, a text file, a hidden folder,
    an image directly in the root (ignored with labels='inferred')."""
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("mixed")
    counts = {"dogs": 9, "cats": 7, "birds": 5}
    for name, n in counts.items():
        for i in range(n):
            h, w = rng.integers(12, 50, 2)
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            ext, fmt = [(".png", "PNG"), (".bmp", "BMP"), (".PNG", "PNG"), (".gif", "GIF")][i % 4]
            sub = "nested" if i % 3 == 2 else ""
            _save(str(root / name / sub / f"{name}_{i:02d}{ext}"), pixels, fmt)
        (root / name / "notes.txt").write_text("not an image")
    _save(str(root / ".ipynb_checkpoints" / "x.png"), np.zeros((5, 5, 3), np.uint8))
    _save(str(root / "loose.png"), np.zeros((5, 5, 3), np.uint8))
    return str(root)


@pytest.fixture(scope="module")
def id_dir(tmp_path_factory):
    """20 solid-colour images whose red value is their number: batches reveal the order."""
    root = tmp_path_factory.mktemp("ids")
    for i in range(20):
        cls = "a" if i < 10 else "b"
        _save(str(root / cls / f"{i:02d}.png"), np.full((6, 8, 3), i, np.uint8))
    return str(root)


def _ids(batch_x):
    return batch_x[:, 0, 0, 0].astype(int).tolist()


def _keras_arrays(ds):
    xs, ys = [], []
    for item in ds:
        if isinstance(item, tuple):
            xs.append(item[0].numpy())
            ys.append(item[1].numpy())
        else:
            xs.append(item.numpy())
    return np.concatenate(xs), (np.concatenate(ys) if ys else None)


def _our_arrays(ds):
    xs, ys = [], []
    for item in ds:
        if isinstance(item, tuple):
            xs.append(item[0])
            ys.append(item[1])
        else:
            xs.append(item)
    return np.concatenate(xs), (np.concatenate(ys) if ys else None)


# ---------------------------------------------------------------------------- which files
SPLITS = [
    dict(shuffle=False),
    dict(seed=42),
    dict(seed=1337, validation_split=0.3, subset="training"),
    dict(seed=1337, validation_split=0.3, subset="validation"),
    dict(shuffle=False, validation_split=0.25, subset="validation"),
    dict(seed=5, class_names=["dogs", "birds"]),
    dict(seed=9, label_mode=None),
    dict(seed=9, labels=None),
]


@pytest.mark.parametrize("kwargs", SPLITS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_files_classes_and_split_match_keras(keras, mixed_dir, kwargs):
    common = dict(image_size=(8, 8), batch_size=4, verbose=False)
    theirs = keras.utils.image_dataset_from_directory(mixed_dir, **common, **kwargs)
    ours = image_dataset_from_directory(mixed_dir, **common, **kwargs)
    assert ours.file_paths == theirs.file_paths
    assert ours.class_names == theirs.class_names
    assert len(ours) == len(theirs)


def test_subset_both_matches_keras(keras, mixed_dir):
    common = dict(
        image_size=(8, 8), batch_size=4, seed=11, validation_split=0.2, subset="both", verbose=False
    )
    theirs = keras.utils.image_dataset_from_directory(mixed_dir, **common)
    ours = image_dataset_from_directory(mixed_dir, **common)
    assert isinstance(ours, list) and len(ours) == 2
    for o, t in zip(ours, theirs):
        assert o.file_paths == t.file_paths
    assert not set(ours[0].file_paths) & set(ours[1].file_paths)
    assert ours[0].reshuffle_each_iteration and not ours[1].reshuffle_each_iteration  # as Keras


def test_explicit_labels_list_matches_keras(keras, mixed_dir):
    n = 23  # every allowed file under the root: loose.png and the hidden one too
    labels = [i % 3 for i in range(n)]
    common = dict(labels=labels, image_size=(8, 8), batch_size=5, shuffle=False, verbose=False)
    theirs = keras.utils.image_dataset_from_directory(mixed_dir, **common)
    ours = image_dataset_from_directory(mixed_dir, **common)
    assert ours.file_paths == theirs.file_paths
    assert ours.class_names == theirs.class_names == ["0", "1", "2"]
    np.testing.assert_array_equal(_our_arrays(ours)[1], _keras_arrays(theirs)[1])
    assert labels == [i % 3 for i in range(n)]  # the caller's list is not shuffled in place


# ---------------------------------------------------------------------------- pixels and labels
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("crop_to_aspect_ratio", [False, True])
@pytest.mark.parametrize("label_mode", ["int", "categorical"])
def test_pixels_and_labels_equal_keras(keras, mixed_dir, interpolation, crop_to_aspect_ratio, label_mode):
    common = dict(
        image_size=(20, 30),
        batch_size=6,
        shuffle=False,
        interpolation=interpolation,
        crop_to_aspect_ratio=crop_to_aspect_ratio,
        label_mode=label_mode,
        verbose=False,
    )
    kx, ky = _keras_arrays(keras.utils.image_dataset_from_directory(mixed_dir, **common))
    ox, oy = _our_arrays(image_dataset_from_directory(mixed_dir, **common))
    assert ox.dtype == np.float32 and ox.shape == (21, 20, 30, 3)
    np.testing.assert_array_equal(ox, kx.astype(np.float32))  # Keras gives uint8 for 'nearest'
    assert oy.dtype == ky.dtype
    np.testing.assert_array_equal(oy, ky)


def test_binary_labels_equal_keras(keras, mixed_dir):
    common = dict(
        image_size=(10, 10),
        batch_size=4,
        shuffle=False,
        label_mode="binary",
        class_names=["cats", "dogs"],
        verbose=False,
    )
    kx, ky = _keras_arrays(keras.utils.image_dataset_from_directory(mixed_dir, **common))
    ox, oy = _our_arrays(image_dataset_from_directory(mixed_dir, **common))
    assert oy.dtype == np.float32 and oy.shape == (16, 1)
    np.testing.assert_array_equal(oy, ky)
    np.testing.assert_array_equal(ox, kx)


@pytest.fixture(scope="module")
def color_dir(tmp_path_factory, tf):
    """Lossless images in every layout the decoders treat differently."""
    rng = np.random.default_rng(5)
    root = tmp_path_factory.mktemp("color")
    rgb = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    _save(str(root / "c" / "rgb.png"), rgb)
    _save(str(root / "c" / "gray.png"), rgb[..., 0])
    rgba = np.concatenate([rgb, rng.integers(0, 256, (17, 23, 1), dtype=np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(root / "c" / "rgba.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "c" / "pal.png")
    Image.fromarray(rgb[..., 0]).convert("1").save(root / "c" / "bilevel.png")
    os.makedirs(root / "d")
    Image.fromarray(rng.integers(0, 65536, (17, 23)).astype(np.uint16)).save(root / "d" / "g16.png")
    rgb16 = rng.integers(0, 65536, (17, 23, 3)).astype(np.uint16)
    (root / "d" / "rgb16.png").write_bytes(tf.image.encode_png(rgb16).numpy())
    return str(root)


@pytest.mark.parametrize("color_mode", ["rgb", "rgba", "grayscale"])
def test_color_modes_and_16_bit_pngs_match_keras(keras, color_dir, color_mode):
    common = dict(image_size=(9, 31), batch_size=3, shuffle=False, color_mode=color_mode, verbose=False)
    kx, _ = _keras_arrays(keras.utils.image_dataset_from_directory(color_dir, **common))
    ox, _ = _our_arrays(image_dataset_from_directory(color_dir, **common))
    assert ox.shape == kx.shape
    names = [os.path.basename(p) for p in image_dataset_from_directory(color_dir, **common).file_paths]
    if color_mode == "grayscale":
        # Colour -> gray: Pillow's L formula and libpng's may differ by one level before
        # resizing; images that are gray already come out identical.
        assert np.abs(ox - kx).max() <= 1.0 + 1e-4
        gray_like = [i for i, name in enumerate(names) if name in ("gray.png", "g16.png", "bilevel.png")]
        np.testing.assert_array_equal(ox[gray_like], kx[gray_like])
    elif color_mode == "rgba":
        # TF gives a 1-bit PNG an alpha of 1 instead of 255 (a TF quirk); numvgg keeps it opaque.
        b = names.index("bilevel.png")
        assert (ox[b, ..., 3] == 255).all() and (kx[b, ..., 3] == 1).all()
        kx[b, ..., 3] = 255
        np.testing.assert_array_equal(ox, kx)
    else:
        np.testing.assert_array_equal(ox, kx)


@pytest.fixture(scope="module")
def jpeg_dir(tmp_path_factory):
    rng = np.random.default_rng(8)
    root = tmp_path_factory.mktemp("jpeg")
    for cls in ("x", "y"):
        for i in range(4):
            h, w = rng.integers(40, 90, 2)
            yy, xx = np.mgrid[0:h, 0:w]
            photo = np.stack(
                [(np.sin(xx / 6 + i) + 1) * 120, (np.cos(yy / 5) + 1) * 120, (xx + yy) * 1.2], -1
            ) + rng.normal(0, 8, (h, w, 3))
            _save(str(root / cls / f"{i}.jpg"), photo.clip(0, 255).astype(np.uint8))
    return str(root)


def test_jpeg_pixels_equal_keras(keras, jpeg_dir):
    # simplejpeg with TF's decoder settings: identical pixels (more variants in test_jpeg_decoding.py).
    common = dict(image_size=(64, 64), batch_size=4, shuffle=False, verbose=False)
    kx, ky = _keras_arrays(keras.utils.image_dataset_from_directory(jpeg_dir, **common))
    ox, oy = _our_arrays(image_dataset_from_directory(jpeg_dir, **common))
    np.testing.assert_array_equal(ox, kx)
    np.testing.assert_array_equal(oy, ky)


def test_rgba_works_for_jpegs_with_opaque_alpha(jpeg_dir):
    x, _ = next(
        iter(
            image_dataset_from_directory(
                jpeg_dir, color_mode="rgba", image_size=(16, 16), verbose=False, seed=0
            )
        )
    )
    assert x.shape == (8, 16, 16, 4) and (x[..., 3] == 255).all()


# ---------------------------------------------------------------------------- printing
def test_prints_keras_lines(mixed_dir, capsys):
    image_dataset_from_directory(mixed_dir, seed=1, validation_split=0.2, subset="both", image_size=(8, 8))
    assert capsys.readouterr().out.splitlines() == [
        "Found 21 files belonging to 3 classes.",
        "Using 17 files for training.",
        "Using 4 files for validation.",
    ]
    image_dataset_from_directory(mixed_dir, labels=None, image_size=(8, 8))
    assert capsys.readouterr().out == "Found 23 files.\n"
    image_dataset_from_directory(mixed_dir, image_size=(8, 8), verbose=False)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------- streaming, passes
def test_streams_one_batch_at_a_time(id_dir, monkeypatch):
    loaded = []
    original = ImageSpec.load
    monkeypatch.setattr(ImageSpec, "load", lambda self, path: loaded.append(path) or original(self, path))
    ds = image_dataset_from_directory(id_dir, image_size=(6, 8), batch_size=4, seed=0, verbose=False)
    assert loaded == []  # making the dataset reads no pixels
    it = iter(ds)
    next(it)
    assert len(loaded) == 4
    next(it)
    assert len(loaded) == 8


def test_reshuffles_every_pass_deterministically(id_dir):
    def passes(seed, n=3):
        ds = image_dataset_from_directory(id_dir, image_size=(6, 8), batch_size=6, seed=seed, verbose=False)
        return [[i for x, _ in ds for i in _ids(x)] for _ in range(n)]

    first = passes(seed=21)
    assert all(sorted(p) == list(range(20)) for p in first)  # every file once per pass
    assert first[0] != first[1] != first[2]  # a new order every pass
    assert passes(seed=21) == first  # same seed, same story
    assert passes(seed=22) != first


def test_labels_follow_their_images_through_shuffles(id_dir):
    ds = image_dataset_from_directory(id_dir, image_size=(6, 8), batch_size=7, seed=4, verbose=False)
    for _ in range(2):
        for x, y in ds:
            np.testing.assert_array_equal(y, (x[:, 0, 0, 0] >= 10).astype(np.int32))


def test_unshuffled_order_is_sorted(id_dir):
    ds = image_dataset_from_directory(id_dir, image_size=(6, 8), batch_size=6, shuffle=False, verbose=False)
    assert [i for x, _ in ds for i in _ids(x)] == list(range(20))
    assert [len(y) for _, y in ds] == [6, 6, 6, 2] and len(ds) == 4


def test_seed_none_uses_numpy_global_state_like_keras(id_dir):
    def order():
        np.random.seed(123)
        return image_dataset_from_directory(id_dir, image_size=(6, 8), verbose=False).file_paths

    assert order() == order()


# ---------------------------------------------------------------------------- map, take, unbatched
def test_map_applies_preprocess_input_per_batch(id_dir):
    ds = image_dataset_from_directory(id_dir, image_size=(6, 8), batch_size=8, shuffle=False, verbose=False)
    mapped = ds.map(lambda x, y: (preprocess_input(x), y))
    (x0, y0), (m0, n0) = next(iter(ds)), next(iter(mapped))
    np.testing.assert_array_equal(m0, preprocess_input(x0))
    np.testing.assert_array_equal(n0, y0)
    assert next(iter(ds))[0].max() <= 255  # the original dataset is unchanged
    twice = mapped.map(lambda x, y: (x * 0, y + 1))
    x2, y2 = next(iter(twice))
    assert not x2.any() and (y2 == y0 + 1).all()


def test_map_checks_the_function_fits_the_elements(id_dir):
    ds = image_dataset_from_directory(id_dir, image_size=(6, 8), verbose=False, seed=0)
    with pytest.raises(TypeError, match=r"fn\(images, labels\)"):
        ds.map(lambda x: x)
    # preprocess_input accepts two arguments (x, data_format), so only the call can fail;
    # the error then carries a note saying how map() called it.
    with pytest.raises(ValueError, match="data_format") as info:
        next(iter(ds.map(preprocess_input)))
    assert "fn(images, labels)" in " ".join(info.value.__notes__)
    unlabeled = image_dataset_from_directory(
        id_dir, image_size=(6, 8), label_mode=None, verbose=False, seed=0
    )
    x = next(iter(unlabeled.map(preprocess_input)))
    assert x.shape == (20, 6, 8, 3) and x.min() < 0
    with pytest.raises(TypeError, match="fn\\(images\\)"):
        unlabeled.map(lambda x, y: (x, y))
    with pytest.raises(TypeError, match="needs a function"):
        ds.map(3)


def test_take_limits_batches(id_dir):
    ds = image_dataset_from_directory(id_dir, image_size=(6, 8), batch_size=3, seed=2, verbose=False)
    assert len(ds) == 7
    two = ds.take(2)
    assert len(two) == 2 and len(list(two)) == 2
    assert len(two.take(5)) == 2 and len(ds.take(-1)) == 7
    assert ds.cardinality() == 7
    assert len(list(ds.as_numpy_iterator())) == 7


def test_batch_size_none_yields_single_samples(id_dir):
    ds = image_dataset_from_directory(
        id_dir, image_size=(6, 8), batch_size=None, shuffle=False, label_mode="categorical", verbose=False
    )
    items = list(ds)
    assert len(ds) == len(items) == 20
    x, y = items[0]
    assert x.shape == (6, 8, 3) and y.shape == (2,) and y.tolist() == [1.0, 0.0]


def test_repr_describes_the_stream(id_dir):
    ds = image_dataset_from_directory(id_dir, image_size=(6, 8), batch_size=8, seed=0, verbose=False)
    assert repr(ds) == ("<ImageDataset 20 files, 3 batches of 8, images (6, 8, 3) float32, label_mode='int'>")


# ---------------------------------------------------------------------------- errors
def test_no_class_folders_explains_the_layout(tmp_path):
    _save(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match="No class sub-folders.*1 image file.*labels=None"):
        image_dataset_from_directory(tmp_path, verbose=False)
    with pytest.raises(DatasetError, match="does not exist"):
        image_dataset_from_directory(tmp_path / "missing", verbose=False)


def test_class_folders_without_images(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "d.webp").write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"contain no images.*'\.webp' x1"):
        image_dataset_from_directory(tmp_path, verbose=False)
    _save(str(tmp_path / "dogs" / "d.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.warns(UserWarning, match=r"\['cats'\].*contain no images"):
        ds = image_dataset_from_directory(tmp_path, verbose=False, image_size=(4, 4))
    assert ds.class_names == ["cats", "dogs"]
    assert next(iter(ds))[1].tolist() == [1]  # dogs keep index 1, as in Keras


def test_binary_needs_exactly_two_classes(mixed_dir, tmp_path):
    with pytest.raises(DatasetError, match="exactly 2 classes.*gives 3"):
        image_dataset_from_directory(mixed_dir, label_mode="binary", verbose=False)
    _save(str(tmp_path / "only" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"exactly 2 classes.*gives 1: \['only'\]"):
        image_dataset_from_directory(tmp_path, label_mode="binary", verbose=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(validation_split=0.2, subset="training"), "must provide a `seed`"),
        (dict(validation_split=0.2), "`subset` is set, `validation_split` must be set"),
        (dict(subset="training"), "`subset` is set, `validation_split` must be set"),
        (dict(validation_split=1.5, subset="training", seed=1), "between 0 and 1"),
        (dict(validation_split=0.2, subset="test", seed=1), '"training", "validation" or "both"'),
        (dict(validation_split=0.01, subset="validation", seed=1), "leaves int.* = 0 files"),
        (dict(label_mode="sparse"), "label_mode"),
        (dict(color_mode="bgr"), "color_mode"),
        (dict(image_size=(10,)), "image_size"),
        (dict(batch_size=0), "batch_size"),
        (dict(interpolation="gaussian"), "no equivalent"),
        (dict(class_names=["cats", "lions"]), r"no folder for \['lions'\]"),
        (dict(labels=None, class_names=["cats"]), "class_names can only be given"),
        (dict(labels=[0, 1]), "len\\(labels\\) is 2 while we found 23"),
        (dict(labels="folders"), "`labels` must be"),
        (dict(on_bad_file="ignore"), "on_bad_file"),
    ],
)
def test_bad_arguments_are_explained(mixed_dir, kwargs, message):
    with pytest.raises(DatasetError, match=message):
        image_dataset_from_directory(mixed_dir, verbose=False, **kwargs)


# ---------------------------------------------------------------------------- unreadable files
@pytest.fixture
def dir_with_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        for i in range(6):
            _save(str(tmp_path / cls / f"{i}.png"), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (tmp_path / "a" / "fake.jpg").write_text("I am text")
    (tmp_path / "b" / "empty.png").write_bytes(b"")
    return tmp_path


def test_unreadable_files_are_skipped_with_a_warning_and_the_split_is_keras(keras, dir_with_bad_files):
    common = dict(image_size=(8, 8), seed=6, validation_split=0.3, verbose=False)
    with pytest.warns(UserWarning, match="cannot be read as images") as record:
        ours = image_dataset_from_directory(dir_with_bad_files, subset="training", **common)
        ours_val = image_dataset_from_directory(dir_with_bad_files, subset="validation", **common)
    messages = " ".join(str(w.message) for w in record)
    assert "fake.jpg" in messages and "empty.png" in messages
    theirs = keras.utils.image_dataset_from_directory(dir_with_bad_files, subset="training", **common)
    theirs_val = keras.utils.image_dataset_from_directory(dir_with_bad_files, subset="validation", **common)
    bad = ("fake.jpg", "empty.png")
    assert ours.file_paths == [p for p in theirs.file_paths if not p.endswith(bad)]
    assert ours_val.file_paths == [p for p in theirs_val.file_paths if not p.endswith(bad)]
    assert sum(len(y) for _, y in ours) == len(ours.file_paths)


def test_unreadable_files_raise_when_asked(dir_with_bad_files):
    with pytest.raises(
        DatasetError,
        match=r"(?s)2 of the 14 dataset files.*fake\.jpg: not an image"
        r".*empty\.png: empty file",
    ):
        image_dataset_from_directory(dir_with_bad_files, on_bad_file="error", verbose=False, shuffle=False)


def test_truncated_file_is_skipped_from_its_batch_or_raises(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(4):
        _save(str(tmp_path / "a" / f"{i}.png"), rng.integers(0, 256, (30, 30, 3), dtype=np.uint8))
    cut = tmp_path / "a" / "2.png"
    cut.write_bytes(cut.read_bytes()[:200])  # the header survives, the pixels do not
    ds = image_dataset_from_directory(tmp_path, image_size=(8, 8), shuffle=False, verbose=False)
    assert len(ds.file_paths) == 4  # the header check cannot see it
    with pytest.warns(UserWarning, match="Skipping unreadable image .*2.png"):
        ((x, y),) = list(ds)
    assert x.shape == (3, 8, 8, 3) and y.tolist() == [0, 0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per file, not every pass
        assert len(list(ds)[0][0]) == 3
    strict = image_dataset_from_directory(
        tmp_path, image_size=(8, 8), shuffle=False, verbose=False, on_bad_file="error"
    )
    with pytest.raises(DatasetError, match="2.png") as info:
        list(strict)
    assert isinstance(info.value.__cause__, OSError)


def test_allowed_formats_are_keras(keras):
    from keras.src.utils.image_dataset_utils import ALLOWLIST_FORMATS

    assert directory_module.ALLOWLIST_FORMATS == ALLOWLIST_FORMATS
