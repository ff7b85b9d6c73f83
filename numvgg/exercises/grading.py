"""The tools every exercise check is written with.

A check is a small function ``run(impl)`` that calls the student's functions
(``impl.im2col(...)``), compares the results with numvgg's own functions,
and either returns a short detail for the report (``"max abs error 2e-16"``)
or raises :class:`CheckFailed` with a message a student can act on: what was
compared, what differed (shapes, the largest error and where), and, for the
classic mistakes, a hint.

Helpers here:

* :func:`call`: run a student function with NumPy warnings silenced, and
  fail if it changed one of its array arguments in place;
* :func:`expect_tuple`, :func:`expect_array`, :func:`expect_dtype`: the
  shape of a result, with messages naming expected and got;
* :func:`assert_close`: elementwise comparison with a report of the worst
  entry, plus a hint when the result is a constant multiple of the expected
  one (a missing ``/ N`` ...);
* :func:`gradient_check`: analytic gradient vs central differences in float64;
* :func:`linspace`, :func:`random`: the inputs (no ties, reproducible).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..debug.gradcheck import numerical_gradient_array, rel_error

# float64 comparisons: loose enough for another summation order, tight enough
# that any real mistake (a dropped pixel, a wrong index) is far outside.
RTOL, ATOL = 1e-7, 1e-10
# Gradient checks: largest relative error accepted (CS231n's rule of thumb).
GRAD_TOL = 1e-6
# ... or an absolute error below this (relative to the largest gradient entry).
GRAD_ATOL = 1e-9


class CheckFailed(Exception):
    """A check found a difference; the message says what, where and maybe why."""


@dataclass(frozen=True)
class Check:
    """One line of the report: a title and ``run(impl) -> detail or None``; ``points`` it is worth."""

    title: str
    run: Callable
    points: int = 1


# -- inputs ---------------------------------------------------------------------


def linspace(shape, low=-1.0, high=1.0, dtype=np.float64) -> np.ndarray:
    """Evenly spaced values reshaped to ``shape``: readable, and free of ties."""
    return np.linspace(low, high, num=math.prod(shape), dtype=dtype).reshape(shape)


def random(shape, seed=0, dtype=np.float64) -> np.ndarray:
    """Standard normal values from a fixed seed (ties have probability zero)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def shape_text(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


# -- calling student code ---------------------------------------------------------


def _arrays_in(name: str, value):
    """``(label, array)`` for an array argument, or the arrays inside a tuple (a cache)."""
    if isinstance(value, np.ndarray):
        yield name, value
    elif isinstance(value, tuple):
        fields = getattr(value, "_fields", None) or [f"[{i}]" for i in range(len(value))]
        for field_name, item in zip(fields, value):
            if isinstance(item, np.ndarray):
                sep = "" if str(field_name).startswith("[") else "."
                yield f"{name}{sep}{field_name}", item


def call(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)`` and return its result.

    NumPy's floating-point warnings are silenced (a check looks at the result
    instead, so the report stays readable). Afterwards every array argument,
    and every array inside a tuple argument such as a cache, must be unchanged:
    a backward that edits ``dout`` in place corrupts a ``dout`` its caller
    reuses (a gradient check, another branch of the network).
    """
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
        named = list(bound.arguments.items())
    except (TypeError, ValueError):
        named = [(f"argument #{i + 1}", a) for i, a in enumerate(args)] + list(kwargs.items())
    before = [(label, arr, arr.copy()) for name, value in named for label, arr in _arrays_in(name, value)]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = fn(*args, **kwargs)
    for label, arr, copy in before:
        if arr.shape != copy.shape or not np.array_equal(arr, copy, equal_nan=True):
            raise CheckFailed(
                f"{fn.__name__}() changed its argument `{label}` in place; compute into "
                f"a new array instead (e.g. `np.where(mask, dout, 0)` rather than "
                f"`dout[~mask] = 0`): the caller may still need the original."
            )
    return result


# -- the shape of results --------------------------------------------------------------


def expect_tuple(result, length: int, what: str, names: str):
    """``result`` must be a tuple (or list) of ``length`` items, e.g. ``(out, cache)``."""
    if not isinstance(result, (tuple, list)) or len(result) != length:
        got = (
            f"a {type(result).__name__} of length {len(result)}"
            if isinstance(result, (tuple, list))
            else type(result).__name__
        )
        raise CheckFailed(f"{what} must return {length} values {names}; got {got}")
    return tuple(result)


def expect_array(got, what: str, shape=None) -> np.ndarray:
    """``got`` must be an array (a NumPy scalar or float when ``shape == ()``) of ``shape``."""
    if shape == () and isinstance(got, (float, int, np.number)) and not isinstance(got, bool):
        got = np.asarray(got)
    if not isinstance(got, np.ndarray):
        raise CheckFailed(f"{what}: expected a numpy array, got {type(got).__name__}")
    if shape is not None and got.shape != tuple(shape):
        raise CheckFailed(f"{what}: shape expected {shape_text(shape)}, got {shape_text(got.shape)}")
    return got


def expect_dtype(got, dtype, what: str) -> None:
    """The result keeps the input's float dtype (Keras computes in float32)."""
    got = expect_array(got, what)
    if got.dtype != np.dtype(dtype):
        raise CheckFailed(
            f"{what}: dtype expected {np.dtype(dtype)}, got {got.dtype} (float32 inputs "
            f"must give float32 results: avoid creating float64 arrays with np.zeros(shape) "
            f"-- pass dtype=x.dtype)"
        )


