"""load_img / img_to_array / array_to_img / save_img against keras.utils, array for array."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from numvgg.data.images import (
    ImageFileError,
    ImageNotFoundError,
    array_to_img,
    img_to_array,
    load_img,
    save_img,
)
from numvgg.errors import ShapeError


def _photo(rng, h=23, w=31):
    """A smooth-ish RGB uint8 picture with noise (JPEG-friendly, no ties everywhere)."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(np.sin(xx / 5) + 1) * 120, (np.cos(yy / 4) + 1) * 120, (xx + yy) * 4.0], -1)
    return (base + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory, tf):
    """One file per colour layout Pillow may hand back: {name: path}."""
    rng = np.random.default_rng(7)
    d = tmp_path_factory.mktemp("images")
    rgb = _photo(rng)
    files = {}

    def save(name, img, **kw):
        files[name] = str(d / name)
        img.save(files[name], **kw)

    save("rgb.png", Image.fromarray(rgb))
    save("rgb.jpg", Image.fromarray(rgb), quality=90)
    save("gray.png", Image.fromarray(rgb).convert("L"))
    save("gray.jpg", Image.fromarray(rgb).convert("L"))
    alpha = rng.integers(0, 256, rgb.shape[:2] + (1,), dtype=np.uint8)
    save("rgba.png", Image.fromarray(np.concatenate([rgb, alpha], -1), "RGBA"))
    save("la.png", Image.fromarray(np.concatenate([rgb[..., :2], alpha], -1)[..., 1:], "LA"))
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    save("palette.png", palette)
    save("palette_transparent.png", palette, transparency=3)
    save("palette.gif", palette)
    save("rgb.bmp", Image.fromarray(rgb))
    save("bilevel.png", Image.fromarray(rgb).convert("1"))
    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"))
    save("gray16.png", Image.fromarray(rng.integers(0, 65536, rgb.shape[:2]).astype(np.uint16)))
    rgb16 = rng.integers(0, 65536, rgb.shape).astype(np.uint16)
    files["rgb16.png"] = str(d / "rgb16.png")
    (d / "rgb16.png").write_bytes(tf.image.encode_png(rgb16).numpy())  # Pillow cannot write it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    save("exif_rotated.jpg", Image.fromarray(rgb), exif=exif)
    return files


LAYOUTS = [
    "rgb.png",
    "rgb.jpg",
    "gray.png",
    "gray.jpg",
    "rgba.png",
    "la.png",
    "palette.png",
    "palette_transparent.png",
    "palette.gif",
    "rgb.bmp",
    "bilevel.png",
    "cmyk.jpg",
    "gray16.png",
    "rgb16.png",
    "exif_rotated.jpg",
]


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("color_mode", ["rgb", "grayscale", "rgba"])
def test_load_img_matches_keras_for_every_layout(keras, image_files, name, color_mode):
    ours = img_to_array(load_img(image_files[name], color_mode=color_mode))
    theirs = keras.utils.img_to_array(keras.utils.load_img(image_files[name], color_mode=color_mode))
    assert ours.dtype == theirs.dtype == np.float32
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"])
@pytest.mark.parametrize("target_size", [(10, 14), (40, 25), (23, 31)])
@pytest.mark.parametrize("keep_aspect_ratio", [False, True])
def test_load_img_resizing_matches_keras(keras, image_files, interpolation, target_size, keep_aspect_ratio):
    kw = dict(target_size=target_size, interpolation=interpolation, keep_aspect_ratio=keep_aspect_ratio)
    ours = img_to_array(load_img(image_files["rgb.png"], **kw))
    theirs = keras.utils.img_to_array(keras.utils.load_img(image_files["rgb.png"], **kw))
    assert ours.shape == target_size + (3,)
    np.testing.assert_array_equal(ours, theirs)


def test_load_img_accepts_pathlib_bytes_and_bytesio(keras, image_files):
    import pathlib

    path = image_files["rgb.png"]
    expected = keras.utils.img_to_array(keras.utils.load_img(path))
    with open(path, "rb") as f:
        data = f.read()
    for source in (pathlib.Path(path), path.encode(), io.BytesIO(data)):
        np.testing.assert_array_equal(img_to_array(load_img(source)), expected)
    with pytest.raises(TypeError, match="path should be path-like"):
        load_img(123)


def test_exif_orientation_is_ignored_like_keras(image_files):
    # The file's pixels are 23x31 (H x W); EXIF says "rotate", which Keras does not do.
    img = load_img(image_files["exif_rotated.jpg"])
    assert img.getexif().get(0x0112) == 6
    assert img_to_array(img).shape == (23, 31, 3)


