"""Optimizers that update NumPy weights in place, following Keras 3's rules.

=========== ============================================ ================
name        class                                        default rate
=========== ============================================ ================
``sgd``     :class:`SGD` (momentum, nesterov)            0.01
``adam``    :class:`Adam` (amsgrad)                      0.001
``rmsprop`` :class:`RMSprop` (momentum, centered)        0.001
``adagrad`` :class:`Adagrad`                             0.001
``adadelta`` :class:`Adadelta`                           0.001
=========== ============================================ ================

Each module holds one optimizer and states its update rule at the top;
:mod:`.base` holds what they share (clipping, weight decay, learning-rate
schedules, slots, checkpoint state). :func:`get` turns a name into an optimizer,
as ``model.compile(optimizer="adam")`` does.
"""

from __future__ import annotations

from . import schedules
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .base import Optimizer, clip_by_global_norm, clip_by_norm
from .rmsprop import RMSprop
from .sgd import SGD

# Keras resolves names case-insensitively through the lower-cased class name.
ALL_OPTIMIZERS = {cls.__name__.lower(): cls for cls in (SGD, Adam, RMSprop, Adagrad, Adadelta)}


def get(identifier) -> Optimizer:
    """Return an optimizer for ``identifier``.

    Args:
        identifier: an :class:`Optimizer` (returned unchanged); a name such as
            ``"adam"`` or ``"RMSprop"`` (case-insensitive; a new optimizer with
            default arguments); or a config dict ``{"class_name": "Adam",
            "config": {...}}`` as Keras serializes it.

    Raises:
        ValueError: for an unknown name, listing the names numvgg knows.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _lookup(identifier["class_name"])
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        return _lookup(identifier)()
    raise ValueError(
        f"Could not interpret optimizer identifier: {identifier!r}. Pass a numvgg "
        f"optimizer or one of the names {sorted(ALL_OPTIMIZERS)}."
    )


def _lookup(name: str):
    try:
        return ALL_OPTIMIZERS[str(name).lower()]
    except KeyError:
        raise ValueError(
            f"Unknown optimizer {name!r}. numvgg has: {', '.join(sorted(ALL_OPTIMIZERS))}."
        ) from None


__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "get",
    "schedules",
    "clip_by_norm",
    "clip_by_global_norm",
]
