"""What crosses the pipe from a submission's process back to the grader.

The student's process (:mod:`.child`) records what each of the student's
functions returned; the grader (:mod:`.isolation`) reads those records and
judges them itself. Everything sent is plain data, made so by :func:`encode`:

* NumPy arrays (copied to plain ``ndarray``), NumPy scalars, ``int``,
  ``float``, ``bool``, ``complex``, ``str``, ``None``;
* tuples, lists and dicts of those (a NamedTuple defined in numvgg keeps its
  class, :class:`NumvggTuple`; any other NamedTuple becomes a plain tuple);
* :class:`ArgRef`: "this is argument number k itself" (a function that returns
  its input unchanged must be caught, and a copy would hide that);
* :class:`Opaque`: anything else, kept by its type name only (the student's own
  cache class means nothing outside the student's process).

The grader trusts none of it: frames are unpickled by :class:`SafeUnpickler`,
which builds only the NumPy and builtin types above (a forged pickle cannot
run code in the grader), and are size-capped.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
from dataclasses import dataclass

import numpy as np

# A frame larger than this is refused: a submission cannot fill the grader's memory.
MAX_FRAME_BYTES = 256 * 1024 * 1024
_HEADER = struct.Struct("<Q")
_PLAIN = (bool, int, float, complex, str, type(None))


@dataclass(frozen=True)
class Opaque:
    """A value the grader cannot use, known by its type name (``"MyCache"``)."""

    type_name: str


@dataclass(frozen=True)
class ArgRef:
    """The value is the call's array argument number ``index`` itself (see :func:`array_args`)."""

    index: int


@dataclass(frozen=True)
class NumvggTuple:
    """A NamedTuple of numvgg's own (``ConvCache``), rebuilt as that class by :func:`decode`."""

    module: str
    qualname: str
    items: tuple


# -- arrays among a call's arguments ------------------------------------------------------------


def array_args(args, kwargs=None) -> list[np.ndarray]:
    """The arrays a call received: each array argument and each array inside a tuple argument.

    The same walk as :func:`numvgg.exercises.grading.call` makes when it looks for
    in-place changes (positional arguments, then keyword arguments by name), so
    both sides number the arrays the same way.
    """
    found = []
    values = list(args) + [kwargs[k] for k in sorted(kwargs or {})]
    for value in values:
        if isinstance(value, np.ndarray):
            found.append(value)
        elif isinstance(value, tuple):
            found.extend(item for item in value if isinstance(item, np.ndarray))
    return found


# -- encoding (in the student's process) ----------------------------------------------------------


def encode(value, arg_arrays=(), depth: int = 0):
    """``value`` as plain data (see the module docstring)."""
    if depth > 20:
        return Opaque("(nested too deeply)")
    if isinstance(value, (Opaque, ArgRef)):
        return value
    if isinstance(value, NumvggTuple):
        return NumvggTuple(
            value.module, value.qualname, tuple(encode(v, arg_arrays, depth + 1) for v in value.items)
        )
    if isinstance(value, np.ndarray):
        for k, arg in enumerate(arg_arrays):
            if value is arg:
                return ArgRef(k)
        if value.dtype.hasobject:
            return Opaque(f"ndarray of dtype {value.dtype}")
        return np.array(value, subok=False, copy=True)
    if isinstance(value, np.generic):
        return value if not isinstance(value, np.object_) else Opaque("numpy object scalar")
    if type(value) in _PLAIN:
        return value
    if isinstance(value, _PLAIN):  # a subclass of int, float, ...: keep the number only
        for base in _PLAIN:
            if isinstance(value, base):
                return base(value)
    if isinstance(value, tuple):
        items = tuple(encode(v, arg_arrays, depth + 1) for v in value)
        cls = type(value)
        if cls is not tuple and hasattr(cls, "_fields") and cls.__module__.startswith("numvgg."):
            return NumvggTuple(cls.__module__, cls.__qualname__, items)
        return items
    if isinstance(value, list):
        return [encode(v, arg_arrays, depth + 1) for v in value]
    if isinstance(value, dict) and all(type(k) is str for k in value):
        return {k: encode(v, arg_arrays, depth + 1) for k, v in value.items()}
    return Opaque(type(value).__name__)


def digest(args, kwargs) -> str:
    """A fingerprint of a call's (encoded) arguments: both sides must have made the same call."""
    h = hashlib.blake2b(digest_size=16)

    def feed(value):
        if isinstance(value, np.ndarray):
            h.update(f"a{value.dtype.str}{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, (tuple, list)):
            h.update(f"({len(value)}".encode())
            for item in value:
                feed(item)
        elif isinstance(value, NumvggTuple):
            feed(value.items)
        elif isinstance(value, dict):
            for key in sorted(value):
                h.update(key.encode())
                feed(value[key])
        else:
            h.update(repr(value).encode())

    feed(tuple(encode(a) for a in args))
    feed({k: encode(v) for k, v in kwargs.items()})
    return h.hexdigest()


# -- frames -----------------------------------------------------------------------------------------


def write_frame(fd: int, message) -> None:
    """Send one message: its length, then its pickle."""
    data = pickle.dumps(message, protocol=4)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FrameReader:
    """Collects bytes from the pipe and hands out complete messages."""

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list:
        self._buffer += data
        messages = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > MAX_FRAME_BYTES:
                raise ValueError(f"a message of {size} bytes (more than {MAX_FRAME_BYTES})")
            if len(self._buffer) < _HEADER.size + size:
                break
            payload = bytes(self._buffer[_HEADER.size : _HEADER.size + size])
            del self._buffer[: _HEADER.size + size]
            messages.append(SafeUnpickler(io.BytesIO(payload)).load())
        return messages


# -- decoding (in the grader) -------------------------------------------------------------------

_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.numeric", "_frombuffer"),
    ("builtins", "complex"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    (__name__, "Opaque"),
    (__name__, "ArgRef"),
    (__name__, "NumvggTuple"),
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles only NumPy arrays and scalars, builtin values and this module's records."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a message from the submission's process")


def decode(value, arg_arrays=()):
    """Inverse of :func:`encode` in the grader: ArgRefs become the grader's own arguments."""
    if isinstance(value, ArgRef):
        if 0 <= value.index < len(arg_arrays):
            return arg_arrays[value.index]
        return Opaque("(unknown argument)")
    if isinstance(value, NumvggTuple):
        items = tuple(decode(v, arg_arrays) for v in value.items)
        cls = _numvgg_namedtuple(value.module, value.qualname)
        return cls(*items) if cls is not None and len(items) == len(cls._fields) else items
    if isinstance(value, tuple):
        return tuple(decode(v, arg_arrays) for v in value)
    if isinstance(value, list):
        return [decode(v, arg_arrays) for v in value]
    if isinstance(value, dict):
        return {k: decode(v, arg_arrays) for k, v in value.items()}
    return value


def _numvgg_namedtuple(module: str, qualname: str):
    import importlib

    if not module.startswith("numvgg.") or "." in qualname:
        return None
    try:
        cls = getattr(importlib.import_module(module), qualname)
    except (ImportError, AttributeError):
        return None
    return cls if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields") else None
