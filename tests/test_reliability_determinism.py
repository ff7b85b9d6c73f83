"""Determinism: the same seed gives bit-identical training on the same machine.

``numvgg.random.set_random_seed(seed)`` seeds weight initialisation, the
shuffle of every epoch and the Dropout masks (a ``Dropout`` without its own
seed draws one from numvgg.random when it is built). Two runs -- in this
process, or in two fresh interpreters -- must agree to the last bit: weights,
optimizer slots and every logged number.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from reliability_helpers import INPUT_SHAPE, assert_same_state, small_data

from numvgg.applications.vgg16 import VGG16
from numvgg.layers import Conv2D, Dense, Dropout, GlobalAveragePooling2D, MaxPooling2D
from numvgg.models import Sequential
from numvgg.random import set_random_seed

TESTS = Path(__file__).parent


def run(seed):
    """Build, train 3 epochs (shuffled, validation split, unseeded Dropout), return model and history."""
    set_random_seed(seed)
    model = Sequential(
        [
            Conv2D(4, (3, 3), activation="relu", input_shape=INPUT_SHAPE),
            MaxPooling2D(),
            Conv2D(8, (3, 3), activation="relu"),
            GlobalAveragePooling2D(),
            Dropout(0.5),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc"])
    x, y = small_data(48, seed=4)
    history = model.fit(x, y, batch_size=8, epochs=3, validation_split=0.25, verbose=0)
    return model, history.history


def digest(model, history) -> str:
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(w.tobytes())
    for key, value in model.optimizer.get_state().items():
        h.update(key.encode() + np.asarray(value).tobytes())
    h.update(repr(sorted(history.items())).encode())
    return h.hexdigest()


def test_same_seed_same_bits_in_one_process():
    a, history_a = run(11)
    b, history_b = run(11)
    assert_same_state(a, b)
    assert history_a == history_b


def test_another_seed_gives_another_run():
    a, _ = run(11)
    b, _ = run(12)
    assert not np.array_equal(a.get_weights()[0], b.get_weights()[0])


def test_same_seed_same_bits_in_fresh_interpreters():
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from test_reliability_determinism import digest, run
        print(digest(*run(11)))
    """)
    children = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert children[0] == children[1] == digest(*run(11))


def test_vgg16_transfer_recipe_is_bit_identical():
    """The seed's recipe in miniature: VGG16 base (block5 trainable) + GAP + Dense + Dense."""

    def train():
        set_random_seed(5)
        base = VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
        for layer in base.layers[:-4]:
            layer.trainable = False
        model = Sequential(
            [
                base,
                GlobalAveragePooling2D(),
                Dense(16, activation="relu"),
                Dropout(0.5),
                Dense(1, activation="sigmoid"),
            ]
        )
        model.compile(optimizer="rmsprop", loss="binary_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.uniform(-120, 140, (4, 32, 32, 3)).astype(np.float32)
        y = np.array([0, 1, 1, 0], np.float32)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # one step: BLAS at VGG scale
        return model

    assert_same_state(train(), train())
