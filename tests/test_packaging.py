"""What setup.cfg declares holds for the interpreter the tests run on."""

from __future__ import annotations

import configparser
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def declared_python_floor() -> tuple[int, int]:
    spec = _setup_cfg()["options"]["python_requires"].strip()
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec)
    assert match, f"python_requires should be a plain floor like '>=3.11', got {spec!r}"
    return int(match[1]), int(match[2])


def test_declared_python_floor_is_the_tested_one():
    # numvgg uses 3.11-only APIs (BaseException.add_note): a floor below the
    # interpreter CI runs on would be a claim no test checks. The CI interpreter
    # must be the lowest declared version (or the floor is raised to it).
    floor = declared_python_floor()
    assert floor >= (3, 11), f"numvgg uses BaseException.add_note (3.11+); setup.cfg declares {floor}"
    assert floor <= sys.version_info[:2], (
        f"setup.cfg declares Python >= {floor} but the tests run on {sys.version_info[:2]}"
    )
    if os.environ.get("CI"):
        # CI runs the lowest declared version, so the floor itself is what is tested.
        assert floor == sys.version_info[:2], f"CI runs {sys.version_info[:2]}, setup.cfg declares {floor}"
    assert "Python 3.11+" in (ROOT / "README.md").read_text()


def test_markers_are_registered():
    markers = _setup_cfg()["tool:pytest"]["markers"]
    assert re.search(r"^keras:", markers, re.M) and re.search(r"^slow:", markers, re.M)


def test_tests_using_keras_fixtures_get_the_keras_marker():
    import conftest

    class Item:
        def __init__(self, fixturenames):
            self.fixturenames = fixturenames
            self.markers = []

        def add_marker(self, marker):
            self.markers.append(marker.name)

    items = [Item(["tmp_path"]), Item(["keras", "rng"]), Item(["tf"]), Item(["vgg16_pair"])]
    conftest.pytest_collection_modifyitems(None, items)
    assert [item.markers for item in items] == [[], ["keras"], ["keras"], ["keras"]]
