"""``Sequential``: a stack of layers -- a :class:`~numvgg.models.model.Model` whose graph is a chain.

``Sequential([Input((150, 150, 3)), conv_base, GlobalAveragePooling2D(), ...])``
or ``Sequential()`` then ``add(layer)``. Once the input shape is known (an
``Input`` first, a first layer given ``input_shape=``, a nested built model,
``build()``, or the first batch of data), each layer is called on the
previous one's symbolic output, which builds it at once; the result is the
same graph ``Model(inputs, outputs)`` would hold, run by the same loop. As in
Keras, ``layers`` does not list the ``InputLayer`` (a functional model's does).
"""

from __future__ import annotations

from ..layers.base import Layer, unique_name
from ..layers.input_layer import InputLayer
from ..layers.symbolic import KerasTensor
from .model import Model


class Sequential(Model):
    """A linear stack of layers with Keras' API.

    Shapes: in the first layer's input, out the last layer's output.
    Backward caches nothing itself: each layer keeps its own cache.
    """

    _graph_comes_later = True

    def __init__(self, layers=None, trainable: bool = True, name: str | None = None):
        super().__init__(name=name or unique_name("sequential"), trainable=trainable)
        self._stack: list[Layer] = []
        self._input_layer: InputLayer | None = None
        for layer in layers or []:
            self.add(layer)

    # -- building ---------------------------------------------------------
    def add(self, layer) -> None:
        """Append a layer (or an ``Input(...)`` tensor, which sets the input)."""
        if isinstance(layer, KerasTensor):
            if not layer.node.layer.is_input_layer:
                raise TypeError(
                    "Sequential.add() takes an Input(...) tensor or a layer; "
                    f"{layer.name} was made by layer '{layer.node.layer.name}'."
                )
            layer = layer.node.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add() takes a numvgg layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if self._input_layer is not None or self._stack:
                raise ValueError(
                    f"Sequential model '{self.name}': an Input can only be the first entry, before any layer."
                )
            self._input_layer = layer
            return
        if layer.name in {l.name for l in self._stack}:
            raise ValueError(
                f"All layers added to a Sequential model should have unique names. "
                f"Name '{layer.name}' is already the name of a layer in '{self.name}'."
            )
        self._stack.append(layer)
        if self._input_layer is None and len(self._stack) == 1:
            declared = layer._declared_input_shape
            if declared is None and isinstance(layer, Model) and layer.built:
                declared = layer.input_shape
            if declared is not None:
                self._input_layer = InputLayer(batch_shape=declared, dtype=layer.dtype.name)
        if self._input_layer is not None:
            self._chain()

    def pop(self) -> Layer:
        """Remove and return the last layer, as Keras' ``model.pop()``."""
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        layer = self._stack.pop()
        if self._input_layer is not None:
            self._chain()
        return layer

    def build(self, input_shape=None) -> None:
        """Build for ``input_shape`` (batch axis included, ``None`` for any
        size); with an ``Input`` already given, no argument is needed."""
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError(
                    f"Sequential model '{self.name}' has no Input: pass "
                    "build(input_shape), e.g. build((None, 224, 224, 3))."
                )
        else:
            shape = tuple(input_shape)
            if (
                self._input_layer is not None
                and self.built
                and tuple(self._input_layer.batch_shape[1:]) == shape[1:]
            ):
                return
            dtype = self._stack[0].dtype.name if self._stack else None
            self._input_layer = InputLayer(batch_shape=(None, *shape[1:]), dtype=dtype)
        self._chain()

    def _chain(self) -> None:
        """Call every layer on the previous one's symbolic output (this builds
        them) and take the chain as this model's graph."""
        x = self._input_layer.output
        for layer in self._stack:
            x = layer(x)
        if self._stack:
            self._set_graph(self._input_layer.output, x)
        else:
            self.built = False

    # No forward of its own: Model.forward runs the chain (one frame less per
    # nested model between fit() and a layer's op, for a student in a debugger).
    def _build_on_first_call(self, inputs) -> None:
        if not self._stack:
            raise ValueError(f"Model '{self.name}' has no layers.")
        if not self.built:
            # Keras builds a model without a declared input on its first call.
            self.build((None, *inputs.shape[1:]))

    def build_for(self, input_shape, received: str | None = None) -> None:
        if not self.built and self._stack:
            self.build(input_shape)
        super().build_for(input_shape, received)

    # -- the layers -----------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The stacked layers; as in Keras, no ``InputLayer``."""
        return list(self._stack)

    def _sublayers(self) -> list:
        return self._layers if self.built else list(self._stack)
