"""Grade an exercise: load the student's file, run its checks, write the report.

:func:`check_file` runs the student's file in a process of its own and judges
the results here (:mod:`.isolation`); inside that process the file is
imported with :func:`load_student_file` (``importlib`` from its path, under a
private module name, removed from ``sys.modules`` afterwards), so nothing
else on ``sys.path`` is picked up.

Every check ends in one of four ways, each one line of the report:

* ``PASS``, with a detail such as the largest error;
* ``FAIL``, with what differed (:class:`~.grading.CheckFailed`);
* ``FAIL ... not implemented``: the function still raises ``NotImplementedError``;
* ``FAIL ... error in your code``: an exception, shown as its last frame in
  the student's file and its message -- not a traceback through numvgg.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .catalog import Exercise, get_exercise
from .grading import CheckFailed

PASS, FAIL = "PASS", "FAIL"
_module_ids = itertools.count()


class StudentFileError(Exception):
    """The student's file cannot be imported; the message says why, briefly."""


class MissingFunction(Exception):
    """The student's file does not define a function the exercise needs."""


@dataclass
class CheckResult:
    title: str
    status: str  # PASS or FAIL
    detail: str = ""
    points: int = 1  # what the check is worth (a passed check earns them all)

    def line(self) -> str:
        if not self.detail:
            return f"  {self.status}  {self.title}"
        sep = "  -- " if self.status == PASS else ": "
        return f"  {self.status}  {self.title}{sep}{self.detail}"


