"""The process a submission runs in: ``python -m numvgg.exercises.child FD``.

The grader (:mod:`.isolation`) starts it with a JSON request on stdin and the
write end of a pipe as file descriptor ``FD``. This process caps its own
memory, loads the exercise, guards numvgg's reference functions
(:mod:`.tripwire`), imports the student's file and runs the exercise's checks
with each student function wrapped in a recorder. It judges nothing: it sends
back, check by check, what every call of a student function received (a
fingerprint) and returned, raised or changed in place (:mod:`.wire`). The
grader replays those records through the same checks in its own process,
where the student's code never ran.

Messages, in order: ``ready``; ``loaded`` (or ``load_error``); for each check
``start`` then ``check``; ``done``. A process that stops early (exit, crash,
time limit) leaves the grader with a prefix of these, and that says where.
"""

from __future__ import annotations

import inspect
import json
import os
import sys

#: Largest file the process may write (its captured output is one): a print loop cannot fill the disk.
MAX_FILE_BYTES = 64 * 1024 * 1024


def _limit_resources(megabytes) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    if megabytes:
        limit = int(megabytes) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _signature_spec(func) -> list:
    """The student's parameters (name, kind, has a default), so the grader can bind calls alike."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    return [(p.name, int(p.kind), p.default is not inspect.Parameter.empty) for p in parameters]


class Recorder:
    """Wraps one student function: calls it and appends what happened to ``calls``."""

    def __init__(self, name, func, calls, student_path, memory_mb):
        self.__name__ = name
        self.__signature__ = inspect.signature(func) if _signature_spec(func) else None
        self._func, self._calls, self._path, self._memory_mb = func, calls, student_path, memory_mb

    def __call__(self, *args, **kwargs):
        import numpy as np

        from . import tripwire, wire
        from .checker import describe_student_exception

        arrays = wire.array_args(args, kwargs)
        before = [a.copy() for a in arrays]
        record = {"fn": self.__name__, "digest": wire.digest(args, kwargs)}
        first_trip = len(tripwire.tripped)
        try:
            result = self._func(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 -- sys.exit() inside a function is recorded too
            record["error"] = describe_student_exception(exc, self._path, self._memory_mb)
            result = None
        record["tripped"] = sorted(set(tripwire.tripped[first_trip:]))
        record["changed"] = {
            k: np.array(a)
            for k, (a, old) in enumerate(zip(arrays, before))
            if a.shape != old.shape or not np.array_equal(a, old, equal_nan=True)
        }
        if "error" not in record:
            record["result"] = wire.encode(result, arrays)
        self._calls.append(record)
        if "error" in record:
            raise _Stop()
        return result


class _Stop(Exception):
    """Ends a check after the student's code raised: the rest of it is the grader's business."""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    fd = int(argv[0])
    request = json.loads(sys.stdin.read())

    # Imports first, then the caps: they are for the student's code.
    import numpy  # noqa: F401

    from . import tripwire, wire
    from .catalog import from_spec
    from .checker import (
        Implementation,
        StudentFileError,
        describe_student_exception,
        load_student_file,
    )

    def send(message):
        wire.write_frame(fd, message)

    exercise = from_spec(request["exercise"])
    checks = exercise.build_checks()
    student_path = request["path"]
    memory_mb = request.get("memory_mb")
    _limit_resources(memory_mb)
    # Resolved before the student's file runs: it may rebind numvgg's names.
    references = exercise.reference_functions()
    tripwire.install(exercise.guarded_functions(), student_path)
    send({"kind": "ready"})

    try:
        module = load_student_file(student_path)
    except StudentFileError as exc:
        send({"kind": "load_error", "detail": str(exc)})
        return 0
    except BaseException as exc:  # noqa: BLE001 -- SystemExit, MemoryError at import
        detail = describe_student_exception(exc, student_path, memory_mb)
        send({"kind": "load_error", "detail": f"while importing the file: {detail['text']}"})
        return 0
    functions = {n: getattr(module, n) for n in exercise.function_names if callable(getattr(module, n, None))}
    borrowed = [n for n, ref in references.items() if functions.get(n) is ref]
    send(
        {
            "kind": "loaded",
            "functions": {n: _signature_spec(f) for n, f in functions.items()},
            "borrowed": borrowed,
            "tripped": sorted(set(tripwire.tripped)),
        }
    )
    if borrowed:
        return 0
    if request.get("mode") == "vgg16":
        from .vgg_run import PLUG_POINTS, child_main

        missing = [n for n in PLUG_POINTS[exercise.name] if n not in functions]
        if missing:
            send(
                {
                    "kind": "load_error",
                    "detail": f"{os.path.basename(student_path)} defines no function "
                    f"{', '.join(f'{n}()' for n in missing)}",
                }
            )
            return 0
        child_main(request, send, functions)
        return 0

    for index, check in enumerate(checks):
        send({"kind": "start", "index": index})
        calls: list = []
        impl = Implementation(
            {n: Recorder(n, f, calls, student_path, memory_mb) for n, f in functions.items()},
            os.path.basename(student_path),
        )
        try:
            check.run(impl)
        except BaseException:  # noqa: BLE001 -- the verdict is made in the grader
            pass
        send({"kind": "check", "index": index, "calls": calls})
    send({"kind": "done"})
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # A thread the student's file started must not keep this process alive.
    os._exit(code)