# -- comparing numbers ---------------------------------------------------------------------


def _scale_hint(got: np.ndarray, expected: np.ndarray) -> str:
    """When ``got`` is ``k * expected`` for one constant ``k != 1``, say so."""
    mask = np.abs(expected) > 1e-12
    if not mask.any() or not np.all(np.isfinite(got)) or np.any(np.abs(got[~mask]) > 1e-9):
        return ""
    ratios = got[mask] / expected[mask]
    k = float(np.median(ratios))
    if abs(k - 1) < 1e-6 or abs(k) < 1e-12 or not np.allclose(ratios, k, rtol=1e-5, atol=0):
        return ""
    factor = f"{k:.6g} x" if abs(k) >= 1 else f"1/{1 / k:.6g} of"
    return f" -- every value is {factor} the expected one: a missing or extra constant factor?"


def assert_close(got, expected, what: str, rtol=RTOL, atol=ATOL, hints=(), shape_hint: str = "") -> str:
    """Compare arrays elementwise; raise :class:`CheckFailed` naming the worst entry.

    Args:
        got: the student's result.
        expected: numvgg's result; its shape is the expected shape.
        what: a name for messages (``"out"``, ``"dx"``).
        hints: functions ``hint(got, expected) -> str or None``; the text of
            each that answers is appended to the failure message.
        shape_hint: appended when the shape is wrong (e.g. the output-size rule).
    Returns:
        ``"max abs error ..."`` for the report.
    """
    expected = np.asarray(expected)
    try:
        got = expect_array(got, what, expected.shape)
    except CheckFailed as failure:
        raise CheckFailed(
            f"{failure} -- {shape_hint}" if shape_hint and isinstance(got, np.ndarray) else str(failure)
        ) from None
    got64 = got.astype(np.float64)
    exp64 = expected.astype(np.float64)

    def extra() -> str:
        texts = []
        for hint in hints:
            try:
                text = hint(got64, exp64)
            except Exception:  # noqa: BLE001 -- a hint is a guess; never let it hide the failure
                text = None
            if text:
                texts.append(f" -- {text}")
        return "".join(texts)

    if not np.all(np.isfinite(exp64)):
        # NaN compares unequal to everything, so the error test below would see no
        # error at all: a NaN reference must never let a result pass.
        raise CheckFailed(
            f"{what}: the expected value has {int(np.sum(~np.isfinite(exp64)))} NaN or inf "
            f"entries, so nothing can be compared (a bug in the check, not in your code)"
        )
    if not np.all(np.isfinite(got64)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(got64))[0])
        raise CheckFailed(
            f"{what}: {int(np.sum(~np.isfinite(got64)))} entries are NaN or inf "
            f"(first at index {idx}: {got64[idx]}); expected finite values{extra()}"
        )
    err = np.abs(got64 - exp64)
    bad = err > atol + rtol * np.abs(exp64)
    max_err = float(err.max()) if err.size else 0.0
    if bad.any():
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape))
        where = f" at index {idx}" if idx else ""
        raise CheckFailed(
            f"{what}: max abs error {max_err:.3g}{where} (got {got64[idx]:.6g}, expected "
            f"{exp64[idx]:.6g}); {int(bad.sum())} of {bad.size} entries differ"
            f"{_scale_hint(got64, exp64)}{extra()}"
        )
    return f"max abs error {max_err:.1e}"


def gradient_check(what: str, analytic, f, x: np.ndarray, dout, tol: float = GRAD_TOL) -> str:
    """Compare an analytic gradient with central differences of ``sum(f(x) * dout)``.

    Args:
        what: the gradient's name (``"dx"``).
        analytic: the student's gradient, expected shaped like ``x``.
        f: ``x -> output``, reading ``x`` by reference (it is nudged in place).
        x: the float64 input the gradient is taken with respect to.
        dout: the random upstream gradient used for ``analytic``.
    Returns:
        ``"dx rel. error ..."`` for the report.
    """
    analytic = expect_array(analytic, what, x.shape)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        numerical = numerical_gradient_array(f, x, dout)
    err = rel_error(analytic, numerical)
    diff = np.abs(np.asarray(analytic, np.float64) - numerical)
    # Entries near zero make the relative error meaningless (the difference
    # quotient's own rounding, ~1e-11, over a tiny |gradient|): an absolute
    # error that small passes too.
    tiny = diff.size and float(diff.max()) <= GRAD_ATOL * max(1.0, float(np.abs(numerical).max()))
    if not (err <= tol or tiny):  # ``not <=`` also catches NaN
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
        raise CheckFailed(
            f"{what}: relative error {err:.2e} against finite differences (tolerance "
            f"{tol:.0e}); worst at index {idx}: yours {float(analytic[idx]):.6g}, numerical "
            f"{numerical[idx]:.6g}{_scale_hint(np.asarray(analytic, np.float64), numerical)}"
        )
    return f"{what} rel. error {err:.1e}" + (f" (max abs error {float(diff.max()):.1e})" if err > tol else "")
