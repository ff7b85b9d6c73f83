"""Checks for layer arguments, with the argument's name in every message.

One validator for ``kernel_size``, ``strides`` and ``pool_size`` (Keras'
``keras/src/utils/argument_validation.py`` ``standardize_tuple``, same
message), so ``Conv2D(1, 0)`` says which argument is wrong instead of failing
later with a ``ZeroDivisionError`` deep inside an op.
"""

from __future__ import annotations

import numbers


def _is_int(v) -> bool:
    # bool is an int subclass, but `strides=True` is a mistake, not a stride of 1.
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def standardize_tuple(value, n: int, name: str, allow_zero: bool = False) -> tuple[int, ...]:
    """``value`` (an int, or ``n`` ints) as a tuple of ``n`` Python ints.

    ``standardize_tuple(3, 2, "kernel_size") == (3, 3)``;
    ``standardize_tuple((1, 2), 2, "strides") == (1, 2)``.

    Raises:
        ValueError: naming ``name`` and the value received when ``value`` is not
            an int or ``n`` ints, or holds a value ``<= 0`` (``< 0`` with
            ``allow_zero``), e.g. "The `strides` argument must be a tuple of 2
            integers. Received strides=0, including values {0} that do not
            satisfy `value > 0`".
    """
    message = f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r}"
    if _is_int(value):
        values = (int(value),) * n
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(message) from None
        if len(values) != n:
            raise ValueError(message)
        wrong_type = [v for v in values if not _is_int(v)]
        if wrong_type:
            raise ValueError(
                f"{message}, including element {wrong_type[0]!r} of type {type(wrong_type[0]).__name__}"
            )
        values = tuple(int(v) for v in values)
    bad = sorted({v for v in values if (v < 0 if allow_zero else v <= 0)})
    if bad:
        raise ValueError(
            f"{message}, including values {set(bad)} that do not satisfy "
            f"`value {'>= 0' if allow_zero else '> 0'}`"
        )
    return values
