"""``Dataset``: a small input pipeline with tf.data's method names and habits.

Keras scripts chain methods onto their datasets::

    train_ds = (image_dataset_from_directory(...)
                .map(lambda x, y: (preprocess_input(x), y), num_parallel_calls=AUTOTUNE)
                .cache()
                .prefetch(AUTOTUNE))

numvgg's :class:`Dataset` has the same methods with tf.data's meaning, so such
a script runs unchanged. Each method returns a *new* dataset that wraps the
old one; nothing is read until the dataset is iterated, and every ``iter()``
is a new pass (an epoch).

Elements are NumPy arrays, or tuples of them such as ``(images, labels)``.
They stay NumPy arrays all the way: there is no tensor type, so the
``.numpy()`` calls of TensorFlow code are not needed (``as_numpy_iterator``
exists for scripts that use it, and just iterates).

What each method does:

===================================  =====================================================
``from_tensor_slices(arrays)``       one element per row of the arrays (a tuple of
                                     arrays gives tuples)
``batch(n, drop_remainder=False)``   stack ``n`` elements along a new first axis
``unbatch()``                        split batches back into elements
``map(fn, num_parallel_calls)``      ``fn(*element)`` for tuples, ``fn(element)``
                                     otherwise; with ``num_parallel_calls`` in threads,
                                     keeping the order
``shuffle(buffer_size, seed, ...)``  tf.data's buffer shuffle (below)
``repeat(count=None)``               ``count`` passes (``None``: for ever)
``take(n)`` / ``skip(n)``            the first ``n`` elements / all but them
``concatenate(other)``               this dataset's elements, then ``other``'s
``cache(filename="")``               keep the first full pass in memory, or in a file
``prefetch(n)``                      prepare up to ``n`` elements in a background thread
``cardinality()``                    number of elements, ``INFINITE`` (-1) or ``UNKNOWN`` (-2)
===================================  =====================================================

**Shuffling.** ``shuffle(buffer_size)`` keeps a buffer of ``buffer_size``
elements and yields a random one of them, refilling its place with the next
element, as tf.data does: a buffer as large as the dataset gives a uniform
permutation; a small buffer only mixes neighbours. The random numbers are
NumPy's, so the order is not TF's (TF's generator cannot be reproduced
without TF). With ``seed`` the orders are repeatable; with
``reshuffle_each_iteration=True`` (default) each pass draws a new order.
Without ``seed`` the generator is seeded from :mod:`numvgg.random`, so
``numvgg.random.set_random_seed`` makes it repeatable too.

**Parallel map.** Decoding and augmenting images spends its time in NumPy,
Pillow and libjpeg-turbo, which release the GIL, so threads really run in
parallel. ``num_parallel_calls=AUTOTUNE`` uses one thread per CPU.
The elements come out in order (tf.data's ``deterministic=True``).
"""

from __future__ import annotations

import itertools
import os
import queue
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import random as nv_random

#: Pass as ``num_parallel_calls`` or ``prefetch`` buffer size: numvgg picks the number.
AUTOTUNE = -1
#: ``cardinality()`` of a dataset that never ends (``repeat()``).
INFINITE = -1
#: ``cardinality()`` when the number of elements cannot be known without reading them.
UNKNOWN = -2


def _threads_for(num_parallel_calls) -> int:
    """``AUTOTUNE`` -> one thread per CPU; a positive int -> that many."""
    if num_parallel_calls == AUTOTUNE:
        return max(1, os.cpu_count() or 1)
    if not isinstance(num_parallel_calls, (int, np.integer)) or num_parallel_calls <= 0:
        raise ValueError(
            "`num_parallel_calls` must be None, a positive int or "
            f"numvgg.data.AUTOTUNE. Received: num_parallel_calls={num_parallel_calls!r}"
        )
    return int(num_parallel_calls)


def _check_count(name: str, value, allow_minus_one: bool = True) -> int:
    if not isinstance(value, (int, np.integer)) or (value < -1 if allow_minus_one else value <= 0):
        rule = "an int >= -1 (-1: all)" if allow_minus_one else "a positive int"
        raise ValueError(f"`{name}` must be {rule}. Received: {name}={value!r}")
    return int(value)


