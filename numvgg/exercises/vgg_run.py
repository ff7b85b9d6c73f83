"""``numvgg exercises run NAME FILE``: the student's function inside a real VGG16.

A passing exercise is a function numvgg itself could use. This puts it where
the layers call it -- ``numvgg.ops.conv.conv2d_forward`` for every ``Conv2D``,
the ReLU backward of every layer with ``activation="relu"``, ... -- in a
VGG16 with random weights (:func:`seeded_weights`) and a small input, runs a
forward and a backward pass under :func:`numvgg.debug.trace.trace`, and prints
every layer's output (and input gradient) next to numvgg's own network and,
when Keras is installed, Keras' VGG16 with the same weights.

As for grading, the student's code runs in its own process (:mod:`.child`,
under the same limits); the reference networks run here, where it never ran,
and the comparison is made here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

#: Where each exercise's functions go: ``{exercise: {function: "module:attribute"}}``;
#: ``"relu"`` means the ReLU backward of every layer with activation="relu".
PLUG_POINTS = {
    "conv2d_forward": {"conv2d_forward": "numvgg.ops.conv:conv2d_forward"},
    "conv2d_backward": {"conv2d_backward": "numvgg.ops.conv:conv2d_backward"},
    "im2col": {"im2col": "numvgg.ops.conv:im2col"},
    "col2im": {"col2im": "numvgg.ops.conv:col2im"},
    "maxpool2d": {
        "maxpool2d_forward": "numvgg.ops.pooling:maxpool2d_forward",
        "maxpool2d_backward": "numvgg.ops.pooling:maxpool2d_backward",
    },
    "dense": {
        "dense_forward": "numvgg.ops.dense:dense_forward",
        "dense_backward": "numvgg.ops.dense:dense_backward",
    },
    "relu_sigmoid_backward": {"relu_backward": "relu"},
}
SEED = 0
BATCH = 2
#: Largest error ``max|yours - reference| / max|reference|`` reported as "ok" (numvgg's parity tolerances).
FORWARD_TOLERANCE, BACKWARD_TOLERANCE = 1e-4, 1e-3


def build_model(size: int):
    """VGG16 with the top, random weights from :data:`SEED`, for a ``size x size`` input."""
    from ..applications.vgg16 import VGG16

    model = VGG16(include_top=True, weights=None, input_shape=(size, size, 3))
    seeded_weights(model, SEED)
    return model


def seeded_weights(model, seed: int) -> None:
    """He-normal kernels and biases ~ N(0, 0.1) (nonzero, so the biases are tested too).

    The first kernel is divided by 64, the spread of preprocessed pixels, so
    activations stay O(1) and the softmax is not saturated (a saturated softmax
    has zero gradients, which compare trivially).
    """
    rng = np.random.default_rng(seed)
    first = True
    for layer in model.leaf_layers():
        for weight in layer.params.values():
            if weight.ndim == 1:
                weight[...] = rng.normal(0.0, 0.1, weight.shape)
            else:
                std = np.sqrt(2.0 / np.prod(weight.shape[:-1])) / (64.0 if first else 1.0)
                weight[...] = rng.normal(0.0, std, weight.shape)
        if layer.params:
            first = False


def inputs(size: int):
    """The batch and the upstream gradient ``dout`` of the fake loss ``sum(out * dout)``."""
    from ..applications.vgg16 import preprocess_input

    rng = np.random.default_rng(SEED + 1)
    x = preprocess_input(rng.uniform(0.0, 255.0, (BATCH, size, size, 3)))
    dout = rng.standard_normal((BATCH, 1000)).astype(np.float32)
    return x, dout


def forward_backward(model, size: int) -> dict:
    """``{layer: {"output": ..., "grad_input": ...}}`` for one forward and backward pass."""
    from ..debug.trace import trace

    x, dout = inputs(size)
    with trace(model, record=("output", "grad_input")) as t:
        model.forward(x)
        model.backward(dout)
    return {
        layer.name: {
            "output": np.asarray(t[layer.name].output),
            "grad_input": np.asarray(t[layer.name].grad_input),
        }
        for layer in model.leaf_layers()
    }


# -- in the student's process ---------------------------------------------------------------------


def plug_in(model, exercise_name: str, functions: dict) -> list[str]:
    """Put the student's functions where the layers call them; returns what was replaced."""
    import importlib

    replaced = []
    for function, place in PLUG_POINTS[exercise_name].items():
        student = functions[function]
        if place == "relu":
            for layer in model.leaf_layers():
                if getattr(layer, "activation_name", None) == "relu":
                    layer._act_backward = student
                    replaced.append(f"{layer.name}: relu backward")
            continue
        module_name, _, attribute = place.partition(":")
        if function == "maxpool2d_forward":
            student = _without_need_cache(student)
        setattr(importlib.import_module(module_name), attribute, student)
        replaced.append(place)
    return replaced


