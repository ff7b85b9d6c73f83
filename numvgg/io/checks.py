"""Checks on weight values before they reach a layer.

A weight that is NaN or infinite poisons every output and every gradient
after it: one epoch later the whole model is NaN, and the warning about the
NaN loss points at the learning rate. So numvgg refuses such a weight where
it enters: loading a file, loading a training state, ``set_weights``. Keras
loads them silently; refusing is numvgg's choice (a weight file with NaN is
damaged, and nobody trains from one on purpose).
"""

from __future__ import annotations

import numpy as np

from ..errors import WeightFileError

FLOAT32_MAX = float(np.finfo(np.float32).max)


def nonfinite_summary(array: np.ndarray) -> str | None:
    """``'3 NaN and 1 infinite value(s) of 1,728'``, or ``None`` when all are finite."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc" or np.isfinite(array).all():
        return None
    n_nan = int(np.isnan(array).sum())
    n_inf = int(np.isinf(array).sum())
    parts = [f"{n_nan} NaN" if n_nan else "", f"{n_inf} infinite" if n_inf else ""]
    return f"{' and '.join(p for p in parts if p)} value(s) of {array.size:,}"


def check_finite_weights(layer_name: str, name: str, array, source: str | None = None) -> None:
    """Raise :class:`WeightFileError` if ``array`` (weight ``name`` of layer
    ``layer_name``) holds NaN or infinity, or values that overflow float32.

    Args:
        layer_name: the layer's name, e.g. ``'block1_conv1'``.
        name: the weight's name, e.g. ``'kernel'`` (or its index).
        array: the new value, in any float dtype (float64 is checked before
            it is cast to numvgg's float32, where a value past ~3.4e38
            would silently become infinite).
        source: where it comes from, e.g. ``"weights file 'w.h5'"`` or
            ``"set_weights()"``; named in the message.
    """
    array = np.asarray(array)
    where = f" from {source}" if source else ""
    problem = nonfinite_summary(array)
    if problem is None and array.dtype.kind == "f" and array.dtype.itemsize > 4 and array.size:
        largest = float(np.max(np.abs(array)))
        if largest > FLOAT32_MAX:
            problem = (
                f"values up to {largest:.3g}, which overflow float32 "
                f"(largest {FLOAT32_MAX:.3g}) and would become infinite"
            )
    if problem is not None:
        raise WeightFileError(
            f"Refusing weight '{layer_name}/{name}'{where}: it holds {problem}. A weight like this "
            "makes every output NaN; the weights were left unchanged."
        )
