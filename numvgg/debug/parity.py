"""numvgg next to Keras, layer by layer: the parity report (``numvgg parity``).

Both models are built from **one weights file** and run on **one input**;
then, for every layer, numvgg's numbers are compared with Keras':

* forward: the layer's output;
* backward, for the fake loss ``L = sum(out * dout)`` with a random ``dout``
  (the llm.c trick: any upstream gradient can be injected this way):
  ``dL/d(output)`` of every layer, every weight gradient
  (``dL/d kernel``, ``dL/d bias``) and ``dL/d(input)`` of the model.
  Keras' side comes from ``tf.GradientTape``, numvgg's from ``backward(dout)``
  recorded by :func:`numvgg.debug.trace`.

The error of a tensor is ``max |numvgg - keras| / max |keras|``: relative to
the tensor's scale, so the same tolerance serves a 224x224 input (values in
the hundreds) and a gradient of 1e-6. numvgg's promise, checked here:

* forward error <= ``FORWARD_TOLERANCE`` (1e-4),
* backward error <= ``BACKWARD_TOLERANCE`` (1e-3).

Both sides compute in float32 with different summation orders, so errors of
~1e-6 are normal; a mistake (a transposed kernel, a wrong pooling tie rule)
gives errors near 1.

Keras is only needed here, and only imported when :func:`parity_report` runs.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

from ..errors import NumvggError
from ..layers.base import format_shape

#: Largest forward error ``max|numvgg - keras| / max|keras|`` accepted.
FORWARD_TOLERANCE = 1e-4
#: Largest gradient error accepted (same measure).
BACKWARD_TOLERANCE = 1e-3


class KerasUnavailableError(NumvggError, ImportError):
    """The parity report needs Keras 3 on TensorFlow, and it cannot be imported."""


def import_keras():
    """``(keras, tensorflow)``, or a :class:`KerasUnavailableError` saying how to install them.

    Keras 3 runs on several backends; the report needs TensorFlow's
    ``GradientTape``, so ``KERAS_BACKEND`` defaults to ``tensorflow`` here.
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no C++ start-up chatter
    try:
        import keras
        import tensorflow as tf
    except ImportError as e:
        raise KerasUnavailableError(
            "The parity report compares numvgg with Keras, but Keras/TensorFlow cannot be "
            f"imported ({type(e).__name__}: {e}). Install them with\n"
            "  pip install tensorflow-cpu keras      (or: pip install -e '.[test]')"
        ) from e
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise KerasUnavailableError(
            f"The parity report uses tf.GradientTape, so Keras must run on TensorFlow; "
            f"KERAS_BACKEND is '{backend}'. Set KERAS_BACKEND=tensorflow before starting Python."
        )
    return keras, tf


# -- the report -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParityRow:
    """One tensor compared: numvgg's against Keras'.

    ``error = max_abs_diff / max_abs_keras`` (0 when both are all zeros,
    ``inf`` when the shapes differ or Keras' tensor is 0 and numvgg's is not).
    """

    layer: str
    tensor: str  # 'output', 'dL/d output', 'dL/d kernel', 'dL/d bias', 'dL/d input'
    kind: str  # 'forward' or 'backward'
    shape: tuple  # numvgg's shape
    keras_shape: tuple
    max_abs_keras: float
    max_abs_diff: float
    error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance


def compare(layer: str, tensor: str, kind: str, ours, theirs, tolerance: float) -> ParityRow:
    """Compare two arrays (in float64) into a :class:`ParityRow`."""
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        return ParityRow(
            layer, tensor, kind, ours.shape, theirs.shape, float("nan"), float("inf"), float("inf"), tolerance
        )
    scale = float(np.max(np.abs(theirs), initial=0.0))
    diff = float(np.max(np.abs(ours - theirs), initial=0.0))
    if diff == 0.0:
        error = 0.0
    else:
        error = diff / scale if scale > 0.0 else float("inf")
    return ParityRow(layer, tensor, kind, ours.shape, theirs.shape, scale, diff, error, tolerance)


