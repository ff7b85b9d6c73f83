"""The list of exercises: what each asks for, and where its pieces live.

An :class:`Exercise` names things by dotted path (``"numvgg.ops.conv:im2col"``)
rather than importing them, so ``numvgg exercises list`` stays instant:

* ``functions``: the library functions the student rewrites; the skeleton is
  generated from their source and the checks compare against them;
* ``helpers``: library names the skeleton imports for the student
  (``pad_input``, the cache classes), which are not part of the exercise;
* ``checks``: the function that builds the exercise's list of checks;
* the text is ``texts/<name>.md``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

TEXTS_DIR = Path(__file__).resolve().parent / "texts"


def resolve(dotted: str):
    """``"package.module:name"`` -> the object."""
    module_name, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class Exercise:
    """One exercise.

    Attributes:
        name: the command-line name, also the skeleton's file name.
        summary: one line for ``numvgg exercises list``.
        functions: ``"module:function"`` of the reference functions to write.
        helpers: ``"module:name"`` imported into the skeleton, ready to use.
        checks: ``"module:factory"``; ``factory()`` returns the list of checks.
    """
    name: str
    summary: str
    functions: tuple[str, ...]
    helpers: tuple[str, ...]
    checks: str

    @property
    def function_names(self) -> list[str]:
        return [f.partition(":")[2] for f in self.functions]

    def reference_functions(self) -> dict:
        """``{name: function}`` of numvgg's own implementations."""
        return {f.partition(":")[2]: resolve(f) for f in self.functions}

    def build_checks(self) -> list:
        return resolve(self.checks)()

    @property
    def text_path(self) -> Path:
        return TEXTS_DIR / f"{self.name}.md"

    def text(self) -> str:
        return self.text_path.read_text(encoding="utf-8")


_CONV = "numvgg.ops.conv"
_POOL = "numvgg.ops.pooling"
_ACT = "numvgg.ops.activations"
_FUNC = "numvgg.exercises.functional"
_CHECKS = "numvgg.exercises.checks"

EXERCISES: tuple[Exercise, ...] = (
    Exercise("im2col", "copy every KH x KW patch of an NHWC image into a row of a matrix",
             (f"{_CONV}:im2col",), (), f"{_CHECKS}.conv:im2col_checks"),
    Exercise("col2im", "scatter patch rows back onto the image, adding where patches overlap",
             (f"{_CONV}:col2im",), (f"{_CONV}:im2col",), f"{_CHECKS}.conv:col2im_checks"),
    Exercise("conv2d_forward", "Conv2D forward (NHWC x, HWIO kernel, 'same'/'valid', strides) with im2col",
             (f"{_CONV}:conv2d_forward",),
             (f"{_CONV}:ConvCache", f"{_CONV}:conv_output_size", f"{_CONV}:conv_pads", f"{_CONV}:pad_input",
              f"{_CONV}:im2col"),
             f"{_CHECKS}.conv:conv2d_forward_checks"),
    Exercise("conv2d_backward", "Conv2D backward: dx, dkernel and dbias from dout and the forward cache",
             (f"{_CONV}:conv2d_backward",),
             (f"{_CONV}:ConvCache", f"{_CONV}:pad_input", f"{_CONV}:im2col", f"{_CONV}:col2im"),
             f"{_CHECKS}.conv:conv2d_backward_checks"),
    Exercise("maxpool2d", "MaxPooling2D forward and backward, with TensorFlow's first-maximum tie rule",
             (f"{_POOL}:maxpool2d_forward", f"{_POOL}:maxpool2d_backward"),
             (f"{_POOL}:MaxPoolCache", f"{_CONV}:conv_output_size", f"{_CONV}:conv_pads"),
             f"{_CHECKS}.pooling:maxpool2d_checks"),
    Exercise("dense", "Dense layer forward and backward: y = x @ kernel + bias",
             ("numvgg.ops.dense:dense_forward", "numvgg.ops.dense:dense_backward"), (),
             f"{_CHECKS}.dense:dense_checks"),
    Exercise("softmax_cross_entropy", "softmax + categorical cross-entropy from logits, and the fused backward",
             (f"{_FUNC}:softmax_cross_entropy_forward", f"{_FUNC}:softmax_cross_entropy_backward"),
             (f"{_FUNC}:SoftmaxCrossEntropyCache",),
             f"{_CHECKS}.activations:softmax_cross_entropy_checks"),
    Exercise("relu_sigmoid_backward", "the backward of ReLU (from its mask) and of sigmoid (from its output)",
             (f"{_ACT}:relu_backward", f"{_ACT}:sigmoid_backward"),
             (f"{_ACT}:relu_forward", f"{_ACT}:sigmoid_forward"),
             f"{_CHECKS}.activations:relu_sigmoid_backward_checks"),
    Exercise("global_average_pooling", "GlobalAveragePooling2D forward and backward: (N, H, W, C) -> (N, C)",
             (f"{_POOL}:global_average_pooling2d_forward", f"{_POOL}:global_average_pooling2d_backward"), (),
             f"{_CHECKS}.pooling:global_average_pooling_checks"),
    Exercise("adam_step", "one Adam update of a weight, with bias correction, as Keras computes it",
             (f"{_FUNC}:adam_update",), (), f"{_CHECKS}.adam:adam_step_checks"),
)

_BY_NAME = {exercise.name: exercise for exercise in EXERCISES}


def names() -> list[str]:
    return [exercise.name for exercise in EXERCISES]


def get_exercise(name: str) -> Exercise:
    """The exercise called ``name``; ``KeyError`` with the valid names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no exercise called {name!r}; the exercises are: {', '.join(names())}") from None
