"""Small models and data shared by the ``test_reliability_*`` files.

The model is the transfer-learning recipe in miniature: a convolution, global
average pooling, Dropout and a sigmoid unit, on 16x16 RGB inputs. It trains
in milliseconds, yet has every kind of state a resumed run must restore:
weights, Adam's two slots per weight, a shuffle and a Dropout generator.
"""

from __future__ import annotations

import numpy as np

from numvgg.layers import Conv2D, Dense, Dropout, GlobalAveragePooling2D
from numvgg.models import Sequential

INPUT_SHAPE = (16, 16, 3)


def small_model(optimizer="adam", dropout_seed=5, compile=True, metrics=("acc",)):
    """Conv2D(4, 3x3, relu) -> GAP -> Dropout(0.3) -> Dense(1, sigmoid), compiled for BCE."""
    model = Sequential(
        [
            Conv2D(4, (3, 3), activation="relu", input_shape=INPUT_SHAPE),
            GlobalAveragePooling2D(),
            Dropout(0.3, seed=dropout_seed),
            Dense(1, activation="sigmoid"),
        ]
    )
    if compile:
        model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=list(metrics))
    return model


def small_data(n=40, seed=0):
    """``x`` float32 ``(n, 16, 16, 3)`` and binary ``y`` float32 ``(n,)``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *INPUT_SHAPE)).astype(np.float32)
    y = (rng.random(n) > 0.5).astype(np.float32)
    return x, y


def snapshot(model):
    """Copies of the weights and of the optimizer state (if any)."""
    opt = model.optimizer.get_state() if model.optimizer is not None and model.optimizer.built else {}
    return [w.copy() for w in model.get_weights()], opt


def assert_same_state(a, b):
    """Bit-identical weights and optimizer state (``a``/``b``: models or snapshots)."""
    wa, oa = a if isinstance(a, tuple) else snapshot(a)
    wb, ob = b if isinstance(b, tuple) else snapshot(b)
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)
    assert list(oa) == list(ob)
    for key in oa:
        np.testing.assert_array_equal(oa[key], ob[key], err_msg=key)
