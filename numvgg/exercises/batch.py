"""Grade a class: ``numvgg exercises grade SUBMISSIONS/``.

The naming rule (one entry per student in ``SUBMISSIONS/``):

* a folder ``SUBMISSIONS/STUDENT/`` holding ``EXERCISE.py`` for each exercise
  handed in (``alice/im2col.py``, ``alice/col2im.py``); other files are ignored;
* or a single file ``SUBMISSIONS/STUDENT__EXERCISE.py`` (two underscores), the
  shape many course platforms export; a student may have several such files.

Hidden entries (``.name``) and ``__pycache__`` are skipped. Every submission
is graded on its own in a separate process (:mod:`.isolation`); ``--jobs N``
grades N at once. A student who did not hand in an exercise gets 0 points for
it, marked ``missing``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .checker import Report
from .isolation import Limits, run_isolated

SEPARATOR = "__"


@dataclass
class Submission:
    student: str
    exercise: str
    path: Path


@dataclass
class ClassResult:
    """Everything a grading run produced: one :class:`Report` per (student, exercise)."""

    exercises: list[str]
    students: list[str]
    reports: dict = field(default_factory=dict)  # (student, exercise) -> Report; missing: absent
    max_points: dict = field(default_factory=dict)  # exercise -> points of a perfect solution

    @property
    def run_failed(self) -> bool:
        """The grading itself broke somewhere (not a student's code): the exit code says so."""
        return any(report.grader_failed for report in self.reports.values())

    def points(self, student: str) -> int:
        return sum(self.reports[(student, e)].points for e in self.exercises if (student, e) in self.reports)

    @property
    def total_max(self) -> int:
        return sum(self.max_points[e] for e in self.exercises)


def find_submissions(folder, known_exercises) -> list[Submission]:
    """The submissions in ``folder`` by the naming rule; files of other names are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"submissions folder {folder} does not exist (or is not a folder)")
    known = set(known_exercises)
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            found += [
                Submission(entry.name, f.stem, f) for f in sorted(entry.glob("*.py")) if f.stem in known
            ]
        elif entry.suffix == ".py" and SEPARATOR in entry.stem:
            student, _, exercise = entry.stem.rpartition(SEPARATOR)
            if student and exercise in known:
                found.append(Submission(student, exercise, entry))
    return found


def grade_folder(
    folder, exercises, limits: Limits | None = None, jobs: int = 1, progress=None
) -> ClassResult:
    """Grade every submission in ``folder`` for ``exercises`` (exercise objects).

    Args:
        progress: called as ``progress(students_done, students_total)`` after each
            student's last submission is graded.
    """
    limits = limits or Limits()
    by_name = {exercise.name: exercise for exercise in exercises}
    submissions = find_submissions(folder, by_name)
    students = sorted({s.student for s in submissions})
    result = ClassResult(exercises=list(by_name), students=students)
    result.max_points = {
        name: sum(getattr(c, "points", 1) for c in ex.build_checks()) for name, ex in by_name.items()
    }
    left = {student: sum(s.student == student for s in submissions) for student in students}
    done = 0

    def finished(submission: Submission, report: Report) -> None:
        nonlocal done
        result.reports[(submission.student, submission.exercise)] = report
        left[submission.student] -= 1
        if left[submission.student] == 0:
            done += 1
            if progress:
                progress(done, len(students))

    if jobs <= 1:
        for submission in submissions:
            finished(submission, run_isolated(by_name[submission.exercise], submission.path, limits))
        return result
    # Threads are enough: each waits on its submission's process, and the replay here is
    # the smaller part of the work. (Forking this process could copy a Keras/TensorFlow
    # runtime in an unusable state; spawning would rerun ``python -m numvgg``'s main.)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_isolated, by_name[s.exercise], s.path, limits): s for s in submissions}
        for future in as_completed(futures):
            submission = futures[future]
            try:
                report = future.result()
            except Exception as exc:  # noqa: BLE001 -- a grader error is a failed run, said so
                report = Report(
                    submission.exercise,
                    str(submission.path),
                    error=f"grading failed: {type(exc).__name__}: {exc}",
                    grader_failed=True,
                )
            finished(submission, report)
    return result


# -- output ----------------------------------------------------------------------------------------------


def table(result: ClassResult) -> str:
    """The on-screen summary: one row per student, points per exercise and in total."""
    header = ["student", *result.exercises, "total"]
    rows = []
    for student in result.students:
        cells = [student]
        for exercise in result.exercises:
            report = result.reports.get((student, exercise))
            if report is None:
                cells.append("missing")
            elif report.error:
                cells.append(f"0/{result.max_points[exercise]} !")
            else:
                cells.append(f"{report.points}/{report.max_points}")
        cells.append(f"{result.points(student)}/{result.total_max}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    text = [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
    if any(r.error for r in result.reports.values()):
        text.append("! the file could not be graded at all (see --csv or --json for why)")
    return "\n".join(text)


CSV_COLUMNS = ["student", "exercise", "file", "check", "status", "points", "max_points", "detail"]


def to_rows(result: ClassResult) -> list[dict]:
    """One row per check of each submission; a missing or unloadable file gets one row."""
    rows = []
    for student in result.students:
        for exercise in result.exercises:
            report = result.reports.get((student, exercise))
            base = {"student": student, "exercise": exercise, "file": report.source if report else ""}
            if report is None:
                rows.append(
                    {
                        **base,
                        "check": "",
                        "status": "MISSING",
                        "points": 0,
                        "max_points": result.max_points[exercise],
                        "detail": "no file handed in",
                    }
                )
                continue
            if report.error:
                rows.append(
                    {
                        **base,
                        "check": "",
                        "status": "FAIL",
                        "points": 0,
                        "max_points": result.max_points[exercise],
                        "detail": report.error,
                    }
                )
            for r in report.results:
                rows.append(
                    {
                        **base,
                        "check": r.title,
                        "status": r.status,
                        "points": r.points if r.status == "PASS" else 0,
                        "max_points": r.points,
                        "detail": r.detail,
                    }
                )
    return rows


def to_csv(result: ClassResult) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(to_rows(result))
    return out.getvalue()


def to_json(result: ClassResult, limits: Limits | None = None) -> str:
    students = []
    for student in result.students:
        per_exercise = {}
        for exercise in result.exercises:
            report = result.reports.get((student, exercise))
            if report is None:
                per_exercise[exercise] = {
                    "status": "missing",
                    "points": 0,
                    "max_points": result.max_points[exercise],
                    "checks": [],
                }
                continue
            per_exercise[exercise] = {
                "status": "passed" if report.passed else "failed",
                "file": report.source,
                "points": report.points,
                "max_points": result.max_points[exercise],
                "error": report.error,
                "checks": [
                    {
                        "title": r.title,
                        "status": r.status,
                        "points": r.points if r.status == "PASS" else 0,
                        "max_points": r.points,
                        "detail": r.detail,
                    }
                    for r in report.results
                ],
            }
        students.append(
            {
                "student": student,
                "points": result.points(student),
                "max_points": result.total_max,
                "exercises": per_exercise,
            }
        )
    document = {"exercises": result.exercises, "students": students}
    if limits is not None:
        document["limits"] = {"timeout_s": limits.timeout, "memory_mb": limits.memory_mb}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_atomically(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: a failed run leaves the old file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def progress_bar(total_students: int, stream=None):
    """``progress(done, total)`` drawing numvgg's Keras-style bar over students on stderr."""
    from ..progbar import Progbar

    bar = Progbar(total_students, unit_name="student", stream=stream or sys.stderr)
    return lambda done, total: bar.update(done)
