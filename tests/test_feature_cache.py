"""compile(cache_frozen_features=True): the frozen base runs once per image, results unchanged."""

import numpy as np
import pytest

import numvgg.ops.conv as conv_ops
from numvgg.applications.vgg16 import VGG16
from numvgg.layers import Dense, Dropout, GlobalAveragePooling2D
from numvgg.models import Sequential
from numvgg.models.feature_cache import frozen_prefix
from numvgg.optimizers import Adam
from numvgg.random import set_random_seed


def seed_model():
    set_random_seed(11)
    base = VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    model = Sequential(
        [base, GlobalAveragePooling2D(), Dense(8, activation="relu"), Dense(1, activation="sigmoid")]
    )
    base.trainable = False
    return model, base


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    x = rng.uniform(-50, 50, size=(12, 32, 32, 3)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.float32)[:, None]
    return x, y


def fit(model, data, cache, **kwargs):
    model.compile(
        optimizer=Adam(learning_rate=1e-3),
        loss="binary_crossentropy",
        metrics=["acc"],
        cache_frozen_features=cache,
    )
    set_random_seed(5)  # the same shuffling for both runs
    return model.fit(*data, batch_size=4, epochs=3, validation_data=data, verbose=0, **kwargs)


@pytest.mark.slow
def test_cached_phase1_gives_the_same_history_and_weights(data, monkeypatch):
    plain, _ = seed_model()
    h_plain = fit(plain, data, cache=False)

    calls = []
    real = conv_ops.conv2d_forward
    monkeypatch.setattr(conv_ops, "conv2d_forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    cached, _ = seed_model()
    h_cached = fit(cached, data, cache=True)

    for key in h_plain.history:
        np.testing.assert_allclose(h_cached.history[key], h_plain.history[key], rtol=1e-5, atol=1e-6)
    for a, b in zip(cached.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # 12 distinct images: the base ran over them once (3 batches x 13 convs), shuffled
    # training batches and the validation passes all hit the cache afterwards.
    assert len(calls) == 3 * 13
    assert cached._frozen_features.misses == 12
    assert cached._frozen_features.hits == 12 * 3 * 2 - 12


def test_no_cache_when_something_below_the_head_trains(data):
    model, base = seed_model()
    base.trainable = True
    for layer in base.layers[:-2]:
        layer.trainable = False  # only block5_conv3 (and the pool) train
    model.compile(optimizer="adam", loss="binary_crossentropy", cache_frozen_features=True)
    model.train_on_batch(*[a[:4] for a in data])  # the trainable set is read at the first step
    assert model._frozen_features is None  # the base is not frozen: nothing to cache


def test_dropout_ends_the_cached_prefix():
    set_random_seed(0)
    model = Sequential(
        [Dense(4, input_shape=(3,), trainable=False), Dropout(0.5), Dense(2, trainable=False), Dense(1)]
    )
    trained = {model.layers[3]}
    assert frozen_prefix(model, trained) == 2  # the input layer's node and the first Dense


def test_recompiling_empties_the_cache(data):
    model, base = seed_model()
    fit(model, data, cache=True)
    first = model._frozen_features
    assert first is not None and first.misses == 12
    model.compile(optimizer="adam", loss="binary_crossentropy", cache_frozen_features=True)
    assert model._frozen_features is None  # made again at the next training step
    model.train_on_batch(*[a[:4] for a in data])
    assert model._frozen_features is not first and model._frozen_features.misses == 4
