"""Turning ``fit``/``evaluate``/``predict`` inputs into batches, with Keras' epoch rules.

Inputs are arrays (``x`` and ``y``, cut into ``batch_size`` batches, shuffled
each epoch when asked) or a dataset: anything iterable yielding ``(x, y)``
batches, such as :func:`numvgg.utils.image_dataset_from_directory` or a Python
generator. With ``steps_per_epoch`` the same iterator carries on across epochs
(Keras 3's ``EpochIterator``) and starts again once a sized dataset is used
up; a dataset that runs dry mid-epoch stops training with Keras' warning.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import random as nv_random
from ..callbacks.logs import NoSamples, no_sample_logs  # noqa: F401  (re-exported for fit)
from .checks import is_array_data as _is_array_like  # one rule for "arrays"

_RAN_OUT = (
    "Your input ran out of data; interrupting training. Make sure that your dataset or "
    "generator can generate at least `steps_per_epoch * epochs` batches. You may need to "
    "use the `.repeat()` function when building your dataset."
)


def unpack_batch(batch):
    """``(x, y, sample_weight)`` from a batch that is ``x``, ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)`` (missing parts are ``None``)."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return batch[0], batch[1], batch[2]
        raise ValueError(
            f"A batch must be x, (x, y) or (x, y, sample_weight); got a "
            f"{type(batch).__name__} of {len(batch)} items."
        )
    return batch, None, None


def num_samples(x) -> int:
    """How many samples ``x`` holds: an array's length, or the first array's for
    the list of arrays a model with several inputs (or outputs) takes."""
    return len(x[0]) if isinstance(x, (list, tuple)) else len(x)


def take(x, index):
    """``x[index]`` for an array, or for each array of a list (several inputs/outputs)."""
    if x is None:
        return None
    return [a[index] for a in x] if isinstance(x, (list, tuple)) else x[index]


def split_validation(x, y, validation_split: float):
    """Keras' ``validation_split``: the *last* fraction of the arrays, before any shuffling."""
    if not _is_array_like(x):
        raise ValueError(
            "`validation_split` is only supported for array inputs; pass `validation_data` with a dataset."
        )
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
    n = num_samples(x)
    cut = int(math.floor(n * (1.0 - validation_split)))
    if cut in (0, n):
        raise ValueError(
            f"validation_split={validation_split} leaves no training or no validation samples out of {n}."
        )
    train = (take(x, slice(None, cut)), take(y, slice(None, cut)))
    val = (take(x, slice(cut, None)), take(y, slice(cut, None)))
    return train, val


class _ArrayBatches:
    """Re-iterable batches over in-memory arrays, reshuffled at each ``iter()``."""

    def __init__(self, x, y, batch_size, shuffle, sample_weight=None):
        # A model with several inputs (outputs) takes a list of arrays as x (y).
        self.x = list(x) if isinstance(x, (list, tuple)) else np.asarray(x)
        self.y = None if y is None else list(y) if isinstance(y, (list, tuple)) else np.asarray(y)
        self.sample_weight = sample_weight
        if not isinstance(self.x, list) and self.x.ndim == 0:
            raise ValueError("x must be an array of samples (batch axis first), got a scalar.")
        if self.y is not None and num_samples(self.y) != num_samples(self.x):
            raise ValueError(
                f"x and y have different numbers of samples: x has "
                f"{num_samples(self.x)}, y has {num_samples(self.y)}."
            )
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(num_samples(self.x) / self.batch_size)

    def __iter__(self):
        n = num_samples(self.x)
        order = nv_random.generator().permutation(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            idx = (
                slice(start, start + self.batch_size)
                if order is None
                else order[start : start + self.batch_size]
            )
            yield (
                take(self.x, idx),
                take(self.y, idx),
                None if self.sample_weight is None else self.sample_weight[idx],
            )


class EpochIterator:
    """Yields ``(step, (x_batch, y_batch, sample_weight_batch))`` for one epoch at a time."""

    def __init__(
        self,
        x,
        y=None,
        batch_size=None,
        steps_per_epoch=None,
        shuffle=False,
        need_targets=True,
        sample_weight=None,
    ):
        if x is None:
            raise ValueError("No input data: pass x (and y), or a dataset of (x, y) batches.")
        if steps_per_epoch is not None and (not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0):
            raise ValueError(f"steps_per_epoch must be a positive int or None, got {steps_per_epoch!r}")
        if _is_array_like(x):
            if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
                raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
            self.source = _ArrayBatches(x, y, batch_size or 32, shuffle, sample_weight)
        else:
            if y is not None:
                raise ValueError(
                    "When x is a dataset or generator, y must be None: the targets "
                    "come from the dataset's (x, y) batches."
                )
            if batch_size is not None:
                warnings.warn(
                    "batch_size is ignored when x is a dataset: its batches are used as they are.",
                    stacklevel=3,
                )
            self.source = x
        self.steps_per_epoch = steps_per_epoch
        self.need_targets = need_targets
        try:
            self._num_batches = len(self.source)
        except TypeError:
            self._num_batches = None
        self._iterator = None
        self._seen = 0
        self.ran_out = False  # the last epoch got no batch at all

    @property
    def num_batches(self):
        """Steps in an epoch as far as it is known (for the progress bar)."""
        return self.steps_per_epoch or self._num_batches

    def enumerate_epoch(self):
        """Yield ``(step, (x, y))`` for one epoch.

        An epoch that gets no batch at all sets ``ran_out`` and warns with
        Keras' "ran out of data" message: ``fit`` then stops (a one-shot
        generator used up by the first epoch, as Keras does), and
        ``evaluate`` logs :class:`NoSamples` instead of a Mean over nothing.
        """
        steps = self.steps_per_epoch or self._num_batches
        if self._iterator is None or self.steps_per_epoch is None:
            self._iterator = iter(self.source)
            self._seen = 0
        step = 0
        warned = False
        while steps is None or step < steps:
            if self._num_batches and self._seen >= self._num_batches:
                if self.steps_per_epoch:
                    warnings.warn(_RAN_OUT, stacklevel=3)
                    warned = True
                break
            try:
                batch = next(self._iterator)
            except StopIteration:
                if self.steps_per_epoch:
                    warnings.warn(_RAN_OUT, stacklevel=3)
                    warned = True
                self._iterator = None
                break
            self._seen += 1
            yield step, unpack_batch(batch)
            step += 1
        if self._num_batches and self._seen >= self._num_batches:
            self._iterator = None
        self.ran_out = step == 0
        if self.ran_out and not warned:
            warnings.warn(_RAN_OUT, stacklevel=3)
