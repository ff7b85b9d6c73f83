"""Checks on what a user hands to ``fit`` / ``evaluate`` / ``predict``, before any work is done.

Each check either returns quietly or raises an error that speaks about the
user's own input: which argument, which samples, which shape, and why the
model needs something else. NumPy's and h5py's own errors stay attached as
``__cause__``, so nothing is hidden.

* :func:`as_sample_array` turns ``x`` or ``y`` into an array of numbers, or
  says why it cannot (images of different sizes, file names, complex values...);
* :func:`check_finite` finds NaN / inf and names the samples that hold them;
* :func:`explain_input_shape` says why an input does not fit the model
  (a missing batch axis, channels first, grayscale, a size that ``fc1`` fixes...);
* :func:`check_fit_arguments` validates ``epochs``, ``initial_epoch`` & co.

Keras converts inputs the same way numvgg does (integers, booleans and
float64 become float32 in the first layer), so none of those are errors.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..errors import NonFiniteError, ShapeError
from ..layers.base import format_shape

_MAX_LISTED = 5


# -- turning user data into arrays ---------------------------------------------------------
def as_sample_array(value, what: str) -> np.ndarray:
    """``value`` as a NumPy array of numbers with the samples on axis 0.

    Args:
        value: an array, a list of samples, or anything with ``__array__``.
        what: how to name it in messages (``"x"``, ``"y"``, ``"validation_data x"``).
    Returns:
        ``np.asarray(value)``, unchanged in dtype (the layers cast to float32
        as Keras does).
    Raises:
        ValueError: the items have different shapes, or are not numbers
            (strings, objects, complex values), or there are no samples.
    """
    try:
        array = np.asarray(value)
    except ValueError as e:  # NumPy: "inhomogeneous shape after 1 dimensions"
        raise ValueError(f"{what} cannot be made into one array: {_ragged_reason(value)}") from e
    kind = array.dtype.kind
    if kind in "US":
        example = array.flat[0] if array.size else ""
        if what.endswith("y"):
            hint = (
                "targets must be numbers: turn class names into class indices, e.g. "
                "`classes, y = np.unique(y, return_inverse=True)`"
            )
        else:
            hint = (
                "numvgg models take pixel values, not file names: load images with "
                "numvgg.utils.load_img(path, target_size=...) and img_to_array(), or "
                "numvgg.utils.image_dataset_from_directory(folder)"
            )
        raise ValueError(f"{what} holds strings (e.g. {str(example)!r}); {hint}.")
    if kind == "O":
        raise ValueError(
            f"{what} has dtype object: NumPy could not find one numeric type for its "
            f"items ({_item_types(value)}). Pass an array of numbers with the samples "
            "on the first axis."
        )
    if kind not in "biuf":
        raise ValueError(
            f"{what} has dtype {array.dtype}; numvgg takes real numbers "
            "(float, int or bool; Keras casts them to float32 as numvgg does)."
        )
    if array.ndim == 0:
        raise ValueError(
            f"{what} is a single number ({array.item()!r}); pass an array with the samples on the first axis."
        )
    if len(array) == 0:
        raise ValueError(f"{what} holds no samples: its first axis has length 0 (shape {array.shape}).")
    return array


def _ragged_reason(value) -> str:
    try:
        shapes = [np.shape(item) for item in value]
    except (TypeError, ValueError):
        return "its items do not have one common shape."
    distinct = list(dict.fromkeys(shapes))
    listed = ", ".join(str(s) for s in distinct[:_MAX_LISTED])
    first_odd = next(i for i, s in enumerate(shapes) if s != shapes[0])
    return (
        f"its {len(shapes)} items have {len(distinct)} different shapes ({listed}); item 0 is "
        f"{shapes[0]} but item {first_odd} is {shapes[first_odd]}. Give every image the same "
        "size first, e.g. load_img(path, target_size=(224, 224))."
    )


def _item_types(value) -> str:
    try:
        names = list(dict.fromkeys(type(item).__name__ for item in value))
    except TypeError:
        return type(value).__name__
    return ", ".join(names[:_MAX_LISTED])


def is_array_data(x) -> bool:
    """True for in-memory arrays (and lists of samples), False for datasets and generators."""
    return isinstance(x, (np.ndarray, list)) or np.isscalar(x) or hasattr(x, "__array__")


# -- NaN and infinity -------------------------------------------------------------------
def nonfinite_report(array: np.ndarray, what: str) -> str | None:
    """``None`` if every value of ``array`` is finite, else a sentence naming
    how many values are NaN / infinite and in which samples (axis 0)."""
    if array.dtype.kind != "f":
        return None  # integers and booleans are always finite
    finite = np.isfinite(array)
    if finite.all():
        return None
    n_nan = int(np.isnan(array).sum())
    n_inf = int(finite.size - finite.sum()) - n_nan
    per_sample = ~finite.reshape(len(array), -1).all(axis=1) if array.ndim else np.array([True])
    samples = np.flatnonzero(per_sample)
    first = tuple(int(i) for i in np.argwhere(~finite)[0])
    listed = ", ".join(str(i) for i in samples[:_MAX_LISTED]) + (
        ", ..." if len(samples) > _MAX_LISTED else ""
    )
    return (
        f"{what} holds {n_nan} NaN and {n_inf} infinite value(s) in {len(samples)} sample(s) "
        f"[{listed}] (the first at {what}[{', '.join(map(str, first))}])"
    )


def check_finite(array: np.ndarray, what: str, where: str) -> None:
    """Raise :class:`NonFiniteError` if ``array`` holds NaN or inf.

    Args:
        array: inputs or targets, samples on axis 0.
        what: how the message names it: ``"x"``, ``"y"``, ``"the batch's x"``...
        where: the call and position, e.g. ``"fit()"`` or ``"fit(): epoch 2/5, step 3/10"``.
    """
    report = nonfinite_report(array, what)
    if report:
        name = what.split()[-1]  # "x" or "y"
        raise NonFiniteError(
            f"{where}: {report}. One such value makes the loss NaN, and the update after it makes "
            "every weight NaN, so numvgg stops before training on it. Fix or drop those samples, "
            f"e.g. keep the finite ones: ok = np.isfinite({name}).reshape(len({name}), -1)"
            ".all(axis=1); x, y = x[ok], y[ok]."
        )


# -- input shapes -------------------------------------------------------------------
def explain_input_shape(model, shape) -> str | None:
    """Why an input of ``shape`` does not fit the built ``model``, or ``None`` if it does.

    The explanation names the likely mistake: a missing batch axis,
    channels-first images, grayscale or RGBA images for an RGB model, or an
    image size that a ``Flatten`` + ``Dense`` pair (VGG16's ``fc1``) fixes.
    """
    expected = getattr(model, "input_shape", None)
    if not getattr(model, "built", False) or expected is None:
        return None
    shape = tuple(shape)
    rank = len(expected)
    if len(shape) == rank and all(e is None or e == g for e, g in zip(expected[1:], shape[1:])):
        return None
    inner = tuple(expected[1:])
    if len(shape) == rank - 1 and _fits(inner, shape):
        return (
            f"it looks like one sample without the batch axis; add one with x[np.newaxis] "
            f"(shape {(1, *shape)})"
        )
    if len(shape) == rank + 1 and shape[0] == 1 and _fits(inner, shape[2:]):
        return "it has an extra axis of length 1; remove it with np.squeeze(x, axis=0)"
    if len(shape) != rank:
        axes = "(batch, height, width, channels)" if rank == 4 else f"({rank} axes, batch first)"
        return f"the model takes {rank}-D input {axes} but this array is {len(shape)}-D"
    if rank != 4:
        return f"the model was built for samples of shape {inner}"
    (h, w, c), (gh, gw, gc) = inner, shape[1:]
    if gh == c and _fits((h, w), (gw, gc)) and gc != c:
        return (
            "it looks channels-first (N, C, H, W); numvgg and Keras use channels-last "
            "(N, H, W, C): use x.transpose(0, 2, 3, 1)"
        )
    if c is not None and gc != c:
        hint = ""
        if c == 3 and gc == 1:
            hint = (
                "; for grayscale images load them with color_mode='rgb' (the default) or "
                "repeat the channel: np.repeat(x, 3, axis=-1)"
            )
        elif c == 3 and gc == 4:
            hint = "; for RGBA images drop the alpha channel: x[..., :3]"
        return f"the model takes {c} channel(s) but this input has {gc}{hint}"
    return _explain_image_size(model, (h, w), (gh, gw), c)


def _fits(expected, got) -> bool:
    return len(expected) == len(got) and all(e is None or e == g for e, g in zip(expected, got))


def _explain_image_size(model, built_hw, got_hw, channels) -> str:
    """The input's height and width differ from the ones the model was built for."""
    built = f"{built_hw[0]}x{built_hw[1]}"
    got = f"{got_hw[0]}x{got_hw[1]}"
    leaves = model.leaf_layers()
    shape = (None, *got_hw, channels)
    for previous, layer in zip([None, *leaves], leaves):
        if type(layer).__name__ == "Flatten":
            dense = next((l for l in leaves[leaves.index(layer) + 1 :] if l.params), None)
            saved_in = getattr(layer, "input_shape", None)
            if dense is None or saved_in is None or len(saved_in) != 4:
                break
            fixed = "x".join(str(s) for s in saved_in[1:])
            would = "x".join(str(s) for s in shape[1:])
            n_would = int(np.prod(shape[1:]))
            after = f"the flattened output of '{previous.name}'" if previous is not None else "its input"
            return (
                f"layer '{dense.name}' takes {int(np.prod(saved_in[1:])):,} features, {after} "
                f"({fixed}) for {built} images, while {got} images would give {would} = "
                f"{n_would:,}. Resize the images to {built} (e.g. load_img(path, "
                f"target_size=({built_hw[0]}, {built_hw[1]}))), or, for other sizes, use a model "
                "without Flatten (VGG16(include_top=False, pooling='avg'))"
            )
        try:
            shape = layer.compute_output_shape(shape)
        except (ValueError, TypeError) as e:
            return f"{got} images are too small for this model: layer '{layer.name}' cannot take them ({e})"
    return (
        f"the model was built for {built} images; build it for {got} "
        f"(input_shape=({got_hw[0]}, {got_hw[1]}, {channels})) or resize the images"
    )


def check_input_shape(model, x: np.ndarray, where: str) -> None:
    """Raise :class:`ShapeError` when ``x`` does not fit the built ``model``,
    naming the expected and received shapes and why they differ."""
    reason = explain_input_shape(model, np.shape(x))
    if reason:
        raise ShapeError(
            f"{where}: model '{model.name}' expects input of shape "
            f"{format_shape(model.input_shape)} (batch first) but received an array "
            f"of shape {tuple(np.shape(x))}: {reason}."
        )


# -- fit's arguments ---------------------------------------------------------------------
def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_fit_arguments(epochs, initial_epoch, validation_split, validation_freq, validation_data) -> None:
    """Validate ``fit``'s scalar arguments (Keras' meanings) before any work."""
    if not _is_int(epochs) or epochs < 0:
        raise ValueError(f"fit(): epochs must be a non-negative int, got {epochs!r}.")
    if not _is_int(initial_epoch) or initial_epoch < 0:
        raise ValueError(f"fit(): initial_epoch must be a non-negative int, got {initial_epoch!r}.")
    if initial_epoch > epochs:
        warnings.warn(
            f"fit(): initial_epoch={initial_epoch} is after epochs={epochs}, so nothing "
            "will be trained. `epochs` is the index of the last epoch, not a count of "
            f"further epochs: to train 3 more, pass epochs={initial_epoch + 3}.",
            stacklevel=3,
        )
    if (
        not isinstance(validation_split, numbers.Real)
        or isinstance(validation_split, bool)
        or not 0.0 <= validation_split < 1.0
    ):
        raise ValueError(f"fit(): validation_split must be a number in [0, 1), got {validation_split!r}.")
    if not _is_int(validation_freq) or validation_freq < 1:
        raise ValueError(f"fit(): validation_freq must be a positive int, got {validation_freq!r}.")
    if validation_data is not None:
        if isinstance(validation_data, (tuple, list)):
            if len(validation_data) not in (2, 3):
                raise ValueError(
                    "fit(): validation_data must be (x_val, y_val), (x_val, y_val, sample_weight) "
                    f"or a dataset of (x, y) batches; got a {type(validation_data).__name__} of "
                    f"{len(validation_data)} item(s)."
                )
        elif is_array_data(validation_data):
            raise ValueError(
                "fit(): validation_data is a single array; pass the targets too: "
                "validation_data=(x_val, y_val)."
            )


# -- validation_data, before the first step -------------------------------------------------------
def check_validation_data(model, validation_data) -> None:
    """Check array ``validation_data`` against the model before ``fit`` trains a step.

    Without this, a ``y_val`` of the wrong length or shape fails only after a
    whole training epoch, in a message about "x and y" that does not say it
    is the validation data. Checked here: ``x_val`` and ``y_val`` (and a
    ``sample_weight``) have the same number of samples; ``x_val`` fits the
    model's input; ``y_val`` fits the model's output, as judged by the
    compiled loss itself (run on two dummy predictions, so every loss's own
    rule applies: ``(N,)`` or ``(N, 1)`` for a sigmoid unit, one-hot rows for
    ``categorical_crossentropy``...). Datasets are checked batch by batch
    while they are read; this returns quietly for them.

    Raises:
        ShapeError: naming ``validation_data`` and both shapes.
        ValueError: see :func:`as_sample_array`.
    """
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        return
    x = as_sample_array(validation_data[0], "validation_data x")
    y = as_sample_array(validation_data[1], "validation_data y")
    if len(x) != len(y):
        raise ShapeError(
            f"fit(validation_data=(x_val, y_val)): x_val has {len(x)} samples (shape "
            f"{x.shape}) but y_val has {len(y)} (shape {y.shape}); they must match."
        )
    if len(validation_data) == 3 and validation_data[2] is not None:
        weights = np.asarray(validation_data[2])
        if weights.ndim == 0 or len(weights) != len(x):
            raise ShapeError(
                f"fit(validation_data=(x_val, y_val, sample_weight)): sample_weight has "
                f"shape {weights.shape} but x_val has {len(x)} samples."
            )
    if not getattr(model, "built", False):
        return
    check_input_shape(model, x, "fit(validation_data=...)")
    loss = getattr(model, "loss", None)
    output_shape = getattr(model, "output_shape", None)
    if loss is None or output_shape is None or not len(y):
        return
    k = min(len(y), 2)
    dummy = np.full((k, *output_shape[1:]), 0.5, dtype=np.float32)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            loss(y[:k], dummy)
    except ValueError as e:  # ShapeError is a ValueError
        raise ShapeError(
            f"fit(validation_data=(x_val, y_val)): y_val has shape {y.shape} but the "
            f"model's output has shape {format_shape(output_shape)}, and the loss "
            f"cannot compare them: {e}"
        ) from e


# -- binary_crossentropy targets -------------------------------------------------------------
def check_binary_targets(y, where: str) -> bool:
    """Warn when targets meant for ``binary_crossentropy`` are not in [0, 1].

    Labels 0/255 (a mask image) or -1/1 (an SVM habit) train without any
    error, in Keras too, and give a meaningless model. Costs one ``min`` and
    one ``max`` over ``y``; call it once per ``fit`` for arrays (or on the
    first batch of a dataset).

    Returns:
        True when it warned (so a caller can stop checking).
    """
    y = np.asarray(y)
    if y.size == 0 or y.dtype.kind not in "fiub":
        return False
    low, high = y.min(), y.max()
    if low >= 0 and high <= 1:
        return False
    seen = np.unique(y)
    shown = ", ".join(f"{v:g}" for v in seen[:6]) + (f", ... ({len(seen)} values)" if len(seen) > 6 else "")
    hint = ""
    if set(seen.tolist()) <= {0, 255}:
        hint = " Divide by 255 (a 0/255 mask?)."
    elif set(seen.tolist()) <= {-1, 1}:
        hint = " Map -1 to 0: y = (y + 1) / 2."
    warnings.warn(
        f"{where}: binary_crossentropy expects targets in [0, 1] (class 0 or 1, or a "
        f"probability) but the targets hold {shown}.{hint} Training goes on.",
        stacklevel=3,
    )
    return True