@dataclass
class Report:
    """The outcome of checking one exercise; ``str(report)`` is the printed report."""

    exercise: str
    source: str  # the file, or "numvgg (reference)"
    results: list[CheckResult] = field(default_factory=list)
    error: str = ""  # the file could not be loaded at all
    output: str = ""  # what the student's code printed (the end of it)
    grader_failed: bool = False  # the grading itself broke, not the student's code

    @property
    def points(self) -> int:
        return sum(r.points for r in self.results if r.status == PASS)

    @property
    def max_points(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.results) and all(r.status == PASS for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def __str__(self) -> str:
        lines = [f"Checking exercise {self.exercise} in {self.source}"]
        if self.error:
            lines.append(f"  FAIL  {self.error}")
            return "\n".join(lines)
        lines += [r.line() for r in self.results]
        n_pass = sum(r.status == PASS for r in self.results)
        if self.passed:
            lines.append(f"All {len(self.results)} checks passed.")
        else:
            lines.append(f"{n_pass} of {len(self.results)} checks passed.")
        return "\n".join(lines)


class Implementation:
    """The functions under test, reachable as attributes (``impl.im2col``).

    Asking for a function the file does not define raises
    :class:`MissingFunction`, which the report turns into one clear line.
    """

    def __init__(self, functions: dict, origin: str):
        self._functions = functions
        self._origin = origin

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._functions[name]
        except KeyError:
            raise MissingFunction(f"{self._origin} defines no function {name}()") from None


# -- loading ---------------------------------------------------------------------------------


def _brief_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def load_student_file(path) -> object:
    """Import the file at ``path`` as a fresh module and return it.

    Raises:
        StudentFileError: missing file, syntax error or an exception while
            importing, with the file's line in the message.
    """
    path = Path(path)
    if not path.is_file():
        raise StudentFileError(f"{path} does not exist (or is not a file)")
    module_name = f"_numvgg_exercise_submission_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StudentFileError(f"{path} cannot be imported as Python (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise StudentFileError(
            f"cannot import {path.name}: SyntaxError at line {exc.lineno}: {exc.msg}"
            + (f"\n        {exc.text.strip()}" if exc.text else "")
        ) from None
    except Exception as exc:  # noqa: BLE001 -- any error in the file is the student's
        where = _student_frame(exc, path)
        raise StudentFileError(
            f"cannot import {path.name}: {_brief_exception(exc)}" + (f" ({where})" if where else "")
        ) from None
    finally:
        sys.modules.pop(module_name, None)
    return module


def _same_file(a: str, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _student_frame(exc: BaseException, path: Path | None) -> str:
    """``"im2col.py, line 12, in im2col: cols = ..."`` for the last frame in the student's file."""
    if path is None:
        return ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _same_file(f.filename, path)]
    if not frames:
        return ""
    frame = frames[-1]
    code = f": {frame.line.strip()}" if frame.line else ""
    return f"{path.name}, line {frame.lineno}, in {frame.name}{code}"


def _not_implemented_name(exc: BaseException) -> str:
    """The function that raised ``NotImplementedError`` (the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return frames[-1].name if frames else "a function"


def describe_student_exception(exc: BaseException, path, memory_mb=None) -> dict:
    """What a student's exception means, as ``{"kind": ..., "text": ...}`` for the report.

    Kinds: ``not_implemented``, ``exit`` (``sys.exit()``), ``memory``,
    ``delegation`` (numvgg's own function called, see :mod:`.tripwire`) and
    ``exception``.
    """
    from .tripwire import DelegationError

    path = Path(path)
    where = _student_frame(exc, path.resolve() if path.exists() else path)
    at = f" ({where})" if where else ""
    if isinstance(exc, NotImplementedError):
        return {
            "kind": "not_implemented",
            "text": f"not implemented ({_not_implemented_name(exc)}() still raises NotImplementedError)",
        }
    if isinstance(exc, SystemExit):
        return {
            "kind": "exit",
            "text": f"your code called sys.exit({exc.code!r}){at}: a solution returns its "
            f"result, it never ends the program",
        }
    if isinstance(exc, MemoryError):
        limit = f" (the limit is {memory_mb} MiB)" if memory_mb else ""
        return {"kind": "memory", "text": f"your code ran out of memory{limit}{at}"}
    if isinstance(exc, DelegationError):
        return {"kind": "delegation", "text": f"{exc}{at}"}
    if where:
        return {"kind": "exception", "text": f"error in your code, {where} -> {_brief_exception(exc)}"}
    return {"kind": "exception", "text": f"error in your code -> {_brief_exception(exc)}"}


class StudentCodeError(Exception):
    """Raised in the grader when the replayed student call had raised (the message says how)."""


# -- running ------------------------------------------------------------------------------------


def run_check(check, impl, student_path: Path | None = None) -> CheckResult:
    """Run one check on ``impl``; every way it can end becomes one :class:`CheckResult`."""
    result = _run_check(check, impl, student_path)
    result.points = getattr(check, "points", 1)
    return result


def _run_check(check, impl, student_path):
    try:
        detail = check.run(impl)
    except CheckFailed as failure:
        return CheckResult(check.title, FAIL, str(failure))
    except (MissingFunction, StudentCodeError) as failure:
        return CheckResult(check.title, FAIL, str(failure))
    except NotImplementedError as exc:
        return CheckResult(
            check.title,
            FAIL,
            f"not implemented ({_not_implemented_name(exc)}() still raises NotImplementedError)",
        )
    except Exception as exc:  # noqa: BLE001 -- report, never crash the grader
        where = _student_frame(exc, student_path)
        if where:
            detail = f"error in your code, {where} -> {_brief_exception(exc)}"
        elif student_path is not None:
            detail = f"could not use your result: {_brief_exception(exc)}"
        else:  # the reference itself failed: a bug in numvgg, so show where
            last = traceback.extract_tb(exc.__traceback__)[-1]
            detail = (
                f"error in numvgg, {os.path.basename(last.filename)}, line {last.lineno}, "
                f"in {last.name} -> {_brief_exception(exc)}"
            )
        return CheckResult(check.title, FAIL, detail)
    return CheckResult(check.title, PASS, detail or "")


def run_checks(
    exercise: Exercise, impl: Implementation, student_path: Path | None = None
) -> list[CheckResult]:
    """Run every check of ``exercise`` on ``impl``; one :class:`CheckResult` each."""
    return [run_check(check, impl, student_path) for check in exercise.build_checks()]


def check_reference(name: str, exercise_dirs=()) -> Report:
    """Run exercise ``name``'s checks on numvgg's own functions (they must all pass)."""
    exercise = get_exercise(name, exercise_dirs)
    impl = Implementation(exercise.reference_functions(), "numvgg")
    report = Report(exercise.name, "numvgg (reference)")
    report.results = run_checks(exercise, impl)
    return report
