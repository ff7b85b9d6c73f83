"""When the ``trainable`` flags are read, and what a training step then does.

Keras 3's documentation says the trainable set is fixed at ``compile()``. What
Keras 3 (TensorFlow backend) really does -- measured, and checked by
``tests/test_keras_fidelity.py`` on every case below -- is read the flags when
TensorFlow *traces* the training step, which happens:

* at the first ``fit`` after ``compile``, and again at a later ``fit`` whose
  batches have another shape signature (another batch size, a partial last
  batch where there was none, another image size);
* at the first ``train_on_batch`` after ``compile``, and again for a batch
  shape it has not traced yet; after two different shapes TensorFlow traces a
  relaxed shape (``None`` where they differed) that fits the later ones;
* ``fit`` and ``train_on_batch`` trace separately: freezing a layer between a
  ``fit`` and a ``train_on_batch`` is honoured by the ``train_on_batch``;
* ``evaluate`` and ``predict`` read no flag; ``compile`` forgets every trace;
* with ``compile(run_eagerly=True)`` nothing is traced: every step reads the flags.

So ``compile(); layer.trainable = False; fit()`` freezes the layer, but
``fit(); layer.trainable = False; fit()`` keeps training it (recompile to
change that). When a new trace would train a weight the optimizer was not
built with, Keras raises "Unknown variable ..." and so does numvgg.

A :class:`TrainPlan` is numvgg's "trace": the trained layers and weights, and
which layers must keep a cache for the backward (none below the lowest trained
layer: that part of the network runs as plain inference).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np


class TrainPlan(NamedTuple):
    """What one traced training step trains.

    Attributes:
        trained: the leaf layers whose weights are updated.
        slots: ``(layer, weight_name)`` of every trained weight, in model order.
        keep_cache: the leaf layers whose caches the backward will use
            (a layer is left out when no trained layer comes at or before it).
        traced_flags: ``trainable`` as it was at the trace, for the layers whose
            forward reads it (``BatchNormalization``: batch statistics only when
            trainable). Keras' traced step keeps those values until the next trace.
    """

    trained: frozenset
    slots: list
    keep_cache: frozenset
    traced_flags: tuple = ()  # (layer, trainable) of the layers whose forward reads the flag

    @property
    def variables(self) -> list:
        """The trained weight arrays themselves (what the optimizer updates)."""
        return [layer.params[name] for layer, name in self.slots]

    def gradients(self) -> list:
        """Their gradients after a backward (``layer.grads`` follows ``params`` order)."""
        return [
            layer.grads[list(layer.params).index(name)] if layer.grads else None for layer, name in self.slots
        ]


def make_plan(model) -> TrainPlan:
    """Read the ``trainable`` flags now (a "trace")."""
    trained_leaves = model.trainable_leaves()
    slots = [
        (layer, name)
        for layer in trained_leaves
        for name in layer.params
        if name not in layer.non_trainable_param_names
    ]
    trained = frozenset(trained_leaves)
    keep, seen_trained = set(), False
    # Caches from the first trained layer on, in the order the steps run (a shared
    # layer called both before and after it needs its later call's cache).
    for leaf in (s.layer for s in model.run_order.steps if not s.layer.is_input_layer):
        seen_trained = seen_trained or leaf in trained
        if seen_trained:
            keep.add(leaf)
    traced = tuple(
        (leaf, leaf.trainable)
        for leaf in model.leaf_layers()
        if getattr(leaf, "reads_trainable_in_forward", False)
    )
    return TrainPlan(trained, slots, frozenset(keep), traced)


@contextlib.contextmanager
def flags_as_traced(plan: TrainPlan):
    """Run a step with the ``trainable`` flags the plan's trace saw (then put back the
    current ones): a BatchNormalization frozen *after* the trace keeps using batch
    statistics in that trace's steps, as in Keras."""
    now = [(layer, layer._trainable) for layer, _ in plan.traced_flags]
    try:
        for layer, then in plan.traced_flags:
            layer._trainable = then
        yield
    finally:
        for layer, value in now:
            layer._trainable = value


def _specs(arrays) -> list:
    """``(shape, dtype)`` of each array, nested lists flattened; ``None`` kept."""
    out = []
    for a in arrays:
        if a is None:
            out.append(None)
        elif isinstance(a, (list, tuple)):
            out.extend(_specs(a))
        else:
            a = np.asarray(a)
            out.append((tuple(a.shape), a.dtype.str))
    return out


def batch_signature(*arrays) -> tuple:
    """A batch's signature: the shape and dtype of each of its arrays."""
    return tuple(_specs(arrays))


def fit_signature(n_samples, batch_size, *arrays) -> tuple:
    """The signature of ``fit`` on arrays, as Keras' array adapter batches them:
    the batch axis is the batch size when every batch is full, the one partial
    size when there is only a partial batch, ``None`` when both occur."""
    if n_samples < batch_size:
        batch = n_samples
    elif n_samples % batch_size == 0:
        batch = batch_size
    else:
        batch = None
    return tuple(None if spec is None else ((batch, *spec[0][1:]), spec[1]) for spec in _specs(arrays))


def _spec_fits(spec, traced) -> bool:
    if spec is None or traced is None:
        return spec is None and traced is None
    (shape, dtype), (t_shape, t_dtype) = spec, traced
    return (
        dtype == t_dtype
        and len(shape) == len(t_shape)
        and all(t is None or s == t for s, t in zip(shape, t_shape))
    )


def fits(signature, traced) -> bool:
    """Whether a batch of ``signature`` can run in the trace made for ``traced``."""
    return len(signature) == len(traced) and all(_spec_fits(s, t) for s, t in zip(signature, traced))


def relax(traced, signature) -> tuple:
    """TensorFlow's ``reduce_retracing``: the most specific signature both fit
    (``None`` wherever the two shapes differ)."""
    if len(traced) != len(signature):
        return signature
    out = []
    for t, s in zip(traced, signature):
        if t is None or s is None or t[1] != s[1] or len(t[0]) != len(s[0]):
            out.append(s)
        else:
            out.append((tuple(a if a == b else None for a, b in zip(t[0], s[0])), s[1]))
    return tuple(out)
