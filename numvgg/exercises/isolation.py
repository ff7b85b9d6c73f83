"""Grade one submission with its code in a separate process.

Why: a student's file that calls ``sys.exit()``, loops forever, crashes the
interpreter, eats all memory or rewrites numvgg (``checker.run_checks = ...``)
must cost that student a FAIL line and nothing else -- not the grader, not a
teacher's batch, not the verdict.

How (see :mod:`.child` for the other side):

1. ``python -P -m numvgg.exercises.child`` runs the file under a wall-clock
   time limit and an address-space cap (``RLIMIT_AS``), in a session of its
   own (killed as a group, with any process it started), in an empty working
   folder, its stdout and stderr captured but never read for the verdict.
2. It sends back, over a pipe, a record of every call of the student's
   functions: a fingerprint of the inputs, and the result, exception or
   in-place change.
3. Here, in the grader's process -- where the student's code never ran, so
   numvgg is numvgg -- every check runs again with the student's functions
   replaced by :class:`Replayer` objects that hand back the recorded results.
   The expected values are computed here; the comparison is made here. A
   record whose inputs differ from the grader's own (the file changed numvgg
   or the inputs over there) fails the check.

What it does not do: it is not a security sandbox. The file runs as the
grader's user with the same file system and network; ``RLIMIT_AS`` caps memory
but not disk or CPU use by other processes. Run a class's files on a machine
or account that holds nothing to protect.
"""

from __future__ import annotations

import collections
import inspect
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import wire
from .catalog import get_exercise
from .checker import (
    FAIL,
    CheckResult,
    MissingFunction,
    Report,
    StudentCodeError,
    run_check,
)

# A whole submission normally takes about a second; these leave room for slow
# solutions on a loaded machine, and stop an endless loop or a memory hog early.
DEFAULT_TIMEOUT = 60.0  # seconds, for importing the file and every check
DEFAULT_MEMORY_MB = 2048  # address space of the submission's process
_OUTPUT_KEPT = 4000  # characters of the student's printed output kept for the report


@dataclass(frozen=True)
class Limits:
    """The time limit (seconds, wall clock) and memory cap (MiB, ``None``: no cap) per submission."""

    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int | None = DEFAULT_MEMORY_MB

    def __post_init__(self):
        if not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if self.memory_mb is not None and not (isinstance(self.memory_mb, int) and self.memory_mb >= 256):
            raise ValueError(
                f"memory_mb must be an integer of at least 256 (MiB; numpy alone needs ~150), "
                f"got {self.memory_mb!r}"
            )


@dataclass
class _ChildRun:
    messages: list
    timed_out: bool = False
    unreadable: str = ""
    returncode: int | None = None
    output: str = ""


# -- running the child -------------------------------------------------------------------------------


def _child_env() -> dict:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding numvgg/
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    # One BLAS thread per submission: --jobs decides the parallelism.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    return env


def _run_child(exercise, path: Path, limits: Limits, extra=None) -> _ChildRun:
    request = {"exercise": exercise.spec(), "path": str(path), "memory_mb": limits.memory_mb, **(extra or {})}
    read_fd, write_fd = os.pipe()
    run = _ChildRun(messages=[])
    with (
        tempfile.TemporaryDirectory(prefix="numvgg-submission-") as workdir,
        tempfile.TemporaryFile() as output,
    ):
        try:
            proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "numvgg.exercises.child", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                cwd=workdir,
                env=_child_env(),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        try:
            try:
                proc.stdin.write(json.dumps(request).encode())
                proc.stdin.close()
            except BrokenPipeError:  # it died at once; the reason is read below
                pass
            _read_messages(read_fd, run, time.monotonic() + limits.timeout)
        finally:
            os.close(read_fd)
            _kill_group(proc)
            run.returncode = proc.wait()
        output.seek(0)
        text = output.read().decode("utf-8", errors="replace")
        run.output = text if len(text) <= _OUTPUT_KEPT else "...\n" + text[-_OUTPUT_KEPT:]
    return run


def _read_messages(fd: int, run: _ChildRun, deadline: float) -> None:
    reader = wire.FrameReader()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            run.timed_out = True
            return
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        data = os.read(fd, 1 << 20)
        if not data:  # the child closed the pipe: it has ended
            return
        try:
            messages = reader.feed(data)
        except Exception as exc:  # noqa: BLE001 -- anything unreadable ends the run
            run.unreadable = f"{type(exc).__name__}: {exc}"
            return
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("kind"), str):
                run.unreadable = f"a message that is not a record ({type(message).__name__})"
                return
            run.messages.append(message)
            if message["kind"] in ("done", "load_error", "tensors", "vgg_error") or (
                message["kind"] == "loaded" and message.get("borrowed")
            ):
                return


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _end_reason(run: _ChildRun, limits: Limits) -> str:
    """Why the submission's process stopped before it finished, in one phrase."""
    if run.timed_out:
        return f"time limit: stopped after {limits.timeout:g} s (an endless loop, or far too slow?)"
    if run.unreadable:
        return f"its process sent unreadable results ({run.unreadable})"
    code = run.returncode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        memory = (
            f"; out of memory? the limit is {limits.memory_mb} MiB"
            if name in ("SIGKILL", "SIGABRT") and limits.memory_mb
            else ""
        )
        return f"crash: the process running it died from signal {name}{memory}"
    return (
        f"exit: the process running it ended early with exit code {code} "
        f"(sys.exit() or os._exit() in the file?)"
    )


# -- replaying in the grader ---------------------------------------------------------------------------

_KINDS = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.VAR_POSITIONAL,
    inspect.Parameter.KEYWORD_ONLY,
    inspect.Parameter.VAR_KEYWORD,
)


