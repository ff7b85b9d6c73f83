"""``Input`` and ``InputLayer``: where a functional graph starts.

``x = Input((224, 224, 3))`` makes an ``InputLayer`` named ``input_layer``
(``input_layer_1``, ... for the next ones, as in Keras) and returns its output,
a symbolic tensor of shape ``(None, 224, 224, 3)``. A functional model lists
its input layers among its ``layers`` (Keras' ``VGG16().layers[0]`` is one); a
``Sequential`` does not.
"""

from __future__ import annotations

from . import symbolic
from .base import Layer


class InputLayer(Layer):
    """The graph's entry: passes its input through unchanged (no weights).

    Shapes: in and out ``(N, *shape)``. Backward caches nothing; it returns
    ``dout`` (the gradient with respect to the model's input).
    """

    is_input_layer = True

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        if shape is not None and batch_shape is not None:
            raise ValueError("You cannot pass both `shape` and `batch_shape` at the same time.")
        if batch_shape is None:
            if shape is None:
                raise ValueError("You must pass a `shape` argument, e.g. Input(shape=(224, 224, 3)).")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size, *tuple(shape))
        batch_shape = tuple(None if s is None else int(s) for s in batch_shape)
        for s in batch_shape[1:]:
            if s is not None and s <= 0:
                raise ValueError(
                    f"Input '{self.name}': every size must be positive or None; "
                    f"received shape={batch_shape[1:]}"
                )
        self.batch_shape = batch_shape
        self.build(batch_shape)
        node = symbolic.Node(
            self, [], [batch_shape], many_inputs=False, many_outputs=False, dtype=self.dtype.name
        )
        node.outputs[0].name = self.name
        self._inbound_nodes.append(node)

    def forward(self, x, training=False):
        return self._as_input(x)

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        return dout if need_input_grad else None

    def get_config(self):
        return {
            "batch_shape": self.batch_shape,
            "dtype": self.dtype.name,
            "sparse": False,
            "ragged": False,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        for key in ("sparse", "ragged", "optional"):  # Keras' flags; numvgg inputs are dense
            if config.pop(key, False):
                raise ValueError(
                    f"InputLayer '{config.get('name')}': {key}=True is not supported "
                    "by numvgg (dense inputs only)."
                )
        return cls(**config)


def Input(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, tensor=None):
    """A symbolic input tensor, as ``keras.Input``: ``Input(shape=(224, 224, 3))``.

    ``shape`` excludes the batch axis; ``None`` marks a size known only when
    data arrives (``Input((None, None, 3))`` takes images of any size).
    """
    if tensor is not None:
        raise ValueError("numvgg.layers.Input does not take `tensor=`: pass `shape=` instead.")
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape, name=name)
    return layer.output
