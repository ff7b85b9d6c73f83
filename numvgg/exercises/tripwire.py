"""Catch a submission that hands the work to numvgg's own implementation.

Importing ``col2im`` from numvgg is easy to spot (the function *is* numvgg's);
a one-line wrapper around it, a call through ``numvgg.layers.Conv2D`` or
through the optimizer is not. So, in the submission's process only, each
guarded function's code object is swapped for a small guard (the function
object stays the same, so every reference to it -- imported names, methods,
layers -- reaches the guard). The guard looks at the call stack:

* called with a frame of the student's file on the stack: the call is
  recorded and refused with :class:`DelegationError`;
* otherwise (the exercise's checks computing their own inputs): the original
  code runs.

This catches delegation through any path that ends in the guarded code. It
does not catch a copy of numvgg's source pasted into the file (no tool can
tell a copy from a rewrite); and it runs inside the student's process, so a
file that goes out of its way to undo it can -- which gains nothing, because
the grade is decided from the returned numbers in the grader's process.
"""

from __future__ import annotations

import sys
import types

_GUARD_SOURCE = """\
def guard(*args, **kwargs):
    import sys
    return sys.modules["numvgg.exercises.tripwire"]._call({name!r}, args, kwargs)
"""


class DelegationError(RuntimeError):
    """A guarded numvgg function was called from the student's code."""


_originals: dict[str, types.FunctionType] = {}
_student_file: str | None = None
tripped: list[str] = []  # names of guarded functions the student's code called, in order


def _from_student_code() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename == _student_file:
            return True
        frame = frame.f_back
    return False


def _call(name: str, args, kwargs):
    if _student_file is not None and _from_student_code():
        tripped.append(name)
        raise DelegationError(f"numvgg's own {name}() is off limits in this exercise: write it yourself")
    return _originals[name](*args, **kwargs)


def _plain_function(obj):
    """The function object behind ``obj`` (a function, a method, a staticmethod)."""
    obj = getattr(obj, "__func__", obj)
    return obj if isinstance(obj, types.FunctionType) else None


def install(functions: dict, student_file: str) -> list[str]:
    """Guard ``{display name: function}``; calls from ``student_file`` will be refused.

    Returns the names that could be guarded (a function with a closure keeps
    its code: a closure's cells cannot be moved to the guard).
    """
    global _student_file
    _student_file = student_file
    guarded = []
    for name, obj in functions.items():
        func = _plain_function(obj)
        if func is None or func.__closure__ or name in _originals:
            continue
        original = types.FunctionType(func.__code__, func.__globals__, func.__name__, func.__defaults__)
        original.__kwdefaults__ = func.__kwdefaults__
        _originals[name] = original
        namespace: dict = {}
        exec(_GUARD_SOURCE.format(name=name), namespace)
        func.__code__ = namespace["guard"].__code__
        guarded.append(name)
    return guarded