class Dataset:
    """Base class of every numvgg dataset: tf.data's transformations.

    A subclass implements ``_iterate()`` (a generator over one pass) and
    ``cardinality()``.
    """

    # -- what a subclass provides ------------------------------------------------
    def _iterate(self):
        """One pass over the elements (a generator)."""
        raise TypeError(f"{type(self).__name__} must implement _iterate()")

    def cardinality(self) -> int:
        """Number of elements, or ``INFINITE`` (-1) / ``UNKNOWN`` (-2)."""
        return UNKNOWN

    # -- iteration ------------------------------------------------------------------
    def __iter__(self):
        return iter(self._iterate())

    def as_numpy_iterator(self):
        """tf.data's spelling of ``iter(ds)``: the elements are NumPy arrays already."""
        return iter(self)

    def __len__(self) -> int:
        """Number of elements; a ``TypeError`` when infinite or unknown (as tf.data)."""
        n = self.cardinality()
        if n == INFINITE:
            raise TypeError("The dataset is infinite.")
        if n == UNKNOWN:
            raise TypeError("The dataset length is unknown.")
        return n

    # -- constructors -------------------------------------------------------------
    @staticmethod
    def from_tensor_slices(tensors) -> Dataset:
        """One element per row: ``from_tensor_slices((x, y))`` yields ``(x[i], y[i])``."""
        return SliceDataset(tensors)

    # -- transformations ---------------------------------------------------------
    def batch(self, batch_size: int, drop_remainder: bool = False) -> Dataset:
        """Stack ``batch_size`` consecutive elements (the last batch may be smaller)."""
        return BatchDataset(self, _check_count("batch_size", batch_size, False), drop_remainder)

    def unbatch(self) -> Dataset:
        """Split each element along its first axis: a batch of ``B`` gives ``B`` elements."""
        return UnbatchDataset(self)

    def map(self, map_func, num_parallel_calls=None, deterministic=None) -> Dataset:
        """Apply ``map_func`` to every element (``map_func(*element)`` for a tuple).

        ``num_parallel_calls``: ``None`` runs in the calling thread; a positive
        int or ``AUTOTUNE`` runs that many threads, order kept.
        ``deterministic`` is accepted for tf.data compatibility; the order is
        always kept.
        """
        if not callable(map_func):
            raise TypeError(f"map() needs a function, got {type(map_func).__name__}.")
        threads = None if num_parallel_calls is None else _threads_for(num_parallel_calls)
        return MapDataset(self, map_func, threads)

    def shuffle(self, buffer_size: int, seed=None, reshuffle_each_iteration: bool = True) -> Dataset:
        """Shuffle with a buffer of ``buffer_size`` elements (see the module docstring)."""
        if buffer_size == AUTOTUNE:
            raise ValueError(
                "`buffer_size` of shuffle() must be a positive int (AUTOTUNE is for map and prefetch)."
            )
        return ShuffleDataset(
            self, _check_count("buffer_size", buffer_size, False), seed, bool(reshuffle_each_iteration)
        )

    def repeat(self, count=None) -> Dataset:
        """``count`` passes over the data (``None`` or -1: for ever)."""
        count = None if count is None or count == -1 else _check_count("count", count)
        return RepeatDataset(self, count)

    def take(self, count: int) -> Dataset:
        """The first ``count`` elements of each pass (-1: all)."""
        return TakeDataset(self, _check_count("count", count))

    def skip(self, count: int) -> Dataset:
        """All but the first ``count`` elements of each pass (-1: skip all)."""
        return SkipDataset(self, _check_count("count", count))

    def concatenate(self, dataset: Dataset) -> Dataset:
        """This dataset's elements, then ``dataset``'s."""
        if not isinstance(dataset, Dataset):
            raise TypeError(f"concatenate() needs a numvgg Dataset, got {type(dataset).__name__}.")
        return ConcatenateDataset(self, dataset)

    def cache(self, filename: str = "") -> Dataset:
        """Keep the elements of the first complete pass: in memory (``""``) or in ``filename``.

        Later passes replay them without running the steps before ``cache``
        (decoding, ``map``). A file cache is written when the first pass
        completes (atomically) and read by every later pass, also in a new
        process. Put random augmentation *after* ``cache``, or it is frozen.
        """
        return CacheDataset(self, os.fspath(filename))

    def prefetch(self, buffer_size) -> Dataset:
        """Prepare up to ``buffer_size`` elements in a background thread (``AUTOTUNE``: 2)."""
        size = 2 if buffer_size == AUTOTUNE else _check_count("buffer_size", buffer_size, False)
        return PrefetchDataset(self, size)

    def __repr__(self) -> str:
        n = self.cardinality()
        size = {INFINITE: "infinite", UNKNOWN: "unknown size"}.get(n, f"{n} elements")
        return f"<{type(self).__name__} {size}>"


