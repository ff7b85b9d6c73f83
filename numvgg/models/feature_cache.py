"""Keras' "fast feature extraction", inside ``fit``: run a frozen conv base once per image.

In phase 1 of the seed's recipe nothing below the new head learns, so the conv
base maps each image to the same features in every epoch. With
``model.compile(..., cache_frozen_features=True)`` the model keeps the output
of its frozen bottom layers per input sample and, from the second epoch on,
runs only the head: an epoch then costs about as much as the head alone.

Samples are recognised by their *content* (a 128-bit BLAKE2 digest of the
array), not by their position, so shuffled or re-batched datasets hit the cache
and an augmented image simply misses it (and is computed, correctly). The cache
is used only for the bottom layers that hold no trained weight and no
training-time randomness (``Dropout``); it is emptied by every ``compile()``.
"""
from __future__ import annotations

import hashlib

import numpy as np


def _is_random_in_training(layer) -> bool:
    if hasattr(layer, "layers"):
        return any(_is_random_in_training(sub) for sub in layer.layers)
    return getattr(layer, "rate", 0.0) > 0.0      # Dropout


def _contains(layer, ids) -> bool:
    if hasattr(layer, "layers"):
        return any(_contains(sub, ids) for sub in layer.layers)
    return id(layer) in ids


def frozen_prefix(model, train_ids) -> int:
    """How many of ``model.layers``, from the bottom, are fixed functions of
    their input while training: no trained weight inside, no dropout."""
    k = 0
    for layer in model.layers:
        if _contains(layer, train_ids) or _is_random_in_training(layer):
            break
        k += 1
    return k


class FrozenFeatureCache:
    """The output of ``model.layers[:n_layers]`` per input sample.

    Args:
        model: a built ``Sequential``.
        n_layers: the frozen prefix length (see :func:`frozen_prefix`).
        max_bytes: stop adding entries beyond this much cached data (lookups
            still work; new samples are then computed every time).
    """

    def __init__(self, model, n_layers: int, max_bytes: int = 2 * 2**30):
        self.layers = model.layers[:n_layers]
        self.n_layers = n_layers
        self.max_bytes = max_bytes
        self._store: dict[bytes, np.ndarray] = {}
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _key(sample: np.ndarray) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((sample.shape, sample.dtype.str)).encode())
        h.update(np.ascontiguousarray(sample).data)
        return h.digest()

    def _compute(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer(x)
            layer.clear_cache()
        return x

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Features of the batch ``x``: cached rows reused, the others computed in one go."""
        x = np.asarray(x)
        keys = [self._key(sample) for sample in x]
        missing = [i for i, k in enumerate(keys) if k not in self._store]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            computed = self._compute(x[missing])
            for i, row in zip(missing, computed):
                if self.nbytes + row.nbytes <= self.max_bytes:
                    self._store[keys[i]] = row
                    self.nbytes += row.nbytes
            if len(missing) == len(keys):
                return computed
            fresh = dict(zip(missing, computed))
            return np.stack([fresh[i] if i in fresh else self._store[k] for i, k in enumerate(keys)])
        return np.stack([self._store[k] for k in keys])
