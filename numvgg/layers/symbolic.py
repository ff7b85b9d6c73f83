"""Symbolic tensors and graph nodes: what Keras' functional API is made of.

``x = Input((224, 224, 3))`` gives a :class:`KerasTensor`: no numbers, only a
shape, a dtype and the history of how it was made. Calling a layer on it
(``y = Dense(8)(x)``) does not compute anything either: it records a
:class:`Node` -- "this layer, called on these tensors, gave these tensors" --
and returns new symbolic tensors. ``Model(inputs, outputs)`` then walks the
nodes back from ``outputs`` to ``inputs`` and keeps them in an order in which
they can run; :class:`~numvgg.models.Model` runs that list of nodes on real
arrays, forward and (reversed) backward.

Nothing in this module touches NumPy arrays: it is bookkeeping only.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

_TENSOR_IDS = itertools.count()


class KerasTensor:
    """A symbolic tensor: a shape (``None`` for the batch axis and any unknown
    size), a dtype, and the node that produced it.

    Attributes:
        shape: e.g. ``(None, 224, 224, 3)``.
        dtype: a NumPy dtype name, ``'float32'`` by default.
        name: a readable name, e.g. ``'keras_tensor_3'``.
        node: the :class:`Node` whose output this is.
        index: which of that node's outputs it is (0 for single-output layers).
    """

    def __init__(self, shape, dtype="float32", name: str | None = None, node=None, index: int = 0):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype).name
        self.id = next(_TENSOR_IDS)
        self.name = name or f"keras_tensor_{self.id}"
        self.node = node
        self.index = index

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        shape = (
            "("
            + ", ".join("None" if s is None else str(s) for s in self.shape)
            + ("," if len(self.shape) == 1 else "")
            + ")"
        )
        return f"<KerasTensor shape={shape}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"{self!r} is symbolic: it has a shape but no values. Build a model with "
            "numvgg.models.Model(inputs, outputs) and call the model on a NumPy array instead."
        )

    # Python would otherwise try ``__array__`` or iterate: be explicit.
    def __iter__(self):
        raise TypeError(f"{self!r} is symbolic and cannot be iterated.")

    def __bool__(self):
        raise TypeError(f"{self!r} is symbolic: it has no truth value.")


class Node:
    """One call of a layer inside a graph: ``outputs = layer(inputs)``.

    Attributes:
        layer: the layer (or model) that was called.
        inputs: the :class:`KerasTensor` s it was called on, as a list.
        outputs: the :class:`KerasTensor` s it returned, as a list.
        many_inputs: the layer takes a list (``Concatenate``, ``Add``...), so
            it is called with ``[x0, x1, ...]`` rather than ``x0``.
        many_outputs: the layer returns a list (a model with several outputs).
    """

    def __init__(
        self, layer, inputs: list, output_shapes: list, many_inputs: bool, many_outputs: bool, dtype: str
    ):
        self.layer = layer
        self.inputs = list(inputs)
        self.many_inputs = many_inputs
        self.many_outputs = many_outputs
        self.outputs = [
            KerasTensor(shape, dtype, node=self, index=i) for i, shape in enumerate(output_shapes)
        ]

    @property
    def parents(self) -> list[Node]:
        """The nodes that produced this node's inputs (an input layer's node has none)."""
        return [t.node for t in self.inputs]

    def __repr__(self) -> str:
        ins = ", ".join(t.name for t in self.inputs)
        return f"<Node {self.layer.name}({ins})>"


def is_symbolic(value: Any) -> bool:
    """True for a :class:`KerasTensor` or a list/tuple holding one."""
    if isinstance(value, KerasTensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, KerasTensor) for v in value)
    return False


def call_symbolic(layer, inputs):
    """``layer(inputs)`` on symbolic tensors: build the layer for their shapes,
    record a :class:`Node` on the layer, return the output tensor(s)."""
    many_inputs = isinstance(inputs, (list, tuple))
    tensors = list(inputs) if many_inputs else [inputs]
    for t in tensors:
        if not isinstance(t, KerasTensor):
            raise TypeError(
                f"Layer '{layer.name}' was called on a mix of symbolic tensors and "
                f"{type(t).__name__}; in a functional model every input must come "
                "from numvgg.layers.Input(...) or another layer."
            )
    shapes = [t.shape for t in tensors]
    input_shape = shapes if many_inputs else shapes[0]
    layer.build_for(input_shape)
    output_shape = layer.compute_output_shape(input_shape)
    many_outputs = isinstance(output_shape, list)
    output_shapes = output_shape if many_outputs else [output_shape]
    node = Node(layer, tensors, output_shapes, many_inputs, many_outputs, layer.dtype.name)
    layer._inbound_nodes.append(node)
    return list(node.outputs) if many_outputs else node.outputs[0]
