"""numvgg.data.Dataset against tf.data: the same chains give the same elements."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

from numvgg.data import (
    AUTOTUNE,
    INFINITE,
    UNKNOWN,
    Dataset,
    image_dataset_from_directory,
)


def _listify(ds, tf_side=False):
    out = []
    for element in ds:
        if isinstance(element, tuple):
            out.append(tuple(np.asarray(e.numpy() if tf_side else e).tolist() for e in element))
        else:
            out.append(np.asarray(element.numpy() if tf_side else element).tolist())
    return out


# Each chain is applied to both libraries' datasets of the same slices.
CHAINS = {
    "batch": lambda d: d.batch(3),
    "batch_drop": lambda d: d.batch(3, drop_remainder=True),
    "batch_unbatch": lambda d: d.batch(4).unbatch(),
    "take_skip": lambda d: d.skip(2).take(5),
    "take_all": lambda d: d.take(-1),
    "skip_all": lambda d: d.skip(-1),
    "repeat_batch": lambda d: d.repeat(2).batch(4),
    "concatenate": lambda d: d.take(3).concatenate(d.skip(8)),
    "map": lambda d: d.map(lambda x, y: (x * 2 + 1, y - 1)),
    "map_parallel": lambda d: d.map(lambda x, y: (x * x, y), num_parallel_calls=AUTOTUNE).batch(5),
    "cache_prefetch": lambda d: d.cache().batch(2).prefetch(AUTOTUNE),
    "repeat_take": lambda d: d.repeat().take(23),
}


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(CHAINS))
def test_chains_equal_tf_data(tf, name):
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10, dtype=np.int32)
    ours = CHAINS[name](Dataset.from_tensor_slices((x, y)))
    theirs = CHAINS[name](tf.data.Dataset.from_tensor_slices((x, y)))
    assert _listify(ours) == _listify(theirs, tf_side=True)
    assert ours.cardinality() == int(theirs.cardinality())


@pytest.mark.keras
def test_cardinality_constants_are_tf_data(tf):
    assert INFINITE == int(tf.data.INFINITE_CARDINALITY) and UNKNOWN == int(tf.data.UNKNOWN_CARDINALITY)
    assert AUTOTUNE == tf.data.AUTOTUNE
    ds = Dataset.from_tensor_slices(np.arange(5))
    assert ds.repeat().cardinality() == INFINITE and ds.batch(2).unbatch().cardinality() == UNKNOWN
    with pytest.raises(TypeError, match="infinite"):
        len(ds.repeat())
    assert len(ds.batch(2)) == 3


def test_shuffle_buffer_semantics():
    ds = Dataset.from_tensor_slices(np.arange(50))
    full = ds.shuffle(50, seed=3)
    first, second = list(full), list(full)
    assert sorted(first) == list(range(50)) and first != second  # a new order each pass
    assert list(ds.shuffle(50, seed=3)) == first  # repeatable from the seed
    fixed = ds.shuffle(50, seed=3, reshuffle_each_iteration=False)
    assert list(fixed) == list(fixed)
    # A buffer of 1 does not shuffle; a buffer of 5 only mixes neighbours: element k
    # can leave no earlier than position k - 4 (it enters the buffer after k - 4 outputs).
    assert list(ds.shuffle(1, seed=0)) == list(range(50))
    order = list(ds.shuffle(5, seed=0))
    assert all(position >= value - 4 for position, value in enumerate(order))


def test_shuffle_without_seed_follows_numvgg_random():
    from numvgg import random as nv_random

    nv_random.set_random_seed(7)
    a = list(Dataset.from_tensor_slices(np.arange(30)).shuffle(30))
    nv_random.set_random_seed(7)
    b = list(Dataset.from_tensor_slices(np.arange(30)).shuffle(30))
    assert a == b


def test_parallel_map_runs_in_threads_and_keeps_order():
    threads, lock = set(), threading.Lock()

    def slow(x):
        with lock:
            threads.add(threading.get_ident())
        time.sleep(0.01 * (x % 3))  # later elements may finish first
        return x * 10

    out = list(Dataset.from_tensor_slices(np.arange(24)).map(slow, num_parallel_calls=4))
    assert out == [x * 10 for x in range(24)]
    assert len(threads) > 1 and threading.get_ident() not in threads


def test_cache_runs_the_pipeline_once_in_memory_and_in_a_file(tmp_path):
    calls = []

    def count(x):
        calls.append(int(x))
        return x + 1

    ds = Dataset.from_tensor_slices(np.arange(6)).map(count).cache()
    assert list(ds) == list(ds) == [1, 2, 3, 4, 5, 6] and len(calls) == 6
    path = str(tmp_path / "feats")
    on_disk = (
        Dataset.from_tensor_slices((np.arange(4.0), np.arange(4))).map(lambda a, b: (count(a), b)).cache(path)
    )
    assert _listify(on_disk) == [(1.0, 0), (2.0, 1), (3.0, 2), (4.0, 3)]
    again = (
        Dataset.from_tensor_slices((np.arange(4.0), np.arange(4))).map(lambda a, b: (count(a), b)).cache(path)
    )  # a new pipeline: reads the file
    calls.clear()
    assert _listify(again) == _listify(on_disk) and calls == []


def test_partial_pass_is_not_cached():
    ds = Dataset.from_tensor_slices(np.arange(5)).cache()
    assert list(ds.take(2)) == [0, 1]
    assert list(ds) == [0, 1, 2, 3, 4]


def test_prefetch_passes_errors_and_stops_its_thread():
    def boom(x):
        if x == 3:
            raise ValueError("bad element 3")
        return x

    before = threading.active_count()
    with pytest.raises(ValueError, match="bad element 3"):
        list(Dataset.from_tensor_slices(np.arange(6)).map(boom).prefetch(2))
    it = iter(Dataset.from_tensor_slices(np.arange(100)).prefetch(4))
    assert next(it) == 0
    it.close()  # abandoning a pass ends the producer
    assert threading.active_count() == before


def test_bad_arguments_name_the_argument():
    ds = Dataset.from_tensor_slices(np.arange(5))
    with pytest.raises(ValueError, match="batch_size"):
        ds.batch(0)
    with pytest.raises(ValueError, match="num_parallel_calls"):
        ds.map(abs, num_parallel_calls=0)
    with pytest.raises(ValueError, match="buffer_size"):
        ds.shuffle(0)
    with pytest.raises(ValueError, match="different first dimensions"):
        Dataset.from_tensor_slices((np.arange(3), np.arange(4)))
    with pytest.raises(TypeError, match="concatenate"):
        ds.concatenate([1, 2])


def test_image_dataset_chains_like_a_keras_script(tmp_path):
    for i in range(12):
        cls = tmp_path / ("a" if i < 6 else "b")
        cls.mkdir(exist_ok=True)
        Image.fromarray(np.full((5, 7, 3), i, np.uint8)).save(cls / f"{i:02d}.png")
    ds = image_dataset_from_directory(tmp_path, image_size=(5, 7), batch_size=4, seed=1, verbose=False)
    chained = (
        ds.unbatch()
        .shuffle(100, seed=0)
        .batch(3)
        .map(lambda x, y: (x / 255.0, y), num_parallel_calls=AUTOTUNE)
        .cache()
        .prefetch(AUTOTUNE)
    )
    batches = list(chained)
    assert [len(x) for x, _ in batches] == [3, 3, 3, 3]
    ids = sorted(round(float(v) * 255) for x, _ in batches for v in x[:, 0, 0, 0])
    assert ids == list(range(12))
    for x, y in batches:  # labels still follow their images
        np.testing.assert_array_equal(y, (np.round(x[:, 0, 0, 0] * 255) >= 6).astype(np.int32))
    assert ds.class_names == ["a", "b"] and not hasattr(chained, "class_names")  # as in Keras
    assert isinstance(next(iter(ds.as_numpy_iterator()))[0], np.ndarray)


def test_fit_evaluate_predict_iterate_these_datasets():
    from numvgg.layers import Dense
    from numvgg.models import Sequential
    from numvgg.optimizers import Adam

    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 3)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    model = Sequential([Dense(1, activation="sigmoid", input_shape=(3,))])
    model.compile(optimizer=Adam(1e-2), loss="binary_crossentropy", metrics=["acc"])
    train = Dataset.from_tensor_slices((x, y)).shuffle(12, seed=0).batch(4).prefetch(AUTOTUNE)
    history = model.fit(
        train, epochs=2, verbose=0, validation_data=Dataset.from_tensor_slices((x, y)).batch(6)
    )
    assert len(history.history["loss"]) == 2 and "val_acc" in history.history
    endless = Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    model.fit(endless, epochs=1, steps_per_epoch=5, verbose=0)  # tf.data's repeat() recipe
    loss, acc = model.evaluate(Dataset.from_tensor_slices((x, y)).batch(5), verbose=0)
    assert np.isfinite(loss) and 0.0 <= acc <= 1.0
    predictions = model.predict(Dataset.from_tensor_slices(x).batch(5), verbose=0)
    np.testing.assert_allclose(predictions, model.predict(x, verbose=0), rtol=1e-6)


def test_file_cache_refuses_what_it_cannot_store(tmp_path):
    ds = Dataset.from_tensor_slices({"a": np.arange(3)}).cache(str(tmp_path / "c"))
    with pytest.raises(TypeError, match="file cache holds arrays or tuples"):
        list(ds)
    assert not (tmp_path / "c.npz").exists()


def test_map_that_writes_in_place_cannot_change_the_data_or_the_cache():
    """Keras' preprocess_input writes into float NumPy arrays; tf.data's elements are
    immutable, so numvgg hands out read-only views of what it keeps."""
    from numvgg.applications.vgg16 import preprocess_input

    x = np.random.default_rng(0).uniform(0, 255, (6, 4, 4, 3)).astype("float32")
    keep = x.copy()
    for ds in (
        Dataset.from_tensor_slices(x).map(preprocess_input).batch(3),
        Dataset.from_tensor_slices(x).batch(3).cache().map(preprocess_input),
    ):
        first, second = list(ds), list(ds)
        np.testing.assert_array_equal(x, keep)
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b)
