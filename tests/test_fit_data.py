"""fit() on a directory dataset equals fit() on the same arrays; Keras' epoch rules."""

import numpy as np
import pytest

from numvgg.applications.vgg16 import preprocess_input
from numvgg.demo import make_demo_images
from numvgg.layers import Conv2D, Dense, GlobalAveragePooling2D
from numvgg.models import Sequential
from numvgg.optimizers import SGD
from numvgg.random import set_random_seed
from numvgg.utils import image_dataset_from_directory


def small_model():
    set_random_seed(3)
    model = Sequential(
        [
            Conv2D(4, 3, padding="same", activation="relu", input_shape=(16, 16, 3)),
            GlobalAveragePooling2D(),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=SGD(learning_rate=1e-4), loss="binary_crossentropy", metrics=["acc"])
    return model


@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_images")
    return make_demo_images(str(root), n_train=5, n_val=3, size=16, seed=5)


def test_fit_on_directory_dataset_equals_fit_on_arrays(image_dirs):
    train_dir, val_dir = image_dirs
    ds = image_dataset_from_directory(
        train_dir, label_mode="binary", batch_size=4, image_size=(16, 16), shuffle=False, verbose=False
    )
    ds = ds.map(lambda x, y: (preprocess_input(x), y))
    xs, ys = zip(*list(ds))
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (10, 16, 16, 3) and y.shape == (10, 1)

    h_ds = small_model().fit(ds, epochs=3, validation_data=ds, verbose=0)
    h_arr = small_model().fit(x, y, batch_size=4, epochs=3, shuffle=False, validation_data=(x, y), verbose=0)
    assert h_ds.history.keys() == h_arr.history.keys()
    for key in h_arr.history:
        assert h_ds.history[key] == h_arr.history[key], key


def test_steps_per_epoch_carries_the_iterator_across_epochs_like_keras():
    seen = []

    class Counting:
        def __len__(self):
            return 3

        def __iter__(self):
            for i in range(3):
                seen.append(i)
                yield np.full((2, 16, 16, 3), i, np.float32), np.zeros((2, 1), np.float32)

    model = small_model()
    model.fit(Counting(), epochs=3, steps_per_epoch=2, verbose=0)
    # Keras 3: epoch 1 takes batches 0,1; epoch 2 takes batch 2 and the data is used up
    # (so the epoch ends early); epoch 3 starts a fresh pass.
    assert seen == [0, 1, 2, 0, 1]


def test_generator_that_runs_dry_warns_like_keras():
    def gen():
        for _ in range(3):
            yield np.zeros((2, 16, 16, 3), np.float32), np.zeros((2, 1), np.float32)

    model = small_model()
    with pytest.warns(UserWarning, match="ran out of data"):
        model.fit(gen(), epochs=2, steps_per_epoch=2, verbose=0)


def test_validation_split_takes_the_last_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 16, 16, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=(10, 1)).astype(np.float32)
    h1 = small_model().fit(x, y, epochs=1, validation_split=0.2, shuffle=False, verbose=0)
    h2 = small_model().fit(x[:8], y[:8], epochs=1, validation_data=(x[8:], y[8:]), shuffle=False, verbose=0)
    assert h1.history == h2.history


def test_predict_and_evaluate_shapes_and_values():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 16, 16, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=(7, 1)).astype(np.float32)
    model = small_model()
    p = model.predict(x, batch_size=3, verbose=0)
    assert p.shape == (7, 1)
    np.testing.assert_array_equal(p, model(x))
    loss, acc = model.evaluate(x, y, batch_size=3, verbose=0)
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    expected = -np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    assert loss == pytest.approx(expected, rel=1e-4)
    assert acc == pytest.approx(np.mean((p > 0.5) == y))


def test_fit_with_mismatched_batch_sizes_names_both():
    model = small_model()
    with pytest.raises(ValueError, match="x has 4.*y has 3"):
        model.fit(np.zeros((4, 16, 16, 3), np.float32), np.zeros((3, 1)), verbose=0)
