"""The list of exercises: what each asks for, and where its pieces live.

An :class:`Exercise` names things by dotted path (``"numvgg.ops.conv:im2col"``)
rather than importing them, so ``numvgg exercises list`` stays instant:

* ``functions``: the library functions the student rewrites; the skeleton is
  generated from their source and the checks compare against them;
* ``helpers``: library names the skeleton imports for the student
  (``pad_input``, the cache classes), which are not part of the exercise;
* ``checks``: the function that builds the exercise's list of checks;
* ``guards``: other numvgg code that does the exercise's work (a layer's
  method, a naive version); calling it from the student's file is refused
  like calling the reference itself (see :mod:`.tripwire`);
* the text is ``texts/<name>.md`` (``texts/zh/<name>.md`` in Chinese).

Teachers add exercises as folders (:class:`FolderExercise`, format in
docs/teaching.md), found through ``--exercises-dir``, the ``NUMVGG_EXERCISES``
environment variable (folders separated by ``os.pathsep``) or the
``numvgg.exercises`` entry point group; :func:`all_exercises` lists both kinds.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .dotted import resolve
from .handout import LANGUAGES, select_hints
from .skeleton import make_skeleton

TEXTS_DIR = Path(__file__).resolve().parent / "texts"
ENV_VAR = "NUMVGG_EXERCISES"
ENTRY_POINT_GROUP = "numvgg.exercises"


@dataclass(frozen=True)
class Exercise:
    """One exercise.

    Attributes:
        name: the command-line name, also the skeleton's file name.
        summary: one line for ``numvgg exercises list``.
        functions: ``"module:function"`` of the reference functions to write.
        helpers: ``"module:name"`` imported into the skeleton, ready to use.
        checks: ``"module:factory"``; ``factory()`` returns the list of checks.
        guards: ``"module:name"`` of other numvgg code that does the same work.
    """

    name: str
    summary: str
    functions: tuple[str, ...]
    helpers: tuple[str, ...]
    checks: str
    guards: tuple[str, ...] = ()

    origin = "built-in"

    @property
    def function_names(self) -> list[str]:
        return [f.partition(":")[2] for f in self.functions]

    def reference_functions(self) -> dict:
        """``{name: function}`` of numvgg's own implementations."""
        return {f.partition(":")[2]: resolve(f) for f in self.functions}

    def guarded_functions(self) -> dict:
        """``{name: function}``: the references and the guards (see :mod:`.tripwire`)."""
        return {**self.reference_functions(), **{g.partition(":")[2]: resolve(g) for g in self.guards}}

    def build_checks(self) -> list:
        return resolve(self.checks)()

    def text_path(self, lang: str = "en") -> Path:
        return TEXTS_DIR / (f"{self.name}.md" if lang == "en" else f"{lang}/{self.name}.md")

    def text(self, lang: str = "en", hints: str = "full") -> str:
        """The handout; ``hints`` picks how much of the worked maths and code it keeps."""
        _check_language(lang)
        return select_hints(self.text_path(lang).read_text(encoding="utf-8"), hints)

    def skeleton(self) -> str:
        return make_skeleton(self)

    def spec(self) -> dict:
        """How the submission's process finds this exercise again."""
        return {"name": self.name}