def _signature(spec) -> inspect.Signature | None:
    """The student's signature rebuilt from ``(name, kind, has a default)`` (defaults are placeholders)."""
    try:
        return inspect.Signature(
            [
                inspect.Parameter(
                    name, _KINDS[kind], default=None if has_default else inspect.Parameter.empty
                )
                for name, kind, has_default in spec
            ]
        )
    except (TypeError, ValueError, IndexError):
        return None


class Replayer:
    """Stands in for one student function in the grader: hands back what the real one did."""

    def __init__(self, name: str, spec, queue: collections.deque):
        self.__name__ = name
        self.__signature__ = _signature(spec)
        self._queue = queue

    def __call__(self, *args, **kwargs):
        if (
            not self._queue
            or not isinstance(self._queue[0], dict)
            or self._queue[0].get("fn") != self.__name__
        ):
            raise StudentCodeError(
                f"the calls your file received in its own process differ from this check's "
                f"(the file changed numvgg or the checks?): no record of this "
                f"{self.__name__}() call"
            )
        record = self._queue.popleft()
        if record.get("digest") != wire.digest(args, kwargs):
            raise StudentCodeError(
                f"{self.__name__}() received other inputs in its own process than the "
                f"check gives it: the file changed numvgg or the check's inputs"
            )
        arrays = wire.array_args(args, kwargs)
        for index, new in (record.get("changed") or {}).items():
            if (
                isinstance(index, int)
                and 0 <= index < len(arrays)
                and getattr(new, "shape", None) == arrays[index].shape
            ):
                arrays[index][...] = new  # the same in-place change, so ``call`` sees it
        tripped = record.get("tripped") or []
        if tripped:
            names = ", ".join(f"{name}()" for name in tripped)
            raise StudentCodeError(
                f"your code calls numvgg's own {names} (directly or through a wrapper, a "
                f"layer or an optimizer): the exercise is to write it yourself"
            )
        if "error" in record:
            raise StudentCodeError(str((record["error"] or {}).get("text", "error in your code")))
        return wire.decode(record.get("result"), arrays)


class _ReplayImplementation:
    def __init__(self, replayers: dict, origin: str):
        self._replayers, self._origin = replayers, origin

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._replayers[name]
        except KeyError:
            raise MissingFunction(f"{self._origin} defines no function {name}()") from None


def run_isolated(exercise, path: Path, limits: Limits | None = None) -> Report:
    """The report for ``path`` on ``exercise``, its code run apart (see the module docstring)."""
    limits = limits or Limits()
    path = Path(path)
    report = Report(exercise.name, str(path))
    if not path.is_file():
        report.error = f"{path} does not exist (or is not a file)"
        return report
    run = _run_child(exercise, path.resolve(), limits)
    report.output = run.output
    try:
        _judge(exercise, path, run, limits, report)
    except Exception as exc:  # noqa: BLE001 -- malformed records are the submission's doing
        report.results = []
        report.error = f"its process sent malformed results ({type(exc).__name__}: {exc})"
    return report


def _judge(exercise, path: Path, run: _ChildRun, limits: Limits, report: Report) -> None:
    by_kind = collections.defaultdict(list)
    for message in run.messages:
        by_kind[message["kind"]].append(message)
    if not by_kind["ready"]:
        report.grader_failed = True  # no student code had run yet: the grading itself broke
        report.error = (
            f"the grading process stopped before loading {path.name} "
            f"({_end_reason(run, limits)})" + (f":\n{run.output.strip()}" if run.output.strip() else "")
        )
        return
    if by_kind["load_error"]:
        report.error = str(by_kind["load_error"][0].get("detail"))
        return
    if not by_kind["loaded"]:
        report.error = f"{_end_reason(run, limits)}, while importing {path.name}"
        return
    loaded = by_kind["loaded"][0]
    borrowed = list(loaded.get("borrowed") or [])
    if borrowed:
        report.error = (
            f"{', '.join(f'{n}()' for n in borrowed)} in {path.name} is numvgg's own function "
            f"(imported, not written): nothing to check"
        )
        return
    specs = dict(loaded.get("functions") or {})
    records = {m.get("index"): list(m.get("calls") or []) for m in by_kind["check"]}
    started = {m.get("index") for m in by_kind["start"]}
    finished = bool(by_kind["done"])
    for index, check in enumerate(exercise.build_checks()):
        if index in records:
            queue = collections.deque(records[index])
            impl = _ReplayImplementation(
                {n: Replayer(n, spec, queue) for n, spec in specs.items()}, path.name
            )
            report.results.append(run_check(check, impl, student_path=path.resolve()))
        elif index in started:
            report.results.append(
                CheckResult(
                    check.title,
                    FAIL,
                    f"{_end_reason(run, limits)}, during this check",
                    getattr(check, "points", 1),
                )
            )
        elif not finished:
            report.results.append(
                CheckResult(
                    check.title,
                    FAIL,
                    "not run: the process running your code had ended",
                    getattr(check, "points", 1),
                )
            )
        else:
            report.results.append(
                CheckResult(
                    check.title, FAIL, "no result came back for this check", getattr(check, "points", 1)
                )
            )


def check_file(name: str, path, limits: Limits | None = None, exercise_dirs=()) -> Report:
    """Check the student's file at ``path`` against exercise ``name``.

    The file runs in a process of its own, under ``limits`` (:class:`Limits`:
    a time limit and a memory cap); the verdict is made here, from what that
    process sends back (see the module docstring).
    """
    exercise = get_exercise(name, exercise_dirs)
    return run_isolated(exercise, Path(path), limits or Limits())
