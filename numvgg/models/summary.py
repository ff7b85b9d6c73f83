"""Keras 3's ``model.summary()`` table, drawn with the same box characters,
columns and totals (``Total params: 14,714,688 (56.13 MB)``)."""
from __future__ import annotations

import textwrap

from ..layers.base import format_shape

_COLUMNS = (("Layer (type)", 31, "left"), ("Output Shape", 22, "left"), ("Param #", 13, "right"))


def readable_memory_size(n_bytes: float) -> str:
    """Keras' rule: powers of 1024, two decimals (``527.79 MB``)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024


def _cell_lines(text: str, width: int) -> list[str]:
    # Keras breaks "name (Type)" before the parenthesis when it does not fit.
    if len(text) <= width:
        return [text]
    if " (" in text:
        head, tail = text.split(" (", 1)
        return _cell_lines(head, width) + _cell_lines("(" + tail, width)
    return textwrap.wrap(text, width) or [""]


def _row(cells, left="│", mid="│", right="│"):
    cols = [_cell_lines(str(c), w) for c, (_, w, _) in zip(cells, _COLUMNS)]
    height = max(len(c) for c in cols)
    out = []
    for k in range(height):
        parts = []
        for lines, (_, w, align) in zip(cols, _COLUMNS):
            text = lines[k] if k < len(lines) else ""
            parts.append(" " + (text.ljust(w) if align == "left" else text.rjust(w)) + " ")
        out.append(left + mid.join(parts) + right)
    return out


def _rule(left, mid, right, fill):
    return left + mid.join(fill * (w + 2) for _, w, _ in _COLUMNS) + right


def _keras_type(layer) -> str:
    # A model built functional-style (VGG16 records its input layer) is
    # Keras' ``Functional``; Keras' summary shows that name.
    if getattr(layer, "input_layer_name", None) and hasattr(layer, "layers"):
        return "Functional"
    return type(layer).__name__


def format_summary(model, line_length=None) -> str:
    """The whole summary as one string (``model.summary()`` prints it)."""
    rows = []
    if getattr(model, "input_layer_name", None) and model.input_shape is not None:
        rows.append((f"{model.input_layer_name} (InputLayer)", format_shape(model.input_shape), "0"))
    for layer in model.layers:
        shape = format_shape(layer.output_shape) if layer.output_shape else "?"
        count = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        rows.append((f"{layer.name} ({_keras_type(layer)})", shape, count))

    lines = [f'Model: "{model.name}"',
             _rule("┏", "┳", "┓", "━"),
             "┃" + "┃".join(" " + (h.ljust(w) if a == "left" else h.rjust(w)) + " "
                            for h, w, a in _COLUMNS) + "┃",
             _rule("┡", "╇", "┩", "━")]
    for i, row in enumerate(rows):
        if i:
            lines.append(_rule("├", "┼", "┤", "─"))
        lines.extend(_row(row))
    lines.append(_rule("└", "┴", "┘", "─"))

    total = model.count_params()
    trainable = sum(w.size for w in model.trainable_weights)
    frozen = total - trainable
    itemsize = model.layers[0].dtype.itemsize if model.layers else 4
    for label, n in (("Total", total), ("Trainable", trainable), ("Non-trainable", frozen)):
        lines.append(f" {label} params: {n:,} ({readable_memory_size(n * itemsize)})")
    return "\n".join(lines)