# -- element structure helpers ------------------------------------------------------------


def _stack(elements):
    """A list of elements -> one element with a new first axis (tuples stacked item-wise)."""
    first = elements[0]
    if isinstance(first, tuple):
        return tuple(_stack([e[i] for e in elements]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _stack([e[k] for e in elements]) for k in first}
    return np.stack([np.asarray(e) for e in elements])  # (B, ...)


def _rows(element):
    """Split an element along its first axis into a list of elements."""
    if isinstance(element, tuple):
        parts = [_rows(e) for e in element]
        sizes = {len(p) for p in parts}
        if len(sizes) != 1:
            raise ValueError(
                f"unbatch(): the parts of an element have different batch sizes {sorted(sizes)}."
            )
        return [tuple(p[i] for p in parts) for i in range(sizes.pop())]
    if isinstance(element, dict):
        keys = list(element)
        parts = [_rows(element[k]) for k in keys]
        return [dict(zip(keys, row)) for row in zip(*parts)]
    element = np.asarray(element)
    if element.ndim == 0:
        raise ValueError("unbatch() needs elements with a batch axis; got a scalar.")
    return list(element)


def _num_rows(tensors) -> int:
    if isinstance(tensors, (tuple, list)):
        sizes = {_num_rows(t) for t in tensors}
    elif isinstance(tensors, dict):
        sizes = {_num_rows(t) for t in tensors.values()}
    else:
        return len(np.asarray(tensors))
    if len(sizes) != 1:
        raise ValueError(
            f"from_tensor_slices(): the arrays have different first dimensions {sorted(sizes)}; "
            "they must all have the same number of rows."
        )
    return sizes.pop()


def _row(tensors, i):
    if isinstance(tensors, (tuple, list)):
        return tuple(_row(t, i) for t in tensors)
    if isinstance(tensors, dict):
        return {k: _row(t, i) for k, t in tensors.items()}
    return _read_only(tensors[i])


def _read_only(value):
    """A read-only view of an array the dataset keeps (the user's tensors, a cache).

    tf.data's elements are immutable; NumPy arrays are not, and a map function
    that writes into its input -- Keras' ``preprocess_input`` does, on float
    NumPy arrays -- would otherwise change the user's data or the cache at every
    pass. Such a function gets a read-only array and works on a copy instead.
    """
    if isinstance(value, (tuple, list)):
        return type(value)(_read_only(v) for v in value)
    if isinstance(value, dict):
        return {k: _read_only(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        view = value.view()
        view.flags.writeable = False
        return view
    return value


def _call(fn, element):
    return fn(*element) if isinstance(element, tuple) else fn(element)


# -- the datasets -------------------------------------------------------------------------


class SliceDataset(Dataset):
    """Rows of in-memory arrays (``Dataset.from_tensor_slices``)."""

    def __init__(self, tensors):
        if isinstance(tensors, list):
            tensors = np.asarray(tensors)  # tf.data: a list is one tensor, not a tuple
        self.tensors = (
            tuple(np.asarray(t) for t in tensors)
            if isinstance(tensors, tuple)
            else {k: np.asarray(t) for k, t in tensors.items()}
            if isinstance(tensors, dict)
            else np.asarray(tensors)
        )
        if not isinstance(self.tensors, (tuple, dict)) and self.tensors.ndim == 0:
            raise ValueError("from_tensor_slices() needs arrays with a first axis to slice; got a scalar.")
        self._n = _num_rows(self.tensors)

    def cardinality(self):
        return self._n

    def _iterate(self):
        for i in range(self._n):
            yield _row(self.tensors, i)


class _Wrapper(Dataset):
    """A dataset made from another one (``self.input``)."""

    def __init__(self, input_dataset: Dataset):
        self.input = input_dataset


class BatchDataset(_Wrapper):
    def __init__(self, input_dataset, batch_size, drop_remainder):
        super().__init__(input_dataset)
        self.batch_size, self.drop_remainder = batch_size, bool(drop_remainder)

    def cardinality(self):
        n = self.input.cardinality()
        if n < 0:
            return n
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

    def _iterate(self):
        it = iter(self.input)
        while True:
            chunk = list(itertools.islice(it, self.batch_size))
            if not chunk or (self.drop_remainder and len(chunk) < self.batch_size):
                return
            yield _stack(chunk)


class UnbatchDataset(_Wrapper):
    def cardinality(self):
        n = self.input.cardinality()
        return INFINITE if n == INFINITE else UNKNOWN

    def _iterate(self):
        for element in self.input:
            yield from _rows(element)


class MapDataset(_Wrapper):
    def __init__(self, input_dataset, fn, threads):
        super().__init__(input_dataset)
        self.fn, self.threads = fn, threads

    def cardinality(self):
        return self.input.cardinality()

    def _iterate(self):
        if self.threads is None:
            for element in self.input:
                yield _call(self.fn, element)
            return
        # Keep at most 2 * threads calls in flight: bounded memory, results in order.
        with ThreadPoolExecutor(self.threads, thread_name_prefix="numvgg-map") as pool:
            pending = []
            try:
                for element in self.input:
                    pending.append(pool.submit(_call, self.fn, element))
                    if len(pending) >= 2 * self.threads:
                        yield pending.pop(0).result()
                while pending:
                    yield pending.pop(0).result()
            finally:
                for future in pending:  # the pass was abandoned: drop queued work
                    future.cancel()


class ShuffleDataset(_Wrapper):
    def __init__(self, input_dataset, buffer_size, seed, reshuffle_each_iteration):
        super().__init__(input_dataset)
        self.buffer_size = buffer_size
        self.seed = int(nv_random.generator().integers(2**31)) if seed is None else int(seed)
        self.reshuffle_each_iteration = reshuffle_each_iteration
        self._passes = 0

    def cardinality(self):
        return self.input.cardinality()

    def _iterate(self):
        rng = np.random.default_rng((self.seed, self._passes))
        if self.reshuffle_each_iteration:
            self._passes += 1
        buffer = []
        for element in self.input:
            if len(buffer) < self.buffer_size:
                buffer.append(element)
                continue
            k = rng.integers(len(buffer))
            yield buffer[k]
            buffer[k] = element  # the next element takes the freed place
        while buffer:  # input exhausted: drain the buffer at random
            k = rng.integers(len(buffer))
            buffer[k], buffer[-1] = buffer[-1], buffer[k]
            yield buffer.pop()


class RepeatDataset(_Wrapper):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self.count = count

    def cardinality(self):
        n = self.input.cardinality()
        if self.count is None:
            return 0 if n == 0 else INFINITE
        return n if n < 0 else n * self.count

    def _iterate(self):
        passes = itertools.count() if self.count is None else range(self.count)
        for _ in passes:
            produced = False
            for element in self.input:
                produced = True
                yield element
            if not produced:  # an empty dataset repeated for ever is empty
                return


class TakeDataset(_Wrapper):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self.count = count

    def cardinality(self):
        n = self.input.cardinality()
        if self.count == -1:
            return n
        if n == INFINITE:
            return self.count
        return n if n < 0 else min(n, self.count)

    def _iterate(self):
        if self.count == -1:
            yield from self.input
        else:
            yield from itertools.islice(self.input, self.count)


class SkipDataset(_Wrapper):
    def __init__(self, input_dataset, count):
        super().__init__(input_dataset)
        self.count = count

    def cardinality(self):
        n = self.input.cardinality()
        if n < 0:
            return n
        return 0 if self.count == -1 else max(0, n - self.count)

    def _iterate(self):
        if self.count == -1:
            return
        yield from itertools.islice(self.input, self.count, None)


class ConcatenateDataset(_Wrapper):
    def __init__(self, first, second):
        super().__init__(first)
        self.second = second

    def cardinality(self):
        a, b = self.input.cardinality(), self.second.cardinality()
        if INFINITE in (a, b):
            return INFINITE
        return UNKNOWN if UNKNOWN in (a, b) else a + b

    def _iterate(self):
        yield from self.input
        yield from self.second


class CacheDataset(_Wrapper):
    """Replays the first complete pass (memory, or an ``.npz`` file written atomically)."""

    def __init__(self, input_dataset, filename):
        super().__init__(input_dataset)
        self.filename = filename
        self._elements = None

    def cardinality(self):
        return self.input.cardinality() if self._elements is None else len(self._elements)

    def _iterate(self):
        if self._elements is None and self.filename and os.path.exists(self._path()):
            self._elements = self._read()
        if self._elements is not None:
            for element in self._elements:
                yield _read_only(element)
            return
        seen = []
        for element in self.input:
            seen.append(element)
            yield _read_only(element)
        # Only a complete pass is kept (a pass cut short by take() would lose elements).
        self._elements = seen
        if self.filename:
            self._write(seen)

    def _path(self) -> str:
        return self.filename if self.filename.endswith(".npz") else self.filename + ".npz"

    def _write(self, elements) -> None:
        arrays = {}
        for i, element in enumerate(elements):
            parts = element if isinstance(element, tuple) else (element,)
            arrays[f"n{i}"] = np.asarray(len(parts) if isinstance(element, tuple) else -1)
            for j, part in enumerate(parts):
                part = np.asarray(part)
                if part.dtype == object:
                    raise TypeError(
                        f"cache('{self.filename}'): a file cache holds arrays or tuples of "
                        f"arrays; element {i} has a {type(element).__name__} part that is "
                        "not a numeric array. Use cache() (in memory) for other elements."
                    )
                arrays[f"e{i}_{j}"] = part
        folder = os.path.dirname(os.path.abspath(self._path()))
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, self._path())  # readers never see a half-written cache
        except BaseException:
            os.unlink(tmp)
            raise

    def _read(self):
        with np.load(self._path(), allow_pickle=False) as data:
            elements, i = [], 0
            while f"n{i}" in data:
                n = int(data[f"n{i}"])
                if n == -1:
                    elements.append(data[f"e{i}_0"])
                else:
                    elements.append(tuple(data[f"e{i}_{j}"] for j in range(n)))
                i += 1
        return elements


class PrefetchDataset(_Wrapper):
    """Runs the input pipeline in a background thread, ``buffer_size`` elements ahead."""

    _DONE = object()

    def __init__(self, input_dataset, buffer_size):
        super().__init__(input_dataset)
        self.buffer_size = buffer_size

    def cardinality(self):
        return self.input.cardinality()

    def _iterate(self):
        slots = queue.Queue(maxsize=self.buffer_size)
        stop = threading.Event()

        def produce():
            try:
                for element in self.input:
                    while not stop.is_set():
                        try:
                            slots.put((element, None), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                item = (self._DONE, None)
            except BaseException as e:  # re-raised in the consumer, with its traceback
                item = (self._DONE, e)
            while not stop.is_set():
                try:
                    slots.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        worker = threading.Thread(target=produce, name="numvgg-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                element, error = slots.get()
                if error is not None:
                    raise error
                if element is self._DONE:
                    return
                yield element
        finally:
            stop.set()  # also when the consumer stops early
            worker.join()
