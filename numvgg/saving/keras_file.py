"""Keras 3's whole-model ``.keras`` file: write it, read it.

A ``.keras`` file is a zip archive of three members:

* ``metadata.json``: ``{"keras_version": ..., "date_saved": ...}``;
* ``config.json``: the model's architecture (:mod:`.serialization`) and,
  for a compiled model, its ``compile_config`` (optimizer, loss, metrics);
* ``model.weights.h5``: the weights, in the same layout as a standalone
  Keras 3 ``.weights.h5`` file (numvgg's writer and reader,
  :mod:`numvgg.io.weights`).

What is *not* stored by numvgg: the optimizer's slot variables (Adam's
moments, RMSprop's averages) and its step count. Keras writes them under an
``optimizer`` group of ``model.weights.h5`` once the optimizer has been
built; numvgg ignores that group when reading. A loaded model is compiled
from ``compile_config`` with a fresh optimizer. numvgg's own training-state
file (``model.save_training_state``) keeps the optimizer state for resuming.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import tempfile
import zipfile

from ..errors import WeightFileError
from ..io.atomic import atomic_path
from ..version import __version__
from . import serialization
from .serialization import KerasFileError

_MEMBERS = ("metadata.json", "config.json", "model.weights.h5")


# -- compile config ------------------------------------------------------------------
def _object_config(obj, module: str) -> dict:
    return {
        "module": module,
        "class_name": type(obj).__name__,
        "config": serialization._jsonable(obj.get_config()),
        "registered_name": None,
    }


def compile_config(model) -> dict | None:
    """Keras' ``compile_config``: the optimizer, loss and metrics ``compile`` got."""
    if not getattr(model, "compiled", False):
        return None
    loss = model.loss
    if isinstance(loss, list):
        loss = [None if l is None else _loss_config(l) for l in loss]
    elif isinstance(loss, dict):
        loss = {k: _loss_config(v) for k, v in loss.items()}
    elif loss is not None:
        loss = _loss_config(loss)
    metrics = [m if isinstance(m, str) else _object_config(m, "keras.metrics") for m in model._metric_specs]
    return {
        "optimizer": _object_config(model.optimizer, "keras.optimizers"),
        "loss": loss,
        "loss_weights": serialization._jsonable(model._loss_weights),
        "metrics": metrics or None,
        "weighted_metrics": None,
        "run_eagerly": bool(model.run_eagerly),
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def _loss_config(loss):
    return loss if isinstance(loss, str) else _object_config(loss, "keras.losses")


# Keras-only optimizer options and the one value numvgg supports.
_OPTIMIZER_EXTRAS = {
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


_LOSS_EXTRAS = {"axis": -1, "ignore_class": None}


def _without_extras(entry, extras: dict, what: str):
    """``entry`` (a Keras object dict, or a name) without the Keras-only options
    in ``extras``; an option set to anything but its default is an error."""
    if not isinstance(entry, dict):
        return entry
    config = dict(entry.get("config") or {})
    for key, default in extras.items():
        if key in config and config.pop(key) != default:
            raise ValueError(
                f"{what} option {key}={entry['config'][key]!r} is not supported "
                f"by numvgg (only {key}={default!r})"
            )
    return {**entry, "config": config}


def _loss_from_config(entry):
    from .. import losses

    return losses.get(_without_extras(entry, _LOSS_EXTRAS, "loss"))


def _compile_from_config(model, config: dict, path: str) -> None:
    """``model.compile`` with what ``config`` records (Keras' ``compile_from_config``)."""
    from .. import metrics, optimizers

    try:
        optimizer = optimizers.get(_without_extras(config["optimizer"], _OPTIMIZER_EXTRAS, "optimizer"))
        loss = config.get("loss")
        if isinstance(loss, list):
            loss = [None if l is None else _loss_from_config(l) for l in loss]
        elif isinstance(loss, dict) and "class_name" not in loss:  # one loss per output name
            loss = {k: _loss_from_config(v) for k, v in loss.items()}
        elif loss is not None:
            loss = _loss_from_config(loss)
        specs = [m if isinstance(m, str) else metrics.get(m) for m in config.get("metrics") or []]
        model.compile(
            optimizer=optimizer,
            loss=loss,
            loss_weights=config.get("loss_weights"),
            metrics=specs,
            run_eagerly=bool(config.get("run_eagerly", False)),
        )
    except (ValueError, TypeError, KeyError) as e:
        raise KerasFileError(
            f"'{path}': the model was rebuilt but its compile_config cannot be "
            f"applied ({e}). Load with compile=False and compile it yourself."
        ) from e


# -- writing ---------------------------------------------------------------------------
def save_model(model, filepath, overwrite: bool = True) -> None:
    """Write ``model`` to ``filepath`` (a name ending in ``.keras``), atomically.

    Everything is prepared in memory first (config, weights), then written
    to a temporary file in the same folder, flushed and renamed over
    ``filepath``: a failure leaves no half-written file and keeps the old one.

    Raises:
        KerasFileError: the name does not end in ``.keras``, a layer has no
            Keras counterpart, or the file cannot be written.
        FileExistsError: ``overwrite=False`` and the file exists.
    """
    import h5py

    from ..io.weights import _write_keras3

    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise KerasFileError(
            f"Cannot save the model to '{filepath}': the name must end in "
            "'.keras' (use save_weights() for '.weights.h5' or '.h5')."
        )
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    if not model.built:
        raise KerasFileError(
            f"Cannot save model '{model.name}': it is not built yet (give it an "
            "Input, or call build() or the model on data first)."
        )
    config = serialization.serialize_layer(model)
    compiled = compile_config(model)
    if compiled is not None:
        config["compile_config"] = compiled
    # The Keras version whose format this is (tested against it); Keras does not
    # check it when loading. numvgg adds its own version next to it.
    metadata = {
        "keras_version": "3.15.1",
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        "numvgg_version": __version__,
    }
    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        _write_keras3(f, model)
    with (
        atomic_path(filepath, KerasFileError, "the model") as tmp,
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z,
    ):
        z.writestr("metadata.json", json.dumps(metadata))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights.getvalue())


# -- reading ---------------------------------------------------------------------------
def _read_members(path: str) -> dict:
    if not os.path.exists(path):
        raise KerasFileError(f"No such file: '{path}'.")
    if os.path.isdir(path):
        raise KerasFileError(f"'{path}' is a folder, not a .keras file.")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            missing = [m for m in _MEMBERS if m not in names]
            if missing:
                raise KerasFileError(
                    f"'{path}' is not a complete .keras file: it has no "
                    f"{', '.join(missing)} (it holds {sorted(names)})."
                )
            return {m: z.read(m) for m in _MEMBERS}
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise KerasFileError(
            f"'{path}' is not a readable .keras file (a zip archive): {e}. "
            "It may be truncated or not a .keras file at all."
        ) from e


def load_model(filepath, compile: bool = True, custom_objects=None, safe_mode: bool = True):
    """Rebuild the model saved in a ``.keras`` file (Keras' or numvgg's).

    Args:
        filepath: the ``.keras`` file.
        compile: compile the model as it was when saved (optimizer class and
            config, loss, metrics; a fresh optimizer: see the module docstring).
        custom_objects: not supported (numvgg has no custom layers to register);
            must be ``None``.
        safe_mode: accepted for Keras' signature; numvgg never runs code from
            a file (no ``Lambda`` layers), so it is always safe.

    Raises:
        KerasFileError: missing file, not a zip, a missing member, a layer class
            or option numvgg does not have (the message names the layer and
            the class), or weights that do not fit.
    """
    from ..io.weights import load_weights

    filepath = os.fspath(filepath)
    if custom_objects:
        raise KerasFileError(
            "load_model(custom_objects=...) is not supported: numvgg rebuilds only its own layer classes."
        )
    members = _read_members(filepath)
    try:
        config = json.loads(members["config.json"])
    except (ValueError, UnicodeDecodeError) as e:
        raise KerasFileError(f"'{filepath}': config.json is not valid JSON ({e}).") from e
    try:
        model = serialization.deserialize_layer(config)
    except KerasFileError as e:
        raise KerasFileError(f"Cannot load '{filepath}': {e}") from None
    from ..models import Model

    if not isinstance(model, Model):
        raise KerasFileError(f"'{filepath}' holds a single {type(model).__name__} layer, not a model.")
    with tempfile.TemporaryDirectory() as folder:
        weights_path = os.path.join(folder, "model.weights.h5")
        with open(weights_path, "wb") as f:
            f.write(members["model.weights.h5"])
        try:
            load_weights(model, weights_path)
        except WeightFileError as e:
            message = str(e).replace(weights_path, f"{filepath}/model.weights.h5")
            raise KerasFileError(f"Cannot load the weights of '{filepath}': {message}") from None
    if compile and config.get("compile_config"):
        _compile_from_config(model, config["compile_config"], filepath)
    return model
