"""Keras' "fast feature extraction", inside ``fit``: run a frozen conv base once per image.

In phase 1 of the transfer-learning recipe nothing below the new head learns, so the conv
base maps each image to the same features in every epoch. With
``model.compile(..., cache_frozen_features=True)`` the model keeps the output
of its frozen bottom layers per input sample and, from the second epoch on,
runs only the head: an epoch then costs about as much as the head alone.

Samples are recognised by their *content* (a 128-bit BLAKE2 digest of the
array), not by their position, so shuffled or re-batched datasets hit the cache
and an augmented image simply misses it (and is computed, correctly). The cache
is used only for the bottom layers that hold no trained weight and no
training-time behaviour (``Dropout``, random augmentation, batch statistics);
it is made with the first training step after ``compile()`` and emptied by the
next ``compile()``, ``load_weights`` or ``set_weights``.

When it is on, the model's forward (:meth:`numvgg.models.Model.forward`)
takes the frozen bottom's output from the cache and runs only the nodes after
it: tracing or stepping through the frozen layers then shows nothing for them.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..layers.preprocessing.base import RandomLayer


def _changes_in_training(layer) -> bool:
    """Whether ``layer`` computes something else with ``training=True``: dropout,
    random augmentation, batch statistics (a trainable BatchNormalization)."""
    for leaf in layer.leaf_layers():
        if getattr(leaf, "rate", 0.0) > 0.0 or isinstance(leaf, RandomLayer):
            return True
        if type(leaf).__name__ == "BatchNormalization" and leaf.trainable:
            return True
    return False


def frozen_prefix(model, trained) -> int:
    """How many of ``model``'s nodes, from the input, are fixed functions of it
    while training: no trained weight inside, no training-time behaviour, one
    chain (each feeds only the next). 0 when caching cannot help."""
    nodes = model._nodes
    if len(model.inputs) != 1:
        return 0
    k = 0
    for i, node in enumerate(nodes):
        if i and (len(node.inputs) != 1 or node.inputs[0].node is not nodes[i - 1]):
            break
        if len(node.outputs) != 1:  # the cache holds one array per sample
            break
        layer = node.layer
        if not layer.is_input_layer and (
            any(leaf in trained for leaf in layer.leaf_layers()) or _changes_in_training(layer)
        ):
            break
        k += 1
    # Every later node must read only from the last frozen one (or later nodes).
    if k <= 1 or k >= len(nodes):
        return 0
    inside = {id(n) for n in nodes[: k - 1]}
    if any(id(t.node) in inside for n in nodes[k:] for t in n.inputs):
        return 0
    return k


class FrozenFeatureCache:
    """The output of ``model``'s first ``n_nodes`` nodes, per input sample.

    Args:
        model: a built model whose first ``n_nodes`` nodes form a frozen chain
            (see :func:`frozen_prefix`).
        n_nodes: how many nodes (the input layer's included) the cache replaces.
        max_bytes: stop adding entries beyond this much cached data (lookups
            still work; new samples are then computed every time).
    """

    def __init__(self, model, n_nodes: int, max_bytes: int = 2 * 2**30):
        self.nodes = model._nodes[:n_nodes]
        self.n_nodes = n_nodes
        self.max_bytes = max_bytes
        self._store: dict[bytes, np.ndarray] = {}
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def output(self):
        """The symbolic tensor whose values the cache holds."""
        return self.nodes[-1].outputs[0]

    @staticmethod
    def _key(sample: np.ndarray) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((sample.shape, sample.dtype.str)).encode())
        h.update(np.ascontiguousarray(sample).data)
        return h.digest()

    def _compute(self, x: np.ndarray) -> np.ndarray:
        for node in self.nodes:
            x = node.layer(x, keep_cache=False)
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