def _without_need_cache(forward):
    """numvgg's max-pool forward takes ``need_cache``; the exercise's signature does not."""

    def maxpool2d_forward(x, pool_size=(2, 2), strides=None, padding="valid", need_cache=True):
        return forward(x, pool_size, strides, padding)

    return maxpool2d_forward


def child_main(request: dict, send, functions: dict) -> None:
    """Runs in :mod:`.child`: the student's functions plugged in, one pass, the tensors sent back."""
    from .. import config
    from . import wire

    config.set_conv_algorithm("im2col")  # the layers then call conv2d_forward for every conv
    model = build_model(request["size"])
    replaced = plug_in(model, request["exercise"]["name"], functions)
    send({"kind": "plugged", "replaced": replaced})
    try:
        tensors = forward_backward(model, request["size"])
    except BaseException as exc:  # noqa: BLE001 -- the report says what broke
        from .checker import describe_student_exception

        send({"kind": "vgg_error", "detail": describe_student_exception(exc, request["path"])["text"]})
        return
    send({"kind": "tensors", "tensors": wire.encode(tensors)})


# -- in the grader's process ---------------------------------------------------------------------------


@dataclass
class Row:
    layer: str
    tensor: str
    shape: tuple
    vs_numvgg: float
    vs_keras: float | None


def _error(yours, reference) -> float:
    yours = np.asarray(yours, dtype=np.float64) if isinstance(yours, np.ndarray) else None
    reference = np.asarray(reference, dtype=np.float64)
    if yours is None or yours.shape != reference.shape:
        return float("inf")
    if not np.all(np.isfinite(yours)):
        return float("inf")
    scale = float(np.max(np.abs(reference), initial=0.0))
    diff = float(np.max(np.abs(yours - reference), initial=0.0))
    return 0.0 if diff == 0.0 else (diff / scale if scale > 0 else float("inf"))


def keras_tensors(model, size: int):
    """Keras' VGG16 with ``model``'s weights on the same batch, or ``None`` without Keras."""
    try:
        from ..debug.parity import _keras_trace, import_keras

        keras, tf = import_keras()
    except ImportError:
        return None
    kmodel = keras.applications.VGG16(include_top=True, weights=None, input_shape=(size, size, 3))
    klayers = [layer for layer in kmodel.layers if not isinstance(layer, keras.layers.InputLayer)]
    for klayer, layer in zip(klayers, model.leaf_layers()):
        if layer.params:
            klayer.set_weights([layer.params[name] for name in ("kernel", "bias") if name in layer.params])
    x, dout = inputs(size)
    outs, d_outs, d_input, _ = _keras_trace(tf, keras, kmodel, klayers, x, dout)
    # Keras gives dL/d(output) per layer; a layer's dL/d(input) is the previous layer's dL/d(output).
    grad_inputs = [d_input, *d_outs[:-1]]
    return {
        layer.name: {"output": out, "grad_input": gi}
        for layer, out, gi in zip(model.leaf_layers(), outs, grad_inputs)
    }


def compare(yours: dict, ours: dict, keras: dict | None) -> list[Row]:
    rows = []
    for tensor in ("output", "grad_input"):
        # In the order they are computed: outputs from the input up, gradients from the loss down.
        layers = list(ours.items()) if tensor == "output" else list(reversed(ours.items()))
        for layer, reference in layers:
            got = yours.get(layer, {}).get(tensor) if isinstance(yours.get(layer), dict) else None
            vs_keras = _error(got, keras[layer][tensor]) if keras else None
            rows.append(Row(layer, tensor, reference[tensor].shape, _error(got, reference[tensor]), vs_keras))
    return rows