@dataclass
class Report:
    """The result of :func:`parity_report`: one :class:`ParityRow` per tensor.

    ``report.ok`` is True when every forward error is within
    ``forward_tolerance`` and every gradient error within
    ``backward_tolerance``; ``print(report)`` shows the table.
    """

    description: str
    rows: list[ParityRow] = field(default_factory=list)
    forward_tolerance: float = FORWARD_TOLERANCE
    backward_tolerance: float = BACKWARD_TOLERANCE

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def failures(self) -> list[ParityRow]:
        return [row for row in self.rows if not row.ok]

    def max_error(self, kind: str) -> float:
        """Largest error among ``'forward'`` or ``'backward'`` rows."""
        return max((row.error for row in self.rows if row.kind == kind), default=0.0)

    def __str__(self) -> str:
        shapes = [
            format_shape(r.shape)
            if r.shape == r.keras_shape
            else f"{format_shape(r.shape)} vs keras {format_shape(r.keras_shape)}"
            for r in self.rows
        ]
        layer_w = max([len("layer")] + [len(r.layer) for r in self.rows])
        tensor_w = max([len("tensor")] + [len(r.tensor) for r in self.rows])
        shape_w = max([len("shape")] + [len(s) for s in shapes])
        header = (
            f"{'layer':<{layer_w}}  {'tensor':<{tensor_w}}  {'shape':<{shape_w}}  "
            f"{'max|keras|':>10}  {'max|diff|':>10}  {'error':>9}  result"
        )
        lines = [
            self.description,
            f"error = max|numvgg - keras| / max|keras|; tolerance {self.forward_tolerance:.0e} "
            f"forward, {self.backward_tolerance:.0e} backward "
            "(gradients of L = sum(output * dout), random dout)",
            "",
            header,
            "-" * len(header),
        ]
        previous = None
        for row, shape in zip(self.rows, shapes):
            name = row.layer if row.layer != previous else ""
            previous = row.layer
            verdict = "ok" if row.ok else f"FAIL (> {row.tolerance:.0e})"
            lines.append(
                f"{name:<{layer_w}}  {row.tensor:<{tensor_w}}  {shape:<{shape_w}}  "
                f"{row.max_abs_keras:>10.3g}  {row.max_abs_diff:>10.3g}  {row.error:>9.2e}  "
                f"{verdict}"
            )
        lines.append("-" * len(header))
        n_fwd = sum(r.kind == "forward" for r in self.rows)
        n_bwd = len(self.rows) - n_fwd
        summary = "OK" if self.ok else f"FAILED: {len(self.failures)} tensor(s) above tolerance"
        lines.append(
            f"{summary}. Forward: {n_fwd} tensors, max error {self.max_error('forward'):.2e}. "
            f"Backward: {n_bwd} tensors, max error {self.max_error('backward'):.2e}."
        )
        return "\n".join(lines)


# -- building both models -----------------------------------------------------------------------
def _random_weights(keras_layers, seed: int):
    """He-normal kernels and small random biases, one list per layer, from ``seed``.

    Why not Keras' own initializers: their zero biases would leave the biases
    untested in the forward pass, and a seed would have to be set globally.
    The first layer's kernel is divided by 64 (the spread of caffe-preprocessed
    pixels) so activations are O(1) and a softmax top is not saturated: a
    saturated softmax has gradients of exactly zero, which compare trivially.
    """
    rng = np.random.default_rng(seed)
    weights, first = [], True
    for layer in keras_layers:
        arrays = []
        for w in layer.weights:
            shape = tuple(w.shape)
            if len(shape) == 1:  # bias
                arrays.append(rng.normal(0.0, 0.1, shape).astype(np.float32))
            else:  # kernel: fan_in = all but the last axis
                std = np.sqrt(2.0 / np.prod(shape[:-1])) / (64.0 if first else 1.0)
                arrays.append(rng.normal(0.0, std, shape).astype(np.float32))
        if arrays:
            first = False
        weights.append(arrays)
    return weights


