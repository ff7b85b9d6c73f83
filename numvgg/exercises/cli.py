"""The ``exercises`` command: list, start and check the course exercises.

::

    numvgg exercises list                    # one exercise a line: name, then what it asks
    numvgg exercises start NAME DIR          # write DIR/NAME.py (skeleton) and DIR/NAME.md (text)
    numvgg exercises check NAME FILE         # grade your file; exit code 0 only if all checks pass
    numvgg exercises check NAME --reference  # the same checks on numvgg's own code

:func:`register` adds the command to the ``numvgg`` parser; :func:`main`
runs it on its own (``python -m numvgg.exercises ...``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "numvgg exercises"


def _cmd_list(args) -> int:
    from .catalog import EXERCISES
    width = max(len(exercise.name) for exercise in EXERCISES)
    for exercise in EXERCISES:
        print(f"{exercise.name:<{width}}  {exercise.summary}")
    return 0


def _cmd_start(args) -> int:
    from .skeleton import make_skeleton
    exercise = _exercise_or_none(args.name)
    if exercise is None:
        return 2
    directory = Path(args.directory)
    skeleton, notes = directory / f"{exercise.name}.py", directory / f"{exercise.name}.md"
    existing = [str(p) for p in (skeleton, notes) if p.exists()]
    if existing and not args.force:
        print(f"{PROG} start: {' and '.join(existing)} already exist; not overwriting your work "
              f"(add --force to replace)", file=sys.stderr)
        return 1
    try:
        directory.mkdir(parents=True, exist_ok=True)
        skeleton.write_text(make_skeleton(exercise), encoding="utf-8")
        notes.write_text(exercise.text(), encoding="utf-8")
    except OSError as exc:
        print(f"{PROG} start: cannot write into {directory}: {exc}", file=sys.stderr)
        return 1
    print(f"Wrote {skeleton} (the skeleton) and {notes} (the exercise).")
    print(f"When ready: python -m numvgg.exercises check {exercise.name} {skeleton}")
    return 0


def _cmd_check(args) -> int:
    from .checker import check_file, check_reference
    if _exercise_or_none(args.name) is None:
        return 2
    if args.reference == (args.file is not None):
        print(f"{PROG} check: give either FILE or --reference (not both)", file=sys.stderr)
        return 2
    report = check_reference(args.name) if args.reference else check_file(args.name, args.file)
    print(report)
    return report.exit_code


def _exercise_or_none(name):
    from .catalog import get_exercise
    try:
        return get_exercise(name)
    except KeyError as exc:
        print(f"{PROG}: {exc.args[0]}", file=sys.stderr)
        return None


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``list`` / ``start`` / ``check`` actions under ``parser``."""
    actions = parser.add_subparsers(dest="exercises_action", metavar="ACTION")

    p = actions.add_parser("list", help="list the exercises, one a line",
                           description="One exercise a line: its name, then what it asks for.")
    p.set_defaults(exercises_func=_cmd_list)

    p = actions.add_parser("start", help="write an exercise's skeleton and text into a folder",
                           description="Write DIR/NAME.py, the skeleton (numvgg's signatures and docstrings "
                                       "with the bodies removed), and DIR/NAME.md, the exercise text.")
    p.add_argument("name", metavar="NAME", help="the exercise (see 'list')")
    p.add_argument("directory", metavar="DIR", help="folder to write into (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.set_defaults(exercises_func=_cmd_start)

    p = actions.add_parser("check", help="grade a solution file (exit code 0 only when every check passes)",
                           description="Import FILE on its own and run the exercise's checks: known answers, "
                                       "gradient checks, comparisons with numvgg on random shapes, and the "
                                       "classic mistakes. --reference runs them on numvgg's own code.")
    p.add_argument("name", metavar="NAME", help="the exercise (see 'list')")
    p.add_argument("file", metavar="FILE", nargs="?", help="your solution, e.g. im2col.py")
    p.add_argument("--reference", action="store_true", help="check numvgg's own implementation instead")
    p.set_defaults(exercises_func=_cmd_check)
    parser.set_defaults(func=_dispatch, exercises_parser=parser)


def _dispatch(args) -> int:
    func = getattr(args, "exercises_func", None)
    if func is None:                        # ``numvgg exercises`` alone
        args.exercises_parser.print_help()
        return 0
    return func(args)


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``exercises`` command to an argparse ``subparsers`` object.

    The command's handler is stored as ``args.func(args) -> exit code``, the
    convention of :mod:`numvgg.cli`.
    """
    parser = subparsers.add_parser(
        "exercises", help="course exercises: list, start NAME DIR, check NAME FILE",
        description="Course exercises with an auto-checker: rewrite one numvgg function "
                    "(im2col, conv backward, max-pool, Adam, ...) and have it graded.")
    _add_arguments(parser)
    return parser


def main(argv=None) -> int:
    """Run ``exercises ACTION ...`` on its own; returns the exit code."""
    parser = argparse.ArgumentParser(prog=PROG, description="Course exercises with an auto-checker.")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return args.func(args)