class FolderExercise:
    """A teacher's exercise: a folder ``NAME/`` holding

    * ``exercise.py``: ``SUMMARY`` (one line), ``FUNCTIONS`` (the names the
      student writes), the reference implementation of each, and
      ``checks() -> list[Check]`` written with :mod:`numvgg.exercises.grading`;
      optionally ``GUARDS``, more functions the student must not call;
    * ``text.md``: the handout (``text.zh.md``: in Chinese, optional);
    * ``skeleton.py``: handed out as ``NAME.py``.
    """

    origin = "folder"

    def __init__(self, folder):
        self.folder = Path(folder).resolve()
        self.name = self.folder.name
        missing = [f for f in ("exercise.py", "text.md", "skeleton.py") if not (self.folder / f).is_file()]
        if missing:
            raise ValueError(
                f"exercise folder {self.folder} lacks {', '.join(missing)} (an exercise folder "
                f"holds exercise.py, text.md and skeleton.py)"
            )
        self.module = _load_exercise_module(self.folder)
        for attribute in ("SUMMARY", "FUNCTIONS", "checks"):
            if not hasattr(self.module, attribute):
                raise ValueError(f"{self.folder / 'exercise.py'} must define {attribute}")
        self.summary = str(self.module.SUMMARY)
        self.function_names = list(self.module.FUNCTIONS)
        missing = [n for n in self.function_names if not callable(getattr(self.module, n, None))]
        if missing:
            raise ValueError(
                f"{self.folder / 'exercise.py'} lists {', '.join(missing)} in FUNCTIONS but "
                f"defines no reference implementation for it"
            )
        self.origin = f"folder {self.folder}"

    def reference_functions(self) -> dict:
        return {n: getattr(self.module, n) for n in self.function_names}

    def guarded_functions(self) -> dict:
        extra = {getattr(f, "__qualname__", repr(f)): f for f in getattr(self.module, "GUARDS", ())}
        return {**self.reference_functions(), **extra}

    def build_checks(self) -> list:
        return list(self.module.checks())

    def text_path(self, lang: str = "en") -> Path:
        return self.folder / ("text.md" if lang == "en" else f"text.{lang}.md")

    def text(self, lang: str = "en", hints: str = "full") -> str:
        _check_language(lang)
        path = self.text_path(lang)
        if not path.is_file():
            raise ValueError(f"exercise {self.name} has no {lang} text ({path} does not exist)")
        return select_hints(path.read_text(encoding="utf-8"), hints)

    def skeleton(self) -> str:
        return (self.folder / "skeleton.py").read_text(encoding="utf-8")

    def spec(self) -> dict:
        return {"name": self.name, "folder": str(self.folder)}


def _check_language(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not available; choose one of {', '.join(LANGUAGES)}")


_loaded_folders: dict[Path, object] = {}


def _load_exercise_module(folder: Path):
    """Import ``folder/exercise.py`` once per process (teachers' code is trusted)."""
    if folder not in _loaded_folders:
        module_name = f"numvgg_teacher_exercise_{len(_loaded_folders)}_{folder.name}"
        spec = importlib.util.spec_from_file_location(module_name, folder / "exercise.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
        _loaded_folders[folder] = module
    return _loaded_folders[folder]


_CONV = "numvgg.ops.conv"
_POOL = "numvgg.ops.pooling"
_ACT = "numvgg.ops.activations"
_FUNC = "numvgg.exercises.functional"
_CHECKS = "numvgg.exercises.checks"

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "im2col",
        "copy every KH x KW patch of an NHWC image into a row of a matrix",
        (f"{_CONV}:im2col",),
        (),
        f"{_CHECKS}.conv:im2col_checks",
    ),
    Exercise(
        "col2im",
        "scatter patch rows back onto the image, adding where patches overlap",
        (f"{_CONV}:col2im",),
        (f"{_CONV}:im2col",),
        f"{_CHECKS}.conv:col2im_checks",
    ),
    Exercise(
        "conv2d_forward",
        "Conv2D forward (NHWC x, HWIO kernel, 'same'/'valid', strides) with im2col",
        (f"{_CONV}:conv2d_forward",),
        (
            f"{_CONV}:ConvCache",
            f"{_CONV}:conv_output_size",
            f"{_CONV}:conv_pads",
            f"{_CONV}:pad_input",
            f"{_CONV}:im2col",
        ),
        f"{_CHECKS}.conv:conv2d_forward_checks",
        (f"{_CONV}:conv2d_forward_naive", f"{_CONV}:conv2d_forward_winograd"),
    ),
    Exercise(
        "conv2d_backward",
        "Conv2D backward: dx, dkernel and dbias from dout and the forward cache",
        (f"{_CONV}:conv2d_backward",),
        (f"{_CONV}:ConvCache", f"{_CONV}:pad_input", f"{_CONV}:im2col", f"{_CONV}:col2im"),
        f"{_CHECKS}.conv:conv2d_backward_checks",
        (f"{_CONV}:conv2d_backward_naive",),
    ),
    Exercise(
        "maxpool2d",
        "MaxPooling2D forward and backward, with TensorFlow's first-maximum tie rule",
        (f"{_POOL}:maxpool2d_forward", f"{_POOL}:maxpool2d_backward"),
        (f"{_POOL}:MaxPoolCache", f"{_CONV}:conv_output_size", f"{_CONV}:conv_pads"),
        f"{_CHECKS}.pooling:maxpool2d_checks",
        (f"{_POOL}:maxpool2d_forward_naive", f"{_POOL}:maxpool2d_backward_naive"),
    ),
    Exercise(
        "dense",
        "Dense layer forward and backward: y = x @ kernel + bias",
        ("numvgg.ops.dense:dense_forward", "numvgg.ops.dense:dense_backward"),
        (),
        f"{_CHECKS}.dense:dense_checks",
    ),
    Exercise(
        "softmax_cross_entropy",
        "softmax + categorical cross-entropy from logits, and the fused backward",
        (f"{_FUNC}:softmax_cross_entropy_forward", f"{_FUNC}:softmax_cross_entropy_backward"),
        (f"{_FUNC}:SoftmaxCrossEntropyCache",),
        f"{_CHECKS}.activations:softmax_cross_entropy_checks",
        ("numvgg.losses:CategoricalCrossentropy.value_and_grad", "numvgg.losses:_log_softmax_parts"),
    ),
    Exercise(
        "relu_sigmoid_backward",
        "the backward of ReLU (from its mask) and of sigmoid (from its output)",
        (f"{_ACT}:relu_backward", f"{_ACT}:sigmoid_backward"),
        (f"{_ACT}:relu_forward", f"{_ACT}:sigmoid_forward"),
        f"{_CHECKS}.activations:relu_sigmoid_backward_checks",
    ),
    Exercise(
        "global_average_pooling",
        "GlobalAveragePooling2D forward and backward: (N, H, W, C) -> (N, C)",
        (f"{_POOL}:global_average_pooling2d_forward", f"{_POOL}:global_average_pooling2d_backward"),
        (),
        f"{_CHECKS}.pooling:global_average_pooling_checks",
    ),
    Exercise(
        "adam_step",
        "one Adam update of a weight, with bias correction, as Keras computes it",
        (f"{_FUNC}:adam_update",),
        (),
        f"{_CHECKS}.adam:adam_step_checks",
        ("numvgg.optimizers.adam:Adam.update_step",),
    ),
)

