"""One layer of your model against its Keras twin, on your own image.

    from numvgg.debug import compare_with_keras
    report = compare_with_keras(model, "block3_conv2", x)
    print(report)                  # forward and backward differences, PASS/FAIL
    report.max_rel_diff            # the largest of them

What it does, step by step (each a few lines below):

1. runs ``model`` on ``x`` under :func:`~numvgg.debug.trace.trace` and takes
   what the layer really received: ``t[layer_name].input``;
2. builds the Keras counterpart of that one layer (same class, same
   arguments, same weights, same dtype);
3. forward on both; backward on both with the same random upstream gradient
   ``dout``: numvgg's ``layer.backward(dout)``, Keras' ``tf.GradientTape`` of
   ``sum(out * dout)`` (whose gradient is exactly what ``backward`` returns);
4. compares output, ``dL/d input`` and every weight gradient: the largest
   absolute difference, and that divided by Keras' largest magnitude
   (the contract: 1e-4 forward, 1e-3 backward; typically ~1e-7 in float32).

Layers with a Keras twin: ``Conv2D``, ``Dense``, ``MaxPooling2D``,
``AveragePooling2D``, ``GlobalAveragePooling2D``, ``GlobalMaxPooling2D``,
``Flatten``, ``Dropout`` (inference: the identity) and ``Activation``. Keras
3 on TensorFlow is needed; without it a :class:`KerasUnavailableError` says
how to install it. The model is left as it was (its caches are cleared).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .parity import (
    BACKWARD_TOLERANCE,
    FORWARD_TOLERANCE,
    KerasUnavailableError,
    ParityRow,
    compare,
    import_keras,
)
from .trace import trace

#: numvgg layer class -> the arguments its Keras twin is built from (read from get_config()).
KERAS_ARGUMENTS = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "activation", "use_bias"),
    "Dense": ("units", "activation", "use_bias"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    "GlobalAveragePooling2D": (),
    "GlobalMaxPooling2D": (),
    "Flatten": (),
    "Dropout": ("rate",),
    "Activation": ("activation",),
}


@dataclass
class LayerComparison:
    """The result of :func:`compare_with_keras`: one :class:`~numvgg.debug.parity.ParityRow`
    per tensor (``row.max_abs_diff``, ``row.error`` relative to Keras' largest
    magnitude, ``row.ok``)."""

    layer: str
    class_name: str
    input_shape: tuple
    dtype: str
    rows: list[ParityRow]

    @property
    def max_abs_diff(self) -> float:
        return max(row.max_abs_diff for row in self.rows)

    @property
    def max_rel_diff(self) -> float:
        return max(row.error for row in self.rows)

    @property
    def passed(self) -> bool:
        return all(row.ok for row in self.rows)

    def __getitem__(self, tensor: str) -> ParityRow:
        for row in self.rows:
            if row.tensor == tensor:
                return row
        raise KeyError(f"No tensor {tensor!r}; compared: {[row.tensor for row in self.rows]}")

    def __str__(self) -> str:
        lines = [
            f"{self.layer} ({self.class_name}, {self.dtype}) on input {self.input_shape}: numvgg vs Keras",
            f"  {'tensor':<14} {'shape':<20} {'max |diff|':>10} {'rel. diff':>10}  result",
        ]
        for row in self.rows:
            verdict = "PASS" if row.ok else f"FAIL (> {row.tolerance:.0e})"
            lines.append(
                f"  {row.tensor:<14} {str(row.shape):<20} {row.max_abs_diff:>10.2e} "
                f"{row.error:>10.2e}  {verdict}"
            )
        return "\n".join(lines)


def keras_counterpart(keras, layer):
    """The Keras layer with ``layer``'s class, arguments, dtype and weights (built)."""
    class_name = type(layer).__name__
    if class_name not in KERAS_ARGUMENTS:
        raise ValueError(
            f"compare_with_keras: no Keras counterpart for layer '{layer.name}' "
            f"({class_name}); supported: {sorted(KERAS_ARGUMENTS)}"
        )
    config = layer.get_config()
    kwargs = {name: config[name] for name in KERAS_ARGUMENTS[class_name]}
    twin = getattr(keras.layers, class_name)(**kwargs, name=layer.name, dtype=layer.dtype.name)
    twin.build(layer.input_shape)
    twin.set_weights(layer.get_weights())
    return twin


def compare_with_keras(model, layer_name: str, x, seed: int = 0) -> LayerComparison:
    """Compare layer ``layer_name`` of ``model`` with Keras on the input it gets for ``x``.

    Args:
        model: a numvgg model (``VGG16(...)``, a ``Sequential``).
        layer_name: the layer's name (``'block3_conv2'``), or its path in a
            nested model (``'vgg16/block3_conv2'``), as in :func:`trace`.
        x: the model's input, e.g. one preprocessed image ``(1, 224, 224, 3)``.
        seed: seeds the random upstream gradient ``dout``.
    Returns:
        A :class:`LayerComparison` (``print`` it).
    Raises:
        KerasUnavailableError: Keras 3 / TensorFlow cannot be imported.
        ValueError: the layer has no Keras counterpart here (naming it).
    """
    try:
        keras, tf = import_keras()
    except KerasUnavailableError as e:
        raise KerasUnavailableError(f"compare_with_keras needs Keras: {e}") from e

    with trace(model, record=("input",)) as t:
        model.forward(x, training=False)
    record = t[layer_name]
    layer, layer_input = record.layer, record.input
    model.clear_cache()  # leave the model as it was
    their_layer = keras_counterpart(keras, layer)

    out = layer.forward(layer_input, training=False)
    dout = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    dx = layer.backward(dout)
    grads = dict(zip(layer.weight_names, layer.grads))

    xt = tf.constant(layer_input)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        their_out = their_layer(xt, training=False)
        loss = tf.reduce_sum(their_out * dout)
    their_grads = tape.gradient(loss, [xt, *their_layer.weights])

    rows = [
        compare(record.name, "output", "forward", out, their_out, FORWARD_TOLERANCE),
        compare(record.name, "dL/d input", "backward", dx, their_grads[0], BACKWARD_TOLERANCE),
    ]
    for name, their_grad in zip(layer.weight_names, their_grads[1:]):
        rows.append(
            compare(record.name, f"dL/d {name}", "backward", grads[name], their_grad, BACKWARD_TOLERANCE)
        )
    return LayerComparison(
        record.name, type(layer).__name__, tuple(layer_input.shape), layer.dtype.name, rows
    )
