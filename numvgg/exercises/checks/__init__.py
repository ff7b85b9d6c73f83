"""The checks of each exercise, one module per family of ops.

Each module exposes functions ``<exercise>_checks() -> list[Check]`` that
:mod:`numvgg.exercises.catalog` names. A check compares the student's
functions (``impl.name``) with numvgg's own, imported here under their
module name (``conv.im2col``), so the expected values are always computed by
the library at check time.
"""
