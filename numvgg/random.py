"""One place for numvgg's randomness, so one seed makes a run repeatable.

``set_random_seed(seed)`` (Keras: ``keras.utils.set_random_seed``) seeds the
weight initializers and the generator that shuffles training data.
"""

from __future__ import annotations

import numpy as np

from . import initializers

_rng = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seed weight initialisation and data shuffling."""
    global _rng
    if not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    initializers.set_seed(int(seed))
    _rng = np.random.default_rng(int(seed))


def generator() -> np.random.Generator:
    """The generator ``fit`` shuffles with."""
    return _rng


def get_state() -> dict:
    """The shuffling generator's state (for checkpoints)."""
    return _rng.bit_generator.state


def set_state(state: dict) -> None:
    _rng.bit_generator.state = state
