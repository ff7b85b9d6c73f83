"""The whole training state in one HDF5 file, so ``fit`` can resume as if it had never stopped.

Weights alone are not enough to resume: Adam's moment estimates, the number
of updates done (it enters Adam's bias correction and every learning-rate
schedule), the epoch, and the random generators that shuffle the data and
draw Dropout masks all shape the next step. :func:`save_training_state`
writes all of them::

    vars/                         attrs: name = the model's name
    layers/<auto name>/vars/0..   the weights, exactly as in a Keras 3 .weights.h5
    optimizer/vars/0, 1, ...      optimizer.get_state() in Keras' order: iterations,
                                  learning_rate (when it is a float), then the slots
                                  weight by weight (momentum/0, velocity/0, momentum/1, ...)
    numvgg_training_state/        attributes only:
        format_version            1
        epoch                     the epoch fit resumes at (pass it as initial_epoch)
        step                      batches of that epoch already trained (0 at an epoch's end)
        optimizer_class           e.g. "Adam"
        optimizer_keys            JSON list naming optimizer/vars/0, 1, ...
        shuffle_rng               JSON: numvgg.random's generator state at the start of `epoch`
        layer_rngs                JSON: [[layer name, generator state], ...] for the layers that
                                  draw random numbers while training (Dropout), in model order

The weights and the optimizer sit where Keras 3 keeps them in the
``model.weights.h5`` of a ``.keras`` archive, so ``model.load_weights(path)``
(numvgg's or Keras') reads a training-state file too.

**Writing is atomic.** The file is written under a temporary name in the same
folder, flushed to disk (``fsync``), and renamed over ``path`` (``os.replace``,
atomic on POSIX and Windows). A crash, a full disk or ``kill -9`` at any moment
leaves either the previous file or the new one, never a mix; at worst a
``.<name>~<pid>-*.tmp`` file stays behind, and the next save removes it
(see :mod:`numvgg.io.atomic`).

**Loading is all or nothing.** Every part is read and checked against the
model first (weight shapes, optimizer class, slot names and shapes, the
number of Dropout layers); only then is anything assigned. A file that does
not fit raises :class:`~numvgg.errors.TrainingStateError` and leaves the
model, its optimizer and the generators as they were.

Why the shuffle generator is saved *as of the start of the epoch*: a state
saved in the middle of an epoch (``BackupAndRestore(save_freq=N)``, Ctrl-C)
resumes by replaying that epoch's shuffle and skipping the batches already
trained, so the remaining batches are the ones the uninterrupted run saw.
(Keras' ``BackupAndRestore`` restarts the epoch from its first batch instead.)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np

from .. import random as nv_random
from ..errors import TrainingStateError, WeightFileError
from ..version import __version__
from . import weights as weights_io
from .atomic import atomic_path
from .h5access import damaged_file_errors, get_dataset, get_group, open_for_reading

FORMAT_VERSION = 1
STATE_GROUP = "numvgg_training_state"


@dataclass(frozen=True)
class TrainingProgress:
    """Where a ``fit`` run stands.

    Attributes:
        epoch: the 0-based epoch being trained, or to be trained next; what
            ``fit(initial_epoch=...)`` resumes at.
        step: how many batches of ``epoch`` are already trained (0 at an epoch's end).
        shuffle_state: ``numvgg.random``'s generator state at the start of
            ``epoch``, before that epoch's shuffle was drawn.
    """

    epoch: int = 0
    step: int = 0
    shuffle_state: Any = None


# -- the model's random generators --------------------------------------------------------
def layer_generators(model) -> list[tuple[str, np.random.Generator]]:
    """``(layer name, generator)`` for each leaf layer that draws random numbers
    while training (a ``Dropout``'s ``rng``), in model order."""
    return [
        (leaf.name, leaf.rng)
        for leaf in model.leaf_layers()
        if isinstance(getattr(leaf, "rng", None), np.random.Generator)
    ]


def _to_json(value) -> Any:
    """A generator state (dicts of ints, strings and maybe arrays) as plain JSON values."""
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def _set_generator_state(generator: np.random.Generator, state: dict) -> None:
    generator.bit_generator.state = state


# -- saving ----------------------------------------------------------------------------------
def save_training_state(
    path, model, optimizer=None, trained_weights=(), progress: TrainingProgress | None = None
) -> None:
    """Write ``model``'s full training state to ``path`` (atomically).

    Args:
        path: the file to write (any name; ``.state.h5`` reads well).
        model: a built numvgg model.
        optimizer: the model's optimizer, or ``None`` for a model not compiled.
        trained_weights: the arrays the optimizer updates (the model's
            trainable weights at ``compile()``); an optimizer not yet built is
            built on them first, so its slots are saved (zeros), as Keras does.
        progress: where ``fit`` stands; default: epoch 0, step 0, the
            shuffle generator as it is now.
    Raises:
        TrainingStateError: the model is not built, the folder is missing, or
            the write fails (the OS error is chained).
    """
    path = os.fspath(path)
    if not getattr(model, "built", True):
        raise TrainingStateError(
            f"Cannot save the training state of model '{model.name}' to "
            f"'{path}': the model is not built yet, so it has no weights."
        )
    if progress is None:
        progress = TrainingProgress(0, 0)
    shuffle_state = progress.shuffle_state if progress.shuffle_state is not None else nv_random.get_state()
    state = {}
    if optimizer is not None:
        if not optimizer.built and trained_weights:
            optimizer.build(list(trained_weights))
        state = optimizer.get_state()
    attrs = {
        "format_version": FORMAT_VERSION,
        "numvgg_version": __version__,
        "epoch": int(progress.epoch),
        "step": int(progress.step),
        "optimizer_class": type(optimizer).__name__ if optimizer is not None else "",
        "optimizer_keys": json.dumps(list(state)),
        "shuffle_rng": json.dumps(_to_json(shuffle_state)),
        "layer_rngs": json.dumps(
            [[name, _to_json(g.bit_generator.state)] for name, g in layer_generators(model)]
        ),
    }
    with atomic_path(path, TrainingStateError, "the training state") as tmp, h5py.File(tmp, "w-") as f:
        weights_io._write_keras3(f, model)  # the .weights.h5 tree at the root
        if optimizer is not None:
            opt_vars = f.create_group("optimizer").create_group("vars")
            opt_vars.attrs["name"] = optimizer.name
            for i, value in enumerate(state.values()):
                opt_vars.create_dataset(str(i), data=value)
        group = f.create_group(STATE_GROUP)
        for key, value in attrs.items():
            group.attrs[key] = value


# -- loading -----------------------------------------------------------------------------------
def _open(path: str) -> h5py.File:
    try:
        return open_for_reading(path)
    except WeightFileError as e:
        message = str(e).replace("Weights file", "Training-state file", 1)
        raise TrainingStateError(message) from e


def _state_group(f: h5py.File, path: str) -> h5py.Group:
    if STATE_GROUP not in f:
        kind = (
            "a Keras weights file"
            if ("layers" in f or "layer_names" in f.attrs or "model_weights" in f)
            else "an HDF5 file"
        )
        raise TrainingStateError(
            f"'{path}' is {kind}, not a numvgg training state: it has no '{STATE_GROUP}' group. "
            "To load only its weights use model.load_weights(path); the optimizer and the "
            "epoch then start afresh."
        )
    try:
        return get_group(f, STATE_GROUP)
    except WeightFileError as e:
        raise TrainingStateError(str(e)) from e


def _attr(group: h5py.Group, name: str, path: str):
    if name not in group.attrs:
        raise TrainingStateError(
            f"Training-state file '{path}' is damaged: attribute '{STATE_GROUP}/{name}' is missing."
        )
    value = group.attrs[name]
    return value.decode("utf8") if isinstance(value, bytes) else value


def _json_attr(group: h5py.Group, name: str, path: str):
    text = _attr(group, name, path)
    try:
        return json.loads(str(text))
    except (TypeError, ValueError) as e:
        raise TrainingStateError(
            f"Training-state file '{path}' is damaged: attribute "
            f"'{STATE_GROUP}/{name}' is not valid JSON ({e})."
        ) from e


def _int_attr(group: h5py.Group, name: str, path: str) -> int:
    value = _attr(group, name, path)
    if not (np.isscalar(value) and isinstance(value, (int, np.integer))) or int(value) < 0:
        raise TrainingStateError(
            f"Training-state file '{path}' is damaged: '{STATE_GROUP}/{name}' "
            f"should be a non-negative integer, not {value!r}."
        )
    return int(value)


def _read_attrs(group: h5py.Group, path: str):
    version = _int_attr(group, "format_version", path)
    if version != FORMAT_VERSION:
        raise TrainingStateError(
            f"'{path}' is a training state in format version {version}; this numvgg reads "
            f"version {FORMAT_VERSION}. It was written by another numvgg version "
            f"({_attr(group, 'numvgg_version', path) if 'numvgg_version' in group.attrs else '?'})."
        )
    shuffle = _json_attr(group, "shuffle_rng", path)
    progress = TrainingProgress(_int_attr(group, "epoch", path), _int_attr(group, "step", path), shuffle)
    layer_rngs = _json_attr(group, "layer_rngs", path)
    if not isinstance(layer_rngs, list) or not all(
        isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict) for item in layer_rngs
    ):
        raise TrainingStateError(
            f"Training-state file '{path}' is damaged: "
            f"'{STATE_GROUP}/layer_rngs' is not a list of [name, state] pairs."
        )
    return progress, layer_rngs


def _read_optimizer(f: h5py.File, group: h5py.Group, path: str):
    """``(class name, {key: array})`` as saved; ``("", {})`` when the model was not compiled."""
    class_name = str(_attr(group, "optimizer_class", path))
    keys = _json_attr(group, "optimizer_keys", path)
    if not class_name:
        return "", {}
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise TrainingStateError(
            f"Training-state file '{path}' is damaged: '{STATE_GROUP}/optimizer_keys' is not a list of names."
        )
    try:
        opt_vars = get_group(f, "optimizer/vars")
        datasets = [get_dataset(opt_vars, str(i)) for i in range(len(keys))]
    except WeightFileError as e:
        raise TrainingStateError(
            f"Training-state file '{path}' is damaged: the optimizer's "
            f"{len(keys)} arrays are not all there ({e})"
        ) from e
    return class_name, dict(zip(keys, datasets))


def _weight_names(model) -> dict[int, str]:
    """``id(array) -> 'layer/weight'`` for naming optimizer slots in messages."""
    return {id(slot.layer.params[slot.weight]): slot.path for slot in weights_io.layer_slots(model)}


def _expected_optimizer_state(optimizer, trained_weights) -> dict:
    """The keys and shapes ``optimizer.get_state()`` has once built on ``trained_weights``.

    An optimizer not built yet is not built here (a failed load must change
    nothing): a fresh copy from its config is built instead.
    """
    if optimizer.built or not trained_weights:
        return optimizer.get_state()
    probe = type(optimizer).from_config(optimizer.get_config())
    probe.build(list(trained_weights))
    return probe.get_state()


def _check_optimizer(path, model, optimizer, trained_weights, class_name, saved) -> dict:
    """Compare the saved optimizer state with ``optimizer``; return it read into memory."""
    if not class_name:
        return {}
    if optimizer is None:
        raise TrainingStateError(
            f"'{path}' holds the state of a {class_name} optimizer but model '{model.name}' is not "
            f"compiled. Compile it first as it was compiled when saved (optimizer={class_name}(...), "
            "same loss), then load the state; or use model.load_weights(path) for the weights only."
        )
    if type(optimizer).__name__ != class_name:
        raise TrainingStateError(
            f"'{path}' holds the state of a {class_name} optimizer but model '{model.name}' was "
            f"compiled with {type(optimizer).__name__}. Compile it with {class_name} to resume."
        )
    expected = _expected_optimizer_state(optimizer, trained_weights)
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    if {*missing, *unexpected} == {"learning_rate"}:
        how = "a float" if "learning_rate" in saved else "a schedule (or a callable)"
        raise TrainingStateError(
            f"'{path}': the {class_name} optimizer was saved with {how} as its learning rate, "
            "but the model's optimizer uses the other kind. Compile with the same kind of "
            "learning_rate to resume."
        )
    if missing or unexpected:
        n_saved = len({k.rsplit("/", 1)[1] for k in saved if "/" in k})
        n_model = len(trained_weights)
        raise TrainingStateError(
            f"'{path}': the saved {class_name} state does not fit model '{model.name}': the file has "
            f"slots for {n_saved} trained weight array(s), the model trains {n_model}. Missing: "
            f"{missing[:6]}, unexpected: {unexpected[:6]}. Were other layers frozen "
            "(trainable=False) when it was saved? Set the same layers trainable and compile again."
        )
    names = _weight_names(model)
    built_on = list(optimizer._variables if optimizer.built else trained_weights)
    values = {}
    for key, current in expected.items():
        dataset = saved[key]
        if tuple(dataset.shape) != current.shape:
            index = key.rsplit("/", 1)[1] if "/" in key else None
            weight = (
                names.get(id(built_on[int(index)]), f"#{index}")
                if index is not None and index.isdigit() and int(index) < len(built_on)
                else key
            )
            raise TrainingStateError(
                f"'{path}': optimizer state '{key}' (for weight '{weight}'): the model needs shape "
                f"{current.shape} but the file holds {tuple(dataset.shape)}."
            )
        try:
            raw = np.asarray(dataset[()])
        except (OSError, ValueError, TypeError) as e:
            raise TrainingStateError(
                f"'{path}': cannot read optimizer state '{key}': the file is damaged. ({e})"
            ) from e
        values[key] = _checked_state_value(path, key, raw, current.dtype)
    return values


# Slots that hold sums or averages of squared gradients, so never negative.
# A negative one would make the next update take the square root of a negative number.
_SQUARED_SLOTS = ("velocity", "velocity_hat", "accumulator", "accumulated_grad", "accumulated_delta_var")


def _shown(value: np.ndarray) -> str:
    if value.shape != ():
        return f"an array of shape {value.shape}"
    item = value.item()
    return f"{item:g}" if isinstance(item, float) else repr(item)


def _checked_state_value(path: str, key: str, raw: np.ndarray, dtype) -> np.ndarray:
    """``raw`` as ``dtype`` after checking it can be an optimizer's ``key``.

    A damaged value (NaN steps, a negative learning rate...) loads without a
    complaint otherwise, and every weight is NaN one epoch later.
    """

    def damaged(why: str):
        return TrainingStateError(
            f"Training-state file '{path}' is damaged: optimizer state '{key}' {why}; nothing was loaded."
        )

    if raw.dtype.kind not in "fiub":
        raise damaged(f"holds {raw.dtype} values, not numbers")
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        n_bad = int((~np.isfinite(raw)).sum())
        raise damaged(f"holds {n_bad} NaN or infinite value(s) of {raw.size}")
    slot = key.split("/", 1)[0]
    if key == "iterations":
        if raw.shape != () or raw != np.round(raw) or raw < 0:
            raise damaged(f"(the number of updates done) should be a whole number >= 0, not {_shown(raw)}")
    elif key == "learning_rate":
        if raw.shape != () or raw < 0:
            raise damaged(f"should be a learning rate >= 0, not {_shown(raw)}")
    elif slot in _SQUARED_SLOTS and raw.size and raw.min() < 0:
        raise damaged(
            f"(a running mean of squared gradients) holds negative values "
            f"(the smallest is {float(raw.min()):.3g}); it can only be >= 0"
        )
    return np.asarray(raw, dtype=dtype)


def _check_generators(path, model, progress: TrainingProgress, layer_rngs: list) -> list:
    """Check that every saved generator state can be set; return ``(generator, state)`` pairs."""
    ours = layer_generators(model)
    if len(ours) != len(layer_rngs):
        raise TrainingStateError(
            f"'{path}': the file holds random-generator states for {len(layer_rngs)} layer(s) "
            f"({[name for name, _ in layer_rngs]}) but model '{model.name}' has {len(ours)} layer(s) "
            f"that draw random numbers ({[name for name, _ in ours]}). Is it the same model?"
        )
    pairs = [(nv_random.generator(), progress.shuffle_state)]
    pairs += [(generator, state) for (_, generator), (_, state) in zip(ours, layer_rngs)]
    for generator, state in pairs:
        # Try each state on a throw-away generator of the same kind: a bad one
        # must fail now, before anything is assigned.
        probe = np.random.Generator(type(generator.bit_generator)())
        try:
            _set_generator_state(probe, state)
        except (TypeError, ValueError, KeyError) as e:
            raise TrainingStateError(
                f"'{path}' is damaged: a saved random-generator state does not fit a "
                f"{type(generator.bit_generator).__name__} generator ({e})."
            ) from e
    return pairs


def load_training_state(path, model, optimizer=None, trained_weights=()) -> TrainingProgress:
    """Restore weights, optimizer state and random generators from ``path``.

    Args:
        path: a file written by :func:`save_training_state`.
        model: the same architecture, built (layer names may differ: weights
            are matched by structure, as in Keras 3 files).
        optimizer: the model's optimizer, of the class that was saved; built
            on ``trained_weights`` if it is not yet.
        trained_weights: the arrays the optimizer updates.
    Returns:
        The :class:`TrainingProgress` saved: ``progress.epoch`` is the
        ``initial_epoch`` to resume at.
    Raises:
        TrainingStateError: the file is missing, damaged, not a training
            state, or does not fit the model or its optimizer (the message says
            which part and both shapes). Nothing is changed then.
    """
    path = os.fspath(path)
    with _open(path) as f, damaged_file_errors(path, TrainingStateError, "training-state file"):
        group = _state_group(f, path)
        progress, layer_rngs = _read_attrs(group, path)
        class_name, saved = _read_optimizer(f, group, path)
        optimizer_state = _check_optimizer(path, model, optimizer, list(trained_weights), class_name, saved)
        generators = _check_generators(path, model, progress, layer_rngs)
    try:
        # All or nothing on its own: every shape is checked before a weight is written.
        weights_io.load_weights(model, path)
    except WeightFileError as e:
        raise TrainingStateError(str(e)) from e
    if optimizer_state:
        if not optimizer.built:
            optimizer.build(list(trained_weights))
        optimizer.set_state(optimizer_state)
    for generator, state in generators:
        _set_generator_state(generator, state)
    return progress