def test_sixteen_bit_gray_keeps_its_values_in_grayscale_mode(image_files):
    arr = img_to_array(load_img(image_files["gray16.png"], color_mode="grayscale"))
    raw = np.asarray(Image.open(image_files["gray16.png"]))
    np.testing.assert_array_equal(arr[..., 0], raw.astype(np.float32))
    assert arr.max() > 255


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("name", ["rgb.png", "gray.png", "rgba.png"])
def test_img_to_array_data_formats_match_keras(keras, image_files, data_format, name):
    img = Image.open(image_files[name])
    ours = img_to_array(img, data_format=data_format, dtype="float64")
    theirs = keras.utils.img_to_array(img, data_format=data_format, dtype="float64")
    assert ours.dtype == theirs.dtype == np.float64
    np.testing.assert_array_equal(ours, theirs)


def test_img_to_array_rejects_other_ranks():
    with pytest.raises(ShapeError, match=r"\(2, 3, 4, 5\)"):
        img_to_array(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="data_format"):
        img_to_array(np.zeros((2, 3, 3)), data_format="NHWC")


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_array_to_img_matches_keras(keras, rng, channels, scale, data_format):
    x = rng.uniform(-3, 250, (6, 7, channels))
    if data_format == "channels_first":
        x = x.transpose(2, 0, 1)
    ours = array_to_img(x, data_format=data_format, scale=scale)
    theirs = keras.utils.array_to_img(x, data_format=data_format, scale=scale)
    assert ours.mode == theirs.mode
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_array_to_img_large_single_channel_becomes_32_bit_like_keras(keras):
    x = np.arange(12, dtype=np.float32).reshape(3, 4, 1) * 100
    ours, theirs = array_to_img(x, scale=False), keras.utils.array_to_img(x, scale=False)
    assert ours.mode == theirs.mode == "I"
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_array_to_img_rejects_bad_shapes():
    with pytest.raises(ShapeError, match="rank 3"):
        array_to_img(np.zeros((1, 4, 4, 3)))
    with pytest.raises(ShapeError, match="channel number: 2"):
        array_to_img(np.zeros((4, 4, 2)))


@pytest.mark.parametrize("ext", ["png", "bmp", "jpg"])
def test_save_img_writes_what_keras_writes(keras, rng, tmp_path, ext):
    x = rng.uniform(0, 255, (9, 11, 3)).astype(np.float32)
    save_img(tmp_path / f"ours.{ext}", x)
    keras.utils.save_img(tmp_path / f"theirs.{ext}", x)
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / f"ours.{ext}")), np.asarray(Image.open(tmp_path / f"theirs.{ext}"))
    )


def test_save_img_rgba_as_jpeg_warns_and_drops_alpha(rng, tmp_path):
    x = rng.uniform(0, 255, (5, 6, 4))
    with pytest.warns(UserWarning, match="JPEG format does not support RGBA"):
        save_img(tmp_path / "a.jpg", x)
    assert Image.open(tmp_path / "a.jpg").mode == "RGB"
    buf = io.BytesIO()
    save_img(buf, x, file_format="png")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == "RGBA"


# ----------------------------------------------------------------------------- errors
def test_missing_file_names_the_path_and_chains_the_cause(tmp_path):
    path = tmp_path / "nope.jpg"
    with pytest.raises(ImageNotFoundError, match="nope.jpg") as info:
        load_img(str(path))
    assert isinstance(info.value, FileNotFoundError)  # Keras users' except clause still works
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_non_image_with_image_extension_is_reported(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_text("this is not a JPEG")
    with pytest.raises(ImageFileError, match="fake.jpg") as info:
        load_img(path)
    assert isinstance(info.value.__cause__, UnidentifiedImageError)


def test_empty_file_is_reported(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageFileError, match="empty.png.*0 bytes"):
        load_img(path)


def test_truncated_file_fails_in_load_img_with_its_name(tmp_path, rng):
    path = tmp_path / "cut.jpg"
    Image.fromarray(_photo(rng, 64, 64)).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(ImageFileError, match="cut.jpg") as info:
        load_img(path)
    assert isinstance(info.value.__cause__, OSError)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ImageFileError, match="is a directory"):
        load_img(tmp_path)


def test_bad_arguments(image_files):
    with pytest.raises(ValueError, match="color_mode"):
        load_img(image_files["rgb.png"], color_mode="bgr")
    with pytest.raises(ValueError, match="Invalid interpolation method cubic"):
        load_img(image_files["rgb.png"], target_size=(4, 4), interpolation="cubic")
    # Keras checks the name only when a resize is needed; numvgg always does, so a typo
    # fails on every image instead of on the first one of another size.
    with pytest.raises(ValueError, match="Invalid interpolation method cubic"):
        load_img(image_files["rgb.png"], target_size=(23, 31), interpolation="cubic")


def test_numvgg_utils_offers_keras_utils_names():
    import numvgg.utils
    from numvgg.data.dataset import image_dataset_from_directory

    for name in ("load_img", "img_to_array", "array_to_img", "save_img"):
        assert getattr(numvgg.utils, name) is globals()[name]
    assert numvgg.utils.image_dataset_from_directory is image_dataset_from_directory