def _resolve_weights(weights_path, include_top):
    if weights_path == "imagenet":
        from ..io.download import get_vgg16_weights_path

        return get_vgg16_weights_path(include_top)
    path = os.fspath(weights_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Weights file '{path}' does not exist.")
    return path


def _keras_trace(tf, keras, kmodel, klayers, x, dout):
    """Keras' per-layer outputs and, for ``L = sum(out * dout)``, the gradients with
    respect to the input, every layer output and every weight."""
    features = keras.Model(kmodel.inputs, [layer.output for layer in klayers])
    x_t = tf.constant(x)
    weights = [w for layer in klayers for w in layer.weights]
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        outs = features(x_t, training=False)
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        loss = tf.reduce_sum(outs[-1] * tf.constant(dout))
    grads = tape.gradient(loss, [x_t, *outs, *weights])
    n = len(outs)

    def numpy(t, like):
        # A tensor the loss does not depend on gets None from the tape: its gradient is 0.
        return np.zeros(like.shape, np.float32) if t is None else np.asarray(t)

    d_input = numpy(grads[0], x_t)
    d_outs = [numpy(g, o) for g, o in zip(grads[1 : 1 + n], outs)]
    d_weights = [numpy(g, w) for g, w in zip(grads[1 + n :], weights)]
    return [np.asarray(o) for o in outs], d_outs, d_input, d_weights


def parity_report(
    weights_path=None,
    input_size: int = 32,
    include_top: bool = False,
    pooling=None,
    batch: int = 2,
    seed: int = 0,
    forward_tolerance: float = FORWARD_TOLERANCE,
    backward_tolerance: float = BACKWARD_TOLERANCE,
) -> Report:
    """Run numvgg's VGG16 and Keras' VGG16 side by side and compare every tensor.

    Args:
        weights_path: a weights file both models load (any layout numvgg
            reads: the published ``.h5``, Keras' legacy ``.h5``,
            ``.weights.h5``), ``'imagenet'`` for the published file (from the
            cache), or ``None``: random weights drawn from ``seed``, written by
            Keras itself to a temporary ``.weights.h5`` and read by numvgg from
            there (so the report also checks numvgg's reader).
        input_size: side of the square input; 32 is the smallest VGG16
            accepts and is fast. The published top needs 224.
        include_top, pooling: as in ``VGG16`` (the top has 1000 classes).
        batch: images per batch (random pixels 0..255 through ``preprocess_input``).
        seed: seeds the images, ``dout`` and the random weights.
        forward_tolerance, backward_tolerance: the limits ``report.ok`` uses.
    Returns:
        A :class:`Report`; ``print(report)`` shows the per-layer table.
    Raises:
        KerasUnavailableError: Keras/TensorFlow cannot be imported.
        WeightFileError / WeightDownloadError / FileNotFoundError: the weights
            cannot be found or do not fit the model.
    """
    keras, tf = import_keras()
    from ..applications.vgg16 import VGG16, preprocess_input
    from .trace import trace

    if weights_path is not None:
        weights_path = _resolve_weights(weights_path, include_top)  # fail early, before building
    shape = (int(input_size), int(input_size), 3)
    ours = VGG16(include_top=include_top, weights=None, input_shape=shape, pooling=pooling)
    theirs = keras.applications.VGG16(
        include_top=include_top, weights=None, input_shape=shape, pooling=pooling
    )
    klayers = [layer for layer in theirs.layers if not isinstance(layer, keras.layers.InputLayer)]
    leaves = [layer for layer in ours.layers if not layer.is_input_layer]
    if len(klayers) != len(leaves):
        raise NumvggError(
            f"numvgg's VGG16 has {len(leaves)} layers {[l.name for l in leaves]} but "
            f"Keras' has {len(klayers)} {[l.name for l in klayers]}."
        )

    if weights_path is None:
        for layer, arrays in zip(klayers, _random_weights(klayers, seed)):
            if arrays:
                layer.set_weights(arrays)
        with tempfile.TemporaryDirectory(prefix="numvgg_parity_") as folder:
            written = os.path.join(folder, "vgg16_random.weights.h5")
            theirs.save_weights(written)  # Keras writes the file ...
            ours.load_weights(written)  # ... numvgg reads it
        source = f"random (seed {seed}), written by Keras to a .weights.h5 file and read back by numvgg"
    else:
        ours.load_weights(weights_path)  # numvgg's clear errors first
        theirs.load_weights(weights_path)
        source = weights_path

    rng = np.random.default_rng(seed)
    x = preprocess_input(rng.uniform(0.0, 255.0, (batch, *shape)))  # (N, H, W, 3) float32
    with trace(ours) as t:
        out = ours.forward(x)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        d_input = ours.backward(dout)
    k_outs, k_douts, k_dinput, k_dweights = _keras_trace(tf, keras, theirs, klayers, x, dout)

    report = Report(
        description=(
            f"numvgg vs Keras {keras.__version__} (TensorFlow {tf.__version__}): "
            f"VGG16(include_top={include_top}, pooling={pooling!r}), input "
            f"{format_shape((batch, *shape))}, weights: {source}"
        ),
        forward_tolerance=forward_tolerance,
        backward_tolerance=backward_tolerance,
    )
    k_weight_iter = iter(k_dweights)
    for leaf, klayer, k_out, k_dout in zip(leaves, klayers, k_outs, k_douts):
        rec = t[leaf.name]
        report.rows.append(compare(leaf.name, "output", "forward", rec.output, k_out, forward_tolerance))
        report.rows.append(
            compare(leaf.name, "dL/d output", "backward", rec.grad_output, k_dout, backward_tolerance)
        )
        for weight_name, _ in zip(leaf.weight_names, klayer.weights):
            report.rows.append(
                compare(
                    leaf.name,
                    f"dL/d {weight_name}",
                    "backward",
                    rec.weight_grads[weight_name],
                    next(k_weight_iter),
                    backward_tolerance,
                )
            )
    report.rows.append(
        compare("(model input)", "dL/d input", "backward", d_input, k_dinput, backward_tolerance)
    )
    return report
