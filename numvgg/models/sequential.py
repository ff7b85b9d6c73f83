"""``Sequential``: a stack of layers, itself a layer (so VGG16 can sit inside the seed's model).

Forward is a plain loop over the layers; backward is the same loop reversed,
each layer turning ``dL/d(output)`` into ``dL/d(input)``. There are no hooks:
put a breakpoint in the loop and step into any layer.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..layers.base import Layer, format_shape
from .training import Trainer


def leaf_layers(layer):
    """Every non-container layer inside ``layer``, depth first, in model order."""
    if isinstance(layer, Sequential):
        for sub in layer.layers:
            yield from leaf_layers(sub)
    else:
        yield layer


class Sequential(Trainer, Layer):
    """A linear stack of layers with Keras' API.

    ``Sequential([layer, ...])`` or ``Sequential()`` then ``add(layer)``.
    Shapes: in the first layer's input, out the last layer's output.
    Backward caches nothing itself: each layer keeps its own cache.

    When the input shape is known (a first layer given ``input_shape=``, a
    nested built model, or ``build()``), each added layer is built at once, so
    ``summary()`` and ``set_weights()`` work before any data flows.
    """

    def __init__(self, layers=None, name: str | None = None, trainable: bool = True,
                 input_shape=None):
        super().__init__(name=name, trainable=trainable, input_shape=input_shape)
        self.layers: list[Layer] = []
        self.input_layer_name: str | None = None   # set by functional-style builders (VGG16)
        for layer in layers or []:
            self.add(layer)

    # -- building ---------------------------------------------------------
    def add(self, layer: Layer) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add() takes a numvgg layer, got {type(layer).__name__}")
        names = {l.name for l in self.layers}
        if layer.name in names:
            raise ValueError(f"All layers added to a Sequential model should have unique names. "
                             f"Name '{layer.name}' is already the name of a layer in '{self.name}'.")
        if not self.layers:
            declared = layer._declared_input_shape or self._declared_input_shape
            if declared is None and layer.built:
                declared = layer.input_shape
            self.layers.append(layer)
            if declared is not None:
                self.build(declared)
            return
        if self.built:
            prev_shape = self.layers[-1].output_shape
            self._build_layer(layer, prev_shape)
            self.layers.append(layer)
            self.output_shape = layer.output_shape
        else:
            self.layers.append(layer)

    def _build_layer(self, layer, input_shape):
        if layer.built:
            if tuple(layer.input_shape[1:]) != tuple(input_shape[1:]):
                raise ShapeError(f"Layer '{layer.name}' was built for input {format_shape(layer.input_shape)} "
                                 f"but the layer before it outputs {format_shape(input_shape)}.")
        else:
            layer.build(input_shape)

    def build(self, input_shape) -> None:
        shape = tuple(input_shape)
        if self.layers and self.built and tuple(self.input_shape[1:]) == shape[1:]:
            return
        first_shape = shape
        for layer in self.layers:
            self._build_layer(layer, shape)
            shape = layer.output_shape
        self.input_shape = first_shape
        self.output_shape = shape
        self.built = bool(self.layers)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    # -- forward / backward ----------------------------------------------
    def forward(self, x, training: bool = False):
        """Run every layer in turn, keeping each layer's cache for ``backward``."""
        if not self.layers:
            raise ValueError(f"Model '{self.name}' has no layers.")
        x = np.asarray(x)
        self._check_input(x)
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def __call__(self, x, training: bool = False):
        """Inference: like ``forward`` but each layer's cache is dropped as soon
        as the next layer has run, so memory holds one activation at a time."""
        if not self.layers:
            raise ValueError(f"Model '{self.name}' has no layers.")
        x = np.asarray(x)
        self._check_input(x)
        for layer in self.layers:
            x = layer(x, training=training)
            layer.clear_cache()
        return x

    def forward_from(self, start: int, h, training: bool = False):
        """``forward`` from ``self.layers[start]`` on, given that layer's input ``h``
        (used with cached features of the layers below)."""
        for layer in self.layers[start:]:
            h = layer.forward(h, training=training)
        return h

    def call_from(self, start: int, h, training: bool = False, stop: int | None = None):
        """Inference through ``self.layers[start:stop]`` (caches dropped as in ``__call__``)."""
        for layer in self.layers[start:stop]:
            h = layer(h, training=training)
            layer.clear_cache()
        return h

    def _check_input(self, x):
        if not self.built:
            # Keras builds a model without a declared input on its first call.
            self.build((None, *x.shape[1:]))
            return
        if self.input_shape is not None:
            expected = self.input_shape
            if x.ndim != len(expected) or any(e is not None and e != g
                                              for e, g in zip(expected[1:], x.shape[1:])):
                from .checks import explain_input_shape
                why = explain_input_shape(self, x.shape)
                raise ShapeError(
                    f"Model '{self.name}' expects input of shape {format_shape(expected)} "
                    f"(batch first) but received an array of shape {tuple(x.shape)}"
                    + (f": {why}." if why else "."))

    def backward(self, dout, need_input_grad: bool = True, need_weight_grads: bool = True,
                 from_logits: bool = False, train_only: set | None = None):
        """Backpropagate ``dout = dL/d(output)``; returns ``dL/d(input)``.

        After it, each layer's ``grads`` holds its weight gradients in the
        order of ``get_weights()``.

        Args:
            from_logits: ``dout`` is the gradient w.r.t. the *pre-activation*
                of the last layer (a fused sigmoid/softmax + cross-entropy).
            train_only: ``None`` computes every gradient. A set of ``id()``s
                of the layers being trained (the training loop passes it)
                computes weight gradients only for those and stops at the
                lowest one: no work is spent below it. Returns ``None`` then
                unless ``need_input_grad``.
        """
        layers = self.layers
        trains = [train_only is None or _contains_trained(l, train_only) for l in layers]
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            wants_dx = need_input_grad or any(trains[:i])
            if not wants_dx and not trains[i]:
                for below in layers[:i + 1]:          # nothing here or below learns
                    below.clear_cache()
                return None
            kwargs = {"from_logits": True} if (from_logits and i == len(layers) - 1) else {}
            if isinstance(layer, Sequential):
                dout = layer.backward(dout, wants_dx, need_weight_grads, train_only=train_only, **kwargs)
            else:
                grads_here = need_weight_grads and (train_only is None or id(layer) in train_only)
                dout = layer.backward(dout, need_input_grad=wants_dx, need_weight_grads=grads_here, **kwargs)
        return dout

    def clear_cache(self):
        for layer in self.layers:
            layer.clear_cache()

    # -- weights and layers ------------------------------------------------
    @property
    def params(self):
        """All weights of all layers, keyed ``"layer_name/weight_name"``."""
        return {f"{leaf.name}/{k}": v for leaf in leaf_layers(self) for k, v in leaf.params.items()}

    @params.setter
    def params(self, value):
        if value:
            raise AttributeError("A Sequential model's weights live in its layers.")

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def grads(self):
        return [g for layer in self.layers for g in layer.grads]

    @grads.setter
    def grads(self, value):
        if value:
            raise AttributeError("A Sequential model's gradients live in its layers.")

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        # As in Keras: setting it on a model sets it on every layer inside.
        self._trainable = bool(value)
        for layer in getattr(self, "layers", []):
            layer.trainable = value

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [w for layer in self.layers for w in layer.non_trainable_weights]

    def trainable_leaves(self):
        """The leaf layers whose weights an optimizer would update now."""
        return _trainable_leaves(self)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        """Assign all weights in ``get_weights()`` order; every count and shape is
        checked before anything is written, so a bad list changes nothing."""
        weights = list(weights)
        own = self.weights
        if len(weights) != len(own):
            raise ShapeError(f"Model '{self.name}' has {len(own)} weight arrays but was given {len(weights)}.")
        named = [(leaf, k) for leaf in leaf_layers(self) for k in leaf.params]
        for (leaf, k), mine, new in zip(named, own, weights):
            if np.shape(new) != mine.shape:
                raise ShapeError(f"Layer '{leaf.name}', weight '{k}': expected shape {mine.shape}, "
                                 f"received {np.shape(new)}.")
        for mine, new in zip(own, weights):
            mine[...] = new

    def get_layer(self, name: str | None = None, index: int | None = None):
        """A layer by name (searching nested models too) or by index, as Keras."""
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Model '{self.name}' has {len(self.layers)} layers; index {index} is out of range.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        for layer in self.layers:
            if isinstance(layer, Sequential):
                try:
                    return layer.get_layer(name)
                except ValueError:
                    pass
        raise ValueError(f"No such layer: '{name}'. Existing layers are: {[l.name for l in self.layers]}.")

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    def summary(self, print_fn=print, line_length=None):
        """Print Keras' table: layer (type), output shape, param #, then totals."""
        from .summary import format_summary
        text = format_summary(self, line_length=line_length)
        if print_fn is None:
            return text
        print_fn(text)

    def load_weights(self, filepath, by_name: bool = False, skip_mismatch: bool = False):
        """Load a Keras weights file (any of the three layouts); all or nothing."""
        from ..io.weights import load_weights
        load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)

    def save_weights(self, filepath, overwrite: bool = True):
        """Write ``.weights.h5`` (Keras 3 layout) or another ``.h5`` (Keras' legacy layout)."""
        from ..io.weights import save_weights
        import os
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{filepath} exists and overwrite=False")
        save_weights(self, filepath)

    def get_config(self):
        return {**super().get_config(), "layers": [l.get_config() | {"class_name": type(l).__name__}
                                                   for l in self.layers]}


def _contains_trained(layer, train_only) -> bool:
    return any(id(leaf) in train_only for leaf in leaf_layers(layer))


def _trainable_leaves(layer, parent_trainable=True):
    ok = parent_trainable and layer.trainable
    if isinstance(layer, Sequential):
        out = []
        for sub in layer.layers:
            out.extend(_trainable_leaves(sub, ok))
        return out
    return [layer] if ok and layer.params else []
