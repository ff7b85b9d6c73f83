"""JPEG pixels: image_dataset_from_directory decodes like TensorFlow, load_img like Pillow (Keras' rules)."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from numvgg.data import jpeg as jpeg_module
from numvgg.data.dataset import ImageSpec, image_dataset_from_directory
from numvgg.data.images import img_to_array, load_img

H, W = 41, 57  # odd sizes: the chroma planes of 4:2:0 do not divide evenly


def _photo(seed):
    """A smooth picture with noise: chroma detail makes upsampling and the IDCT matter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    photo = np.stack(
        [(np.sin(xx / 5 + seed) + 1) * 120, (np.cos(yy / 4) + 1) * 120, (xx + yy) * 2.0], -1
    ) + rng.normal(0, 12, (H, W, 3))
    return photo.clip(0, 255).astype(np.uint8)


# file name -> how Pillow writes it
JPEG_VARIANTS = {
    "s444.jpg": dict(subsampling=0, quality=90),
    "s422.jpg": dict(subsampling=1, quality=90),
    "s420.jpg": dict(subsampling=2, quality=75),
    "progressive.jpg": dict(progressive=True, quality=85),
}


@pytest.fixture(scope="module")
def format_dir(tmp_path_factory):
    """One class of JPEGs (each subsampling, progressive, grayscale), one of PNG/BMP/GIF, same size."""
    root = tmp_path_factory.mktemp("formats")
    (root / "jpeg").mkdir()
    (root / "lossless").mkdir()
    for i, (name, options) in enumerate(JPEG_VARIANTS.items()):
        Image.fromarray(_photo(i)).save(root / "jpeg" / name, "JPEG", **options)
    Image.fromarray(_photo(7)[:, :, 0]).save(root / "jpeg" / "gray.jpg", "JPEG", quality=90)
    Image.fromarray(_photo(8)).save(root / "lossless" / "a.png")
    Image.fromarray(_photo(9)).save(root / "lossless" / "b.bmp")
    Image.fromarray(_photo(10)).save(root / "lossless" / "c.gif")
    return str(root)


def _arrays(ds, to_numpy):
    xs, ys = zip(*[(x, y) for x, y in ds])
    if to_numpy:
        xs, ys = [x.numpy() for x in xs], [y.numpy() for y in ys]
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.keras
@pytest.mark.parametrize("color_mode", ["rgb", "grayscale"])
def test_dataset_pixels_equal_keras_bit_for_bit(keras, format_dir, color_mode):
    # Same size as the files: tf.image.resize leaves the decoded pixels as they are.
    args = dict(image_size=(H, W), batch_size=3, shuffle=False, color_mode=color_mode, verbose=False)
    directory = format_dir if color_mode == "rgb" else os.path.join(format_dir, "jpeg")
    if color_mode == "grayscale":  # Pillow's L formula differs from TF's for PNG; JPEG gives luma
        args["labels"] = None
        kx = np.concatenate([b.numpy() for b in keras.utils.image_dataset_from_directory(directory, **args)])
        ox = np.concatenate(list(image_dataset_from_directory(directory, **args)))
    else:
        kx, ky = _arrays(keras.utils.image_dataset_from_directory(directory, **args), True)
        ox, oy = _arrays(image_dataset_from_directory(directory, **args), False)
        np.testing.assert_array_equal(oy, ky)
    assert ox.dtype == np.float32 and ox.shape == kx.shape
    np.testing.assert_array_equal(ox, kx)


@pytest.mark.keras
def test_each_jpeg_variant_equals_tf_decode_image(tf, format_dir):
    for name in [*JPEG_VARIANTS, "gray.jpg"]:
        path = os.path.join(format_dir, "jpeg", name)
        for color_mode, channels in (("rgb", 3), ("grayscale", 1)):
            reference = tf.image.decode_image(
                tf.io.read_file(path), channels=channels, expand_animations=False
            ).numpy()
            ours = ImageSpec(color_mode, (H, W), "nearest", False).load(path)
            np.testing.assert_array_equal(ours, reference.astype(np.float32), err_msg=name)


@pytest.mark.keras
def test_resized_jpeg_batches_equal_keras(keras, format_dir):
    args = dict(image_size=(24, 33), batch_size=4, shuffle=False, verbose=False, labels=None)
    directory = os.path.join(format_dir, "jpeg")
    kx = np.concatenate([x.numpy() for x in keras.utils.image_dataset_from_directory(directory, **args)])
    ox = np.concatenate(list(image_dataset_from_directory(directory, **args)))
    np.testing.assert_array_equal(ox, kx)


@pytest.mark.keras
def test_load_img_keeps_pillow_like_keras(keras, format_dir):
    # keras.utils.load_img decodes with Pillow (accurate IDCT): so does numvgg's load_img.
    for name in JPEG_VARIANTS:
        path = os.path.join(format_dir, "jpeg", name)
        for kwargs in (dict(), dict(target_size=(20, 30)), dict(color_mode="grayscale")):
            theirs = keras.utils.img_to_array(keras.utils.load_img(path, **kwargs))
            np.testing.assert_array_equal(img_to_array(load_img(path, **kwargs)), theirs)


def test_rgba_jpeg_has_opaque_alpha(format_dir):
    x = ImageSpec("rgba", (H, W), "nearest", False).load(os.path.join(format_dir, "jpeg", "s420.jpg"))
    rgb = ImageSpec("rgb", (H, W), "nearest", False).load(os.path.join(format_dir, "jpeg", "s420.jpg"))
    assert x.shape == (H, W, 4) and (x[..., 3] == 255).all()
    np.testing.assert_array_equal(x[..., :3], rgb)


def test_without_simplejpeg_pillow_decodes_with_one_warning(format_dir, monkeypatch):
    path = os.path.join(format_dir, "jpeg", "s420.jpg")
    fast = ImageSpec("rgb", (H, W), "nearest", False).load(path)
    monkeypatch.setattr(jpeg_module, "simplejpeg", None)
    monkeypatch.setattr(jpeg_module, "_warned_missing", False)
    with pytest.warns(UserWarning, match="simplejpeg is not installed"):
        slow = ImageSpec("rgb", (H, W), "nearest", False).load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once, not per file
        ImageSpec("rgb", (H, W), "nearest", False).load(path)
    pillow = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    np.testing.assert_array_equal(slow, pillow)
    assert 0 < np.abs(slow - fast).max() <= 8  # the two IDCTs really differ


def test_damaged_jpeg_names_the_file(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(_photo(0)).save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[:300])
    from numvgg.errors import ImageFileError

    with pytest.raises(ImageFileError, match="cut.jpg"):
        ImageSpec("rgb", (H, W), "nearest", False).load(str(path))
