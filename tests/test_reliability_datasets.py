"""Issue 15, the dataset and image holes: symlink loops with ``follow_links=True``,
decompression bombs and huge images in ``load_img``."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from numvgg.data.directory import index_directory


def image(path, value=0, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)


@pytest.fixture
def two_classes(tmp_path):
    root = tmp_path / "data"
    image(root / "cats" / "c.png", 10)
    image(root / "dogs" / "d.png", 200)
    return root


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_a_link_up_to_the_root_neither_repeats_nor_mislabels(two_classes):
    (two_classes / "cats" / "up").symlink_to("..")
    with pytest.warns(UserWarning, match=r"skipped 1 linked folder.*cats/up"):
        paths, labels, names = index_directory(two_classes, follow_links=True)
    assert [os.path.relpath(p, two_classes) for p in paths] == ["cats/c.png", "dogs/d.png"]
    assert labels.tolist() == [0, 1] and names == ["cats", "dogs"]


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_two_links_to_the_same_folder_finish_at_once(two_classes):
    (two_classes / "cats" / "a").symlink_to(".")
    (two_classes / "cats" / "b").symlink_to(".")
    with pytest.warns(UserWarning, match="skipped 2 linked folder"):
        paths, _, _ = index_directory(two_classes, follow_links=True)
    assert len(paths) == 2


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_a_link_to_images_outside_the_root_is_followed_once(two_classes, tmp_path):
    image(tmp_path / "shared" / "more" / "c2.png", 20)
    (two_classes / "cats" / "extra").symlink_to(tmp_path / "shared")
    (two_classes / "cats" / "extra_again").symlink_to(tmp_path / "shared")
    with pytest.warns(UserWarning, match="skipped 1"):
        paths, labels, _ = index_directory(two_classes, follow_links=True)
    assert [os.path.relpath(p, two_classes) for p in paths] == [
        "cats/c.png",
        "cats/extra/more/c2.png",
        "dogs/d.png",
    ]
    assert labels.tolist() == [0, 0, 1]


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_without_follow_links_nothing_changes(two_classes):
    (two_classes / "cats" / "up").symlink_to("..")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths, _, _ = index_directory(two_classes, follow_links=False)
    assert len(paths) == 2


# -- 11. load_img: decompression bombs, huge images ------------------------------------------------
def test_a_decompression_bomb_names_the_file(tmp_path, monkeypatch):
    from numvgg.data.images import load_img
    from numvgg.errors import ImageFileError

    path = tmp_path / "bomb.png"
    image(path, size=(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels > 2 x 1000
    with pytest.raises(ImageFileError, match=r"bomb\.png.*too big to decode.*MAX_IMAGE_PIXELS") as info:
        load_img(path, target_size=(32, 32))
    assert isinstance(info.value.__cause__, Image.DecompressionBombError)


def test_a_huge_jpeg_for_a_small_target_is_decoded_at_reduced_scale(tmp_path, monkeypatch):
    from numvgg.data import images

    path = tmp_path / "huge.jpg"
    Image.new("RGB", (4608, 4096), (200, 30, 60)).save(path, quality=90)
    decoded = []
    original_load = Image.Image.load

    def spy_load(self):
        decoded.append(self.size)
        return original_load(self)

    monkeypatch.setattr(images.Image.Image, "load", spy_load)
    img = images.load_img(path, target_size=(32, 32))
    assert img.size == (32, 32)
    assert decoded[0] == (4608 // 8, 4096 // 8)  # 1/8 scale: 64x less memory
    np.testing.assert_allclose(np.asarray(img)[16, 16], (200, 30, 60), atol=3)


def test_images_below_the_draft_threshold_decode_in_full(tmp_path):
    from numvgg.data import images

    path = tmp_path / "big.jpg"
    Image.new("RGB", (1024, 1024), (10, 20, 30)).save(path)
    with Image.open(path) as reference:
        expected = np.asarray(reference.convert("RGB").resize((32, 32), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(np.asarray(images.load_img(path, target_size=(32, 32))), expected)
