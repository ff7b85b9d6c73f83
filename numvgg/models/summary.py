"""Keras 3's ``model.summary()`` table, drawn with the same box characters,
columns and totals (``Total params: 14,714,688 (56.13 MB)``)."""

from __future__ import annotations

import textwrap

from ..layers.base import format_shape

# Keras sizes the table to the terminal; outside one (a script, a test, a
# notebook's captured output) that is 80 columns, which gives these widths.
_COLUMNS = (("Layer (type)", 31, "left"), ("Output Shape", 22, "left"), ("Param #", 13, "right"))
_GRAPH_COLUMNS = (
    ("Layer (type)", 19, "left"),
    ("Output Shape", 17, "left"),
    ("Param #", 10, "right"),
    ("Connected to", 17, "left"),
)
# summary(show_trainable=True) adds a narrow column; Keras' 80-column table cuts its
# header to "Trai…" and narrows the others.
_TRAINABLE_COLUMNS = (
    ("Layer (type)", 27, "left"),
    ("Output Shape", 21, "left"),
    ("Param #", 10, "right"),
    ("Trai…", 5, "center"),
)
_GRAPH_TRAINABLE_COLUMNS = (
    ("Layer (type)", 17, "left"),
    ("Output Shape", 15, "left"),
    ("Param #", 9, "right"),
    ("Connected to", 14, "left"),
    ("Trai…", 5, "center"),
)


def _align(text: str, width: int, align: str) -> str:
    return (
        text.ljust(width)
        if align == "left"
        else text.rjust(width)
        if align == "right"
        else text.center(width)
    )


def _trainable_mark(layer) -> str:
    """Keras' column: Y (trainable weights), N (frozen weights), - (no weights)."""
    if not layer.weights:
        return "-"
    return "Y" if layer.trainable else "N"


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


def _row(cells, columns, left="│", mid="│", right="│"):
    cols = [_cell_lines(str(c), w) for c, (_, w, _) in zip(cells, columns)]
    height = max(len(c) for c in cols)
    out = []
    for k in range(height):
        parts = []
        for lines, (_, w, align) in zip(cols, columns):
            text = lines[k] if k < len(lines) else ""
            parts.append(" " + _align(text, w, align) + " ")
        out.append(left + mid.join(parts) + right)
    return out


def _rule(columns, left, mid, right, fill):
    return left + mid.join(fill * (w + 2) for _, w, _ in columns) + right


def _keras_type(layer) -> str:
    return type(layer).__name__


def _is_chain(model) -> bool:
    """Keras' "sequential-like" test: one node per depth, one input per node,
    no layer called twice. Such a model's table has no "Connected to" column."""
    if model._graph_comes_later:  # a Sequential: a chain by construction
        return True
    nodes = model._nodes
    if len({id(n.layer) for n in nodes}) != len(nodes):
        return False
    if any(len(n.inputs) > 1 for n in nodes):
        return False
    fed = [id(p) for n in nodes for p in n.parents]
    return len(fed) == len(set(fed)) and len(model.inputs) == 1


def _connections(layer, nodes) -> str:
    """``'a[0][0], b[0][0]'``: the layer, node index and tensor index of each input."""
    out = []
    for node in layer._inbound_nodes:
        if node not in nodes:
            continue
        for t in node.inputs:
            source = t.node.layer
            out.append(f"{source.name}[{source._inbound_nodes.index(t.node)}][{t.index}]")
    return ", ".join(out) or "-"


def format_summary(model, line_length=None, show_trainable: bool = False) -> str:
    """The whole summary as one string (``model.summary()`` prints it)."""
    chain = _is_chain(model) if model.built else True
    if show_trainable:
        columns = _TRAINABLE_COLUMNS if chain else _GRAPH_TRAINABLE_COLUMNS
    else:
        columns = _COLUMNS if chain else _GRAPH_COLUMNS
    rows = []
    for layer in model.layers:
        shape = format_shape(layer.output_shape) if layer.output_shape else "?"
        count = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        row = [f"{layer.name} ({_keras_type(layer)})", shape, count]
        if not chain:
            row.append(_connections(layer, model._nodes))
        if show_trainable:
            row.append(_trainable_mark(layer))
        rows.append(row)

    lines = [
        f'Model: "{model.name}"',
        _rule(columns, "┏", "┳", "┓", "━"),
        "┃"
        + "┃".join(" " + _align(h, w, "right" if a == "right" else "left") + " " for h, w, a in columns)
        + "┃",
        _rule(columns, "┡", "╇", "┩", "━"),
    ]
    for i, row in enumerate(rows):
        if i:
            lines.append(_rule(columns, "├", "┼", "┤", "─"))
        lines.extend(_row(row, columns))
    lines.append(_rule(columns, "└", "┴", "┘", "─"))

    total = model.count_params()
    trainable = sum(w.size for w in model.trainable_weights)
    frozen = total - trainable
    itemsize = model.dtype.itemsize
    optimizer = getattr(model, "optimizer", None)
    opt_count = opt_bytes = 0
    if optimizer is not None and optimizer.built:
        # Keras counts the optimizer's variables once it is built (at the first training
        # step), in the total too: `iterations` (int64), `learning_rate` (float32), the slots.
        slots = sum(a.size for arrays in optimizer._slots.values() for a in arrays)
        opt_count, opt_bytes = 2 + slots, 8 + 4 + slots * itemsize
    rows = [
        ("Total", total + opt_count, total * itemsize + opt_bytes),
        ("Trainable", trainable, trainable * itemsize),
        ("Non-trainable", frozen, frozen * itemsize),
    ]
    if opt_count:
        rows.append(("Optimizer", opt_count, opt_bytes))
    for label, n, n_bytes in rows:
        lines.append(f" {label} params: {n:,} ({readable_memory_size(n_bytes)})")
    return "\n".join(lines)