_BY_NAME = {exercise.name: exercise for exercise in EXERCISES}


def exercise_folders(extra_dirs=()) -> list[Path]:
    """Every teacher exercise folder: ``extra_dirs``, then ``$NUMVGG_EXERCISES``, then entry points.

    Each place is an exercise folder itself (it holds ``exercise.py``) or a
    folder of exercise folders. An entry point in the ``numvgg.exercises``
    group loads to such a path (a ``str`` or ``Path``) or a list of them.
    """
    places = [Path(d) for d in extra_dirs]
    places += [Path(d) for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d]
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry_point.load()
        places += [Path(p) for p in (loaded if isinstance(loaded, (list, tuple)) else [loaded])]
    folders = []
    for place in places:
        if not place.is_dir():
            raise ValueError(f"exercise folder {place} does not exist (or is not a folder)")
        if (place / "exercise.py").is_file():
            folders.append(place)
        else:
            folders += sorted(p for p in place.iterdir() if (p / "exercise.py").is_file())
    return folders


def all_exercises(extra_dirs=()) -> list:
    """The built-in exercises, then the teachers' (see :func:`exercise_folders`)."""
    found = list(EXERCISES)
    seen = {exercise.name: exercise.origin for exercise in found}
    for folder in exercise_folders(extra_dirs):
        exercise = FolderExercise(folder)
        if exercise.name in seen:
            if seen[exercise.name] == exercise.origin:  # the same folder reached twice
                continue
            raise ValueError(
                f"two exercises are called {exercise.name!r}: {seen[exercise.name]} and "
                f"{exercise.origin}; rename one folder"
            )
        seen[exercise.name] = exercise.origin
        found.append(exercise)
    return found


def names(extra_dirs=()) -> list[str]:
    return [exercise.name for exercise in all_exercises(extra_dirs)]


def get_exercise(name: str, extra_dirs=()):
    """The exercise called ``name``; ``KeyError`` with the valid names otherwise."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    for exercise in all_exercises(extra_dirs):
        if exercise.name == name:
            return exercise
    raise KeyError(f"no exercise called {name!r}; the exercises are: {', '.join(names(extra_dirs))}")


def from_spec(spec: dict):
    """Inverse of ``exercise.spec()``, in the submission's process."""
    if "folder" in spec:
        return FolderExercise(spec["folder"])
    return _BY_NAME[spec["name"]]
