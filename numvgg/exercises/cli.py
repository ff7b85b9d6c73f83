"""The ``exercises`` command: list, start and check the course exercises.

::

    numvgg exercises list                    # one exercise a line: name, then what it asks
    numvgg exercises start NAME DIR          # write DIR/NAME.py (skeleton) and DIR/NAME.md (text)
        [--hints none|some|full] [--lang en|zh]
    numvgg exercises check NAME FILE         # grade your file; exit code 0 only if all checks pass
    numvgg exercises check NAME --reference  # the same checks on numvgg's own code
    numvgg exercises grade SUBMISSIONS/      # a whole class: table, --csv, --json, --jobs N
    numvgg exercises run NAME FILE           # your passing function inside a real VGG16

Every action takes ``--exercises-dir DIR`` (repeatable) for teachers' own
exercises; ``check`` and ``grade`` take ``--timeout`` and ``--memory-mb``.

:func:`register` adds the command to the ``numvgg`` parser; :func:`main`
runs it on its own (``python -m numvgg.exercises ...``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "numvgg exercises"


def _cmd_list(args) -> int:
    from .catalog import all_exercises

    try:
        exercises = all_exercises(args.exercises_dir)
    except ValueError as exc:
        print(f"{PROG} list: {exc}", file=sys.stderr)
        return 2
    width = max(len(exercise.name) for exercise in exercises)
    for exercise in exercises:
        print(f"{exercise.name:<{width}}  {exercise.summary}")
    return 0


def _cmd_start(args) -> int:
    exercise = _exercise_or_none(args.name, args.exercises_dir)
    if exercise is None:
        return 2
    try:
        text = exercise.text(args.lang, args.hints)
    except ValueError as exc:
        print(f"{PROG} start: {exc}", file=sys.stderr)
        return 2
    directory = Path(args.directory)
    skeleton, notes = directory / f"{exercise.name}.py", directory / f"{exercise.name}.md"
    existing = [str(p) for p in (skeleton, notes) if p.exists()]
    if existing and not args.force:
        print(
            f"{PROG} start: {' and '.join(existing)} already exist; not overwriting your work "
            f"(add --force to replace)",
            file=sys.stderr,
        )
        return 1
    try:
        directory.mkdir(parents=True, exist_ok=True)
        skeleton.write_text(exercise.skeleton(), encoding="utf-8")
        notes.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"{PROG} start: cannot write into {directory}: {exc}", file=sys.stderr)
        return 1
    print(f"Wrote {skeleton} (the skeleton) and {notes} (the exercise).")
    extra = f" --exercises-dir {exercise.folder.parent}" if hasattr(exercise, "folder") else ""
    print(f"When ready: python -m numvgg.exercises check {exercise.name} {skeleton}{extra}")
    return 0


def _cmd_check(args) -> int:
    from .checker import check_reference
    from .isolation import check_file

    if _exercise_or_none(args.name, args.exercises_dir) is None:
        return 2
    if args.reference == (args.file is not None):
        print(f"{PROG} check: give either FILE or --reference (not both)", file=sys.stderr)
        return 2
    limits = _limits_or_none(args)
    if limits is None:
        return 2
    if args.reference:
        report = check_reference(args.name, args.exercises_dir)
    else:
        report = check_file(args.name, args.file, limits, args.exercises_dir)
        if report.output.strip():
            print("Your code printed (not part of the grade):")
            print("\n".join(f"  | {line}" for line in report.output.rstrip().splitlines()))
    print(report)
    return report.exit_code


def _cmd_grade(args) -> int:
    from . import batch
    from .catalog import all_exercises

    limits = _limits_or_none(args)
    if limits is None:
        return 2
    if args.jobs < 1:
        print(f"{PROG} grade: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    try:
        known = {exercise.name: exercise for exercise in all_exercises(args.exercises_dir)}
    except ValueError as exc:
        print(f"{PROG} grade: {exc}", file=sys.stderr)
        return 2
    unknown = [name for name in args.exercise if name not in known]
    if unknown:
        print(
            f"{PROG} grade: no exercise called {', '.join(unknown)}; the exercises are: {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    try:
        found = batch.find_submissions(args.submissions, known)
    except ValueError as exc:
        print(f"{PROG} grade: {exc}", file=sys.stderr)
        return 2
    chosen = args.exercise or sorted({s.exercise for s in found}, key=list(known).index)
    students = sorted({s.student for s in found if s.exercise in chosen})
    if not students:
        print(
            f"{PROG} grade: no submissions in {args.submissions} (expected STUDENT/EXERCISE.py or "
            f"STUDENT{batch.SEPARATOR}EXERCISE.py for the exercises {', '.join(chosen or known)})",
            file=sys.stderr,
        )
        return 1
    progress = None if args.no_progress else batch.progress_bar(len(students))
    result = batch.grade_folder(args.submissions, [known[n] for n in chosen], limits, args.jobs, progress)
    print(batch.table(result))
    try:
        if args.csv:
            batch.write_atomically(args.csv, batch.to_csv(result))
            print(f"Wrote {args.csv} (one row per check).")
        if args.json:
            batch.write_atomically(args.json, batch.to_json(result, limits))
            print(f"Wrote {args.json}.")
    except OSError as exc:
        print(f"{PROG} grade: cannot write the results: {exc}", file=sys.stderr)
        return 1
    if result.run_failed:
        failed = [f"{k[0]}/{k[1]}" for k, r in result.reports.items() if r.grader_failed]
        print(f"{PROG} grade: the grader itself failed for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _cmd_run(args) -> int:
    from .vgg_run import run_in_vgg16

    exercise = _exercise_or_none(args.name, ())
    if exercise is None:
        return 2
    limits = _limits_or_none(args)
    if limits is None:
        return 2
    try:
        return run_in_vgg16(exercise, args.file, size=args.size, limits=limits, use_keras=not args.no_keras)
    except ValueError as exc:
        print(f"{PROG} run: {exc}", file=sys.stderr)
        return 2


def _limits_or_none(args):
    from .isolation import Limits

    try:
        return Limits(timeout=args.timeout, memory_mb=args.memory_mb or None)
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return None


def _exercise_or_none(name, exercise_dirs=()):
    from .catalog import get_exercise

    try:
        return get_exercise(name, exercise_dirs)
    except (KeyError, ValueError) as exc:
        print(f"{PROG}: {exc.args[0]}", file=sys.stderr)
        return None


def _add_common(p, limits=False) -> None:
    p.add_argument(
        "--exercises-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a teacher's exercise folder, or a folder of them (repeatable; also "
        "$NUMVGG_EXERCISES, separated by the path separator)",
    )
    if limits:
        p.add_argument(
            "--timeout",
            type=float,
            default=60.0,
            metavar="SECONDS",
            help="time limit per submission, wall clock (default 60)",
        )
        p.add_argument(
            "--memory-mb",
            type=int,
            default=2048,
            metavar="MIB",
            help="memory cap per submission in MiB (default 2048; 0: no cap)",
        )


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``list`` / ``start`` / ``check`` actions under ``parser``."""
    actions = parser.add_subparsers(dest="exercises_action", metavar="ACTION")

    p = actions.add_parser(
        "list",
        help="list the exercises, one a line",
        description="One exercise a line: its name, then what it asks for.",
    )
    _add_common(p)
    p.set_defaults(exercises_func=_cmd_list)

    p = actions.add_parser(
        "start",
        help="write an exercise's skeleton and text into a folder",
        description="Write DIR/NAME.py, the skeleton (numvgg's signatures and docstrings "
        "with the bodies removed), and DIR/NAME.md, the exercise text.",
    )
    p.add_argument("name", metavar="NAME", help="the exercise (see 'list')")
    p.add_argument("directory", metavar="DIR", help="folder to write into (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument(
        "--hints",
        choices=["none", "some", "full"],
        default="some",
        help="how much help the text gives: none (task and shapes), some (maths and hints in "
        "words and formulas; the default), full (worked code too)",
    )
    p.add_argument("--lang", choices=["en", "zh"], default="en", help="language of the text (zh: Chinese)")
    _add_common(p)
    p.set_defaults(exercises_func=_cmd_start)

    p = actions.add_parser(
        "check",
        help="grade a solution file (exit code 0 only when every check passes)",
        description="Run FILE in a process of its own (under a time limit and a memory "
        "cap) through the exercise's checks: known answers, gradient checks, "
        "comparisons with numvgg on random shapes, and the classic mistakes; the "
        "verdict is made outside that process. --reference runs the checks on "
        "numvgg's own code.",
    )
    p.add_argument("name", metavar="NAME", help="the exercise (see 'list')")
    p.add_argument("file", metavar="FILE", nargs="?", help="your solution, e.g. im2col.py")
    p.add_argument("--reference", action="store_true", help="check numvgg's own implementation instead")
    _add_common(p, limits=True)
    p.set_defaults(exercises_func=_cmd_check)

    p = actions.add_parser(
        "grade",
        help="grade a folder of submissions: a table, --csv, --json",
        description="Grade every submission in SUBMISSIONS: a folder STUDENT/ holding "
        "EXERCISE.py files, or files STUDENT__EXERCISE.py. Each file runs in "
        "a process of its own under a time limit and a memory cap. The exit "
        "code says whether the grading run worked, not whether students passed.",
    )
    p.add_argument("submissions", metavar="SUBMISSIONS", help="the class's folder")
    p.add_argument(
        "--exercise",
        action="append",
        default=[],
        metavar="NAME",
        help="grade this exercise (repeatable; default: every exercise handed in)",
    )
    p.add_argument(
        "--csv",
        metavar="FILE",
        help="write one row per check (student, exercise, file, check, status, points, max_points, detail)",
    )
    p.add_argument("--json", metavar="FILE", help="write every result, per student and exercise")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="grade N submissions at once (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    _add_common(p, limits=True)
    p.set_defaults(exercises_func=_cmd_grade)

    p = actions.add_parser(
        "run",
        help="run your passing function inside a real VGG16 (per-layer parity)",
        description="Plug FILE's function into VGG16 (random weights, a small input) in "
        "place of numvgg's, and print each layer's difference from numvgg's "
        "own network (and from Keras when it is installed).",
    )
    p.add_argument(
        "name",
        metavar="NAME",
        help="the exercise (conv2d_forward, conv2d_backward, maxpool2d, "
        "dense, relu_sigmoid_backward, im2col, col2im)",
    )
    p.add_argument("file", metavar="FILE", help="your solution")
    p.add_argument("--size", type=int, default=32, help="input height and width (default 32)")
    p.add_argument(
        "--no-keras", action="store_true", help="do not compare with Keras even if it is installed"
    )
    p.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS", help="time limit (default 300)")
    p.add_argument("--memory-mb", type=int, default=4096, metavar="MIB", help="memory cap (default 4096)")
    p.set_defaults(exercises_func=_cmd_run)
    parser.set_defaults(func=_dispatch, exercises_parser=parser)


def _dispatch(args) -> int:
    func = getattr(args, "exercises_func", None)
    if func is None:  # ``numvgg exercises`` alone
        args.exercises_parser.print_help()
        return 0
    return func(args)


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``exercises`` command to an argparse ``subparsers`` object.

    The command's handler is stored as ``args.func(args) -> exit code``, the
    convention of :mod:`numvgg.cli`.
    """
    parser = subparsers.add_parser(
        "exercises",
        help="course exercises: list, start NAME DIR, check NAME FILE, grade DIR, run NAME FILE",
        description="Course exercises with an auto-checker: rewrite one numvgg function "
        "(im2col, conv backward, max-pool, Adam, ...) and have it graded.",
    )
    _add_arguments(parser)
    return parser


def main(argv=None) -> int:
    """Run ``exercises ACTION ...`` on its own; returns the exit code."""
    parser = argparse.ArgumentParser(prog=PROG, description="Course exercises with an auto-checker.")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return args.func(args)