def format_rows(rows: list[Row], exercise: str, size: int, keras_note: str) -> str:
    keras = any(r.vs_keras is not None for r in rows)
    header = f"{'layer':<14}{'tensor':<12}{'shape':<22}{'vs numvgg':>11}" + (
        f"{'vs Keras':>11}" if keras else ""
    )
    lines = [
        f"Your {exercise} inside VGG16 (random weights, seed {SEED}; input ({BATCH}, {size}, {size}, 3); "
        f"forward, then backward of L = sum(predictions * dout))",
        "error = max|yours - reference| / max|reference|; ok up to "
        f"{FORWARD_TOLERANCE:.0e} (outputs) and {BACKWARD_TOLERANCE:.0e} (gradients)",
        keras_note,
        "",
        header,
        "-" * len(header),
    ]
    for row in rows:
        cells = f"{row.layer:<14}{row.tensor:<12}{row.shape!s:<22}{row.vs_numvgg:>11.2e}"
        if keras:
            cells += f"{row.vs_keras:>11.2e}"
        tolerance = FORWARD_TOLERANCE if row.tensor == "output" else BACKWARD_TOLERANCE
        worst = max(row.vs_numvgg, row.vs_keras or 0.0)
        lines.append(cells + ("  ok" if worst <= tolerance else "  DIFFERS"))
    return "\n".join(lines)


def run_in_vgg16(exercise, path, size: int = 32, limits=None, use_keras: bool = True, stream=None) -> int:
    """Print the per-layer report; 0 when every tensor is within tolerance, 1 otherwise."""
    from pathlib import Path

    from .isolation import Limits, _end_reason, _run_child

    stream = stream or sys.stdout
    if exercise.name not in PLUG_POINTS:
        raise ValueError(
            f"exercise {exercise.name} has no place in VGG16; 'run' takes {', '.join(PLUG_POINTS)}"
        )
    if size < 32:
        raise ValueError(f"--size must be at least 32 (VGG16's five poolings), got {size}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist (or is not a file)")
    limits = limits or Limits()
    run = _run_child(exercise, path.resolve(), limits, extra={"mode": "vgg16", "size": size})
    by_kind = {m["kind"]: m for m in run.messages}
    if "load_error" in by_kind:
        print(f"FAIL  {by_kind['load_error'].get('detail')}", file=stream)
        return 1
    if "vgg_error" in by_kind:
        print(f"FAIL  inside VGG16: {by_kind['vgg_error'].get('detail')}", file=stream)
        return 1
    if "tensors" not in by_kind:
        print(f"FAIL  {_end_reason(run, limits)}", file=stream)
        return 1
    from . import wire

    yours = wire.decode(by_kind["tensors"].get("tensors"))
    if not isinstance(yours, dict):
        print("FAIL  the process running your code sent malformed results", file=stream)
        return 1
    model = build_model(size)
    ours = forward_backward(model, size)
    keras = keras_tensors(model, size) if use_keras else None
    keras_note = (
        "Keras: its VGG16 with the same weights and input (TensorFlow's gradients)"
        if keras
        else "Keras: not compared (" + ("not installed)" if use_keras else "--no-keras)")
    )
    rows = compare(yours, ours, keras)
    print(format_rows(rows, exercise.name, size, keras_note), file=stream)
    replaced = by_kind.get("plugged", {}).get("replaced", [])
    bad = [
        r
        for r in rows
        if max(r.vs_numvgg, r.vs_keras or 0.0)
        > (FORWARD_TOLERANCE if r.tensor == "output" else BACKWARD_TOLERANCE)
    ]
    print(f"\nYour code ran in place of: {', '.join(sorted(set(replaced)))}.", file=stream)
    print(
        "Every layer agrees."
        if not bad
        else f"{len(bad)} tensor(s) differ; the first is {bad[0].layer} {bad[0].tensor}.",
        file=stream,
    )
    return 0 if not bad else 1
