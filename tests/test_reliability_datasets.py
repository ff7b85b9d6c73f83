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
        paths, labels, _ = index_directory(two_classes, follow_links=True)
    assert len(paths) == 2


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_a_link_to_images_outside_the_root_is_followed_once(two_classes, tmp_path):
    image(tmp_path / "shared" / "more" / "c2.png", 20)
    (two_classes / "cats" / "extra").symlink_to(tmp_path / "shared")
    (two_classes / "cats" / "extra_again").symlink_to(tmp_path / "shared")
    with pytest.warns(UserWarning, match="skipped 1"):
        paths, labels, _ = index_directory(two_classes, follow_links=True)
    assert [os.path.relpath(p, two_classes) for p in paths] == [
        "cats/c.png", "cats/extra/more/c2.png", "dogs/d.png"]
    assert labels.tolist() == [0, 0, 1]


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_without_follow_links_nothing_changes(two_classes):
    (two_classes / "cats" / "up").symlink_to("..")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths, _, _ = index_directory(two_classes, follow_links=False)
    assert len(paths) == 2
