"""Course exercises with an auto-checker.

Each exercise asks for one or two of numvgg's own functions (im2col, the
convolution backward, max-pooling, Adam, ...). The skeleton handed out is
generated from the library's source -- signature and docstring kept, body
removed -- and the checker compares a solution with the library on known
answers, gradient checks, random asymmetric shapes and the classic mistakes.

From the command line (``python -m numvgg.exercises`` or ``numvgg exercises``)::

    list | start NAME DIR [--force] [--hints none|some|full] [--lang en|zh]
    check NAME FILE | check NAME --reference | grade SUBMISSIONS/ | run NAME FILE

Each submission runs in a process of its own, under a time limit and a
memory cap; the verdict is made in the grader's process (:mod:`.isolation`).
Teachers add exercises as folders (:class:`.catalog.FolderExercise`); the
course guide is docs/teaching.md.

From Python::

    from numvgg.exercises import EXERCISES, make_skeleton, check_file
    print(check_file("im2col", "im2col.py"))

Modules: :mod:`.catalog` (the list, teachers' folders), :mod:`.skeleton`
(generation), :mod:`.handout` (hint levels), :mod:`.grading` (the check
toolkit), :mod:`.checks` (each exercise's checks), :mod:`.checker` (the
report), :mod:`.isolation` and :mod:`.child` (the two processes),
:mod:`.wire` (what crosses between them), :mod:`.tripwire` (delegation to
numvgg caught), :mod:`.batch` (a class), :mod:`.vgg_run` (a function inside
VGG16), :mod:`.functional` (function forms of the Adam rule and the softmax
cross-entropy), :mod:`.cli`.
"""

import importlib

# Names are imported on first use, so ``numvgg --help`` (which registers the
# ``exercises`` command through :mod:`.cli`) does not pay for NumPy.
_EXPORTS = {
    "EXERCISES": "catalog",
    "Exercise": "catalog",
    "get_exercise": "catalog",
    "names": "catalog",
    "Report": "checker",
    "check_file": "isolation",
    "check_reference": "checker",
    "make_skeleton": "skeleton",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
