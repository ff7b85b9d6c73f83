"""Shared fixtures, and the policy for tests that need Keras.

Keras (on TensorFlow) is the reference numvgg is compared with. Importing
TensorFlow takes seconds, so it happens in the ``keras`` fixture, only for
the tests that ask for it, and never at collection time.

Policy when Keras cannot be imported:

* in CI (``CI`` set) or with ``NUMVGG_REQUIRE_KERAS=1``: the test **fails**
  with the import error, so a broken CI environment can never turn every
  parity test into a silent skip;
* otherwise (a developer without TensorFlow): the test is skipped, and the
  reason says how to install it.
"""

from __future__ import annotations

import os
import zlib
from typing import NamedTuple

import numpy as np
import pytest

# Before TensorFlow is imported anywhere: quiet C++ logs, and Keras 3 on TF.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def keras_required() -> bool:
    """True when a missing Keras must fail the run instead of skipping."""
    return _truthy(os.environ.get("NUMVGG_REQUIRE_KERAS")) or _truthy(os.environ.get("CI"))


def import_keras():
    """Import and return ``keras`` (on TensorFlow), applying the policy above
    (``pytest.fail`` in CI, ``pytest.skip`` elsewhere) when that is impossible."""
    try:
        import keras as keras_module
        import tensorflow  # noqa: F401  (the backend; imported first so its errors show)
    except ImportError as exc:
        message = (
            f"Keras/TensorFlow cannot be imported ({exc!r}); the parity tests need them: "
            "pip install -e '.[test]'"
        )
        if keras_required():
            pytest.fail(message + "  [CI or NUMVGG_REQUIRE_KERAS=1: refusing to skip]", pytrace=False)
        pytest.skip(message)
    if keras_module.backend.backend() != "tensorflow":
        pytest.fail(
            f"The parity tests use tf.GradientTape: set KERAS_BACKEND=tensorflow "
            f"(got {keras_module.backend.backend()!r})",
            pytrace=False,
        )
    return keras_module


@pytest.fixture(scope="session")
def keras():
    """The ``keras`` module (Keras 3 on TensorFlow), imported on first use."""
    return import_keras()


@pytest.fixture(scope="session")
def tf(keras):
    """The ``tensorflow`` module (after the ``keras`` fixture's checks)."""
    import tensorflow

    return tensorflow


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test."""
    return np.random.default_rng(1234)


class VGGPair(NamedTuple):
    """A numvgg VGG16 and a Keras VGG16 holding identical random weights."""

    numvgg: object  # numvgg.models.Sequential
    keras: object  # keras.Model
    input_shape: tuple  # (H, W, 3)


@pytest.fixture(scope="session")
def vgg16_pair_factory(keras):
    """``make(include_top=False, input_shape=(32, 32, 3), pooling=None, classes=10)``
    returns a cached :class:`VGGPair` (built once per session per argument set).

    The pairs are shared by many tests: a test that changes their weights or
    ``trainable`` flags must restore them."""
    from numvgg import initializers
    from numvgg.applications.vgg16 import VGG16

    cache = {}

    def make(include_top=False, input_shape=(32, 32, 3), pooling=None, classes=10):
        key = (include_top, tuple(input_shape), pooling, classes)
        if key not in cache:
            initializers.set_seed(zlib.crc32(repr(key).encode()))  # repeatable per argument set
            ours = VGG16(
                include_top=include_top,
                weights=None,
                input_shape=input_shape,
                pooling=pooling,
                classes=classes,
            )
            theirs = keras.applications.VGG16(
                include_top=include_top,
                weights=None,
                input_shape=input_shape,
                pooling=pooling,
                classes=classes,
            )
            theirs.set_weights(ours.get_weights())
            cache[key] = VGGPair(ours, theirs, tuple(input_shape))
        return cache[key]

    yield make
    cache.clear()


@pytest.fixture(scope="session")
def vgg16_pair(vgg16_pair_factory):
    """The small pair most tests use: no top, 32x32x3 input, no pooling."""
    return vgg16_pair_factory(include_top=False, input_shape=(32, 32, 3), pooling=None)


@pytest.fixture(scope="session")
def vgg16_top_224():
    """numvgg's full VGG16 (with top, 224x224, random weights: 138M parameters).

    Building it takes seconds (553 MB of weights), so it is built once per session."""
    from numvgg import initializers
    from numvgg.applications.vgg16 import VGG16

    initializers.set_seed(224)
    return VGG16(include_top=True, weights=None)


# -- markers --------------------------------------------------------------------------------
_KERAS_FIXTURES = {"keras", "tf", "vgg16_pair_factory", "vgg16_pair"}


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses Keras (through a fixture) with ``keras``, so
    ``pytest -m "not keras"`` runs the fast inner loop without TensorFlow."""
    for item in items:
        if _KERAS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.keras)
