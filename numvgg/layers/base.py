"""The contract every numvgg layer follows.

A layer is a thin, stateful wrapper around one pure op from :mod:`numvgg.ops`:

* ``build(input_shape)`` creates the weights once the input shape is known
  (shapes carry ``None`` for the batch axis, as in Keras: ``(None, H, W, C)``);
* ``forward(x, training=False)`` runs the op and keeps the op's cache;
* ``backward(dout)`` hands that cache back to the op, stores the weight
  gradients in ``self.grads`` (same order as ``get_weights()``) and returns
  ``dL/dx``. The cache is dropped afterwards so memory does not grow.

There is **one way in**: ``layer(x)`` (``__call__``) is the only entry point,
for every caller -- a model's forward loop, ``predict``, ``fit``, a student in
a debugger. On a NumPy array it calls ``forward``; on a symbolic tensor (the
functional API: ``Dense(8)(Input((4,)))``) it records a graph node instead.
``keep_cache=False`` (what ``predict`` and ``evaluate`` pass) tells the layer
that no backward will follow, so it may skip what only backward needs; it is
still the same ``forward`` that runs, so a breakpoint there always fires.

Weights live in ``self.params``, an ordered ``dict`` keyed by Keras' own
variable names (``"kernel"``, ``"bias"``), so loading files and comparing with
Keras are loops over names.
"""

from __future__ import annotations

import abc
import itertools
import warnings
from collections import defaultdict
from typing import Any

import numpy as np

from .. import config
from ..errors import ShapeError
from ..io.checks import check_finite_weights
from ..naming import to_snake_case
from . import symbolic

# Keras gives unnamed layers names like ``dense``, ``dense_1``, ``conv2d_2``.
_NAME_COUNTERS: dict[str, itertools.count] = defaultdict(itertools.count)


def unique_name(prefix: str) -> str:
    """``prefix`` the first time, then ``prefix_1``, ``prefix_2``, ... (Keras' rule)."""
    n = next(_NAME_COUNTERS[prefix])
    return prefix if n == 0 else f"{prefix}_{n}"


def format_shape(shape) -> str:
    """``(None, 224, 224, 3)`` as Keras prints it; a list of shapes for several tensors."""
    if _is_shape_list(shape):
        return "[" + ", ".join(format_shape(s) for s in shape) + "]"
    return (
        "("
        + ", ".join("None" if s is None else str(s) for s in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _is_shape_list(shape) -> bool:
    return isinstance(shape, list) or (
        isinstance(shape, tuple) and len(shape) > 0 and isinstance(shape[0], (tuple, list))
    )


def _shapes_compatible(expected, got) -> bool:
    """Equal ranks and equal sizes wherever both are known (``None`` matches anything)."""
    if _is_shape_list(expected) or _is_shape_list(got):
        if not (_is_shape_list(expected) and _is_shape_list(got)) or len(expected) != len(got):
            return False
        return all(_shapes_compatible(e, g) for e, g in zip(expected, got))
    if len(expected) != len(got):
        return False
    return all(e is None or g is None or e == g for e, g in zip(expected[1:], got[1:]))


class Layer(abc.ABC):
    """Base class: weights, gradients, ``trainable`` and shape bookkeeping.

    Subclasses set ``self.params`` in ``build`` and implement
    ``compute_output_shape``, ``forward`` and ``backward``. They never
    override ``__call__``.
    """

    def __init__(
        self, name: str | None = None, trainable: bool = True, dtype: str | None = None, input_shape=None
    ):
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        # Keras: a layer's dtype defaults to keras.config.floatx() *when it is made*.
        self.dtype = np.dtype(dtype if dtype is not None else config.floatx())
        self.params: dict[str, np.ndarray] = {}
        # Weights no optimizer updates even when the layer trains (Keras'
        # add_weight(trainable=False)): BatchNormalization's moving statistics.
        self.non_trainable_param_names: set[str] = set()
        self.grads: list[np.ndarray | None] = []
        self.built = False
        self.input_shape: Any = None  # (None, ...) once built (a list for merge layers)
        self.output_shape: Any = None
        # A first layer may declare its input like Keras: Dense(4, input_shape=(8,)).
        self._declared_input_shape = (None, *input_shape) if input_shape is not None else None
        if input_shape is not None:
            warnings.warn(
                "Do not pass an `input_shape`/`input_dim` argument to a layer. When using "
                "Sequential models, prefer using an `Input(shape)` object as the first "
                "layer in the model instead.",
                UserWarning,
                stacklevel=3,
            )
        self._inbound_nodes: list = []  # graph nodes (functional API) this layer was called in
        self._keep_cache = True
        self._cache_value = None
        # How many forwards have stored a cache here; a model remembers the
        # count of its own last forward, so a backward can tell whether the
        # cache still belongs to that forward (see Model.backward).
        self.cache_serial = 0

    # -- shapes ---------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create weights for ``input_shape`` (batch axis ``None``). Layers
        without weights only record the shapes."""
        self.input_shape = (
            tuple(input_shape) if not _is_shape_list(input_shape) else [tuple(s) for s in input_shape]
        )
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def build_for(self, input_shape, received: str | None = None) -> None:
        """Build for ``input_shape`` unless built already; then check that it fits.
        ``received`` describes the input in the error (default: its shape)."""
        if not self.built:
            self.build(input_shape)
            return
        if not _shapes_compatible(self.input_shape, input_shape):
            raise ShapeError(
                f"Layer '{self.name}' expects input of shape {format_shape(self.input_shape)} "
                f"but received {received or 'input of shape ' + format_shape(input_shape)}."
            )

    def _as_input(self, x) -> Any:
        """``x`` as an array of the layer's dtype, the layer built for its shape."""
        if isinstance(x, (list, tuple)):
            arrays = [self._cast(a) for a in x]
            self.build_for(
                [(None, *a.shape[1:]) for a in arrays],
                "arrays of shapes " + ", ".join(str(a.shape) for a in arrays),
            )
            return arrays
        x = self._cast(x)
        self.build_for((None, *x.shape[1:]), f"an array of shape {x.shape}")
        return x

    def _cast(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)  # Keras casts inputs to the layer's compute dtype
        return x

    # -- forward / backward ----------------------------------------------
    def __call__(self, inputs, training: bool = False, keep_cache=True):
        """Run the layer: ``forward`` on arrays, a graph node on symbolic tensors.

        Args:
            inputs: an array ``(N, ...)`` (a list of arrays for merge layers),
                or :class:`~numvgg.layers.symbolic.KerasTensor` (s).
            training: Dropout and the random augmentation layers act only then.
            keep_cache: keep what ``backward`` needs (the default). ``False``
                when no backward follows (``predict``, ``evaluate``); a set of
                layers keeps caches only in those (a training step passes the
                layers its backward will reach).
        """
        if symbolic.is_symbolic(inputs):
            return symbolic.call_symbolic(self, inputs)
        self._keep_cache = keep_cache
        try:
            return self.forward(inputs, training=training)
        finally:
            self._keep_cache = True  # a direct forward() call always keeps its cache

    @property
    def keeping_cache(self) -> bool:
        """Whether the forward running now must keep its cache for a backward."""
        keep = self._keep_cache
        return keep if isinstance(keep, bool) else self in keep

    @abc.abstractmethod
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run the layer's op on ``x``, keeping its cache for ``backward``."""

    @abc.abstractmethod
    def backward(self, dout: np.ndarray, need_input_grad: bool = True, need_weight_grads: bool = True):
        """Return ``dL/dx`` (or ``None`` when ``need_input_grad`` is False)."""

    # What backward needs from the last forward. Assigning it counts a new
    # forward; when the call keeps no cache, the value is dropped at once.
    @property
    def _cache(self):
        return self._cache_value

    @_cache.setter
    def _cache(self, value) -> None:
        if value is not None:
            self.cache_serial += 1
            if not self.keeping_cache:
                value = None
        self._cache_value = value

    def clear_cache(self) -> None:
        """Forget what the last forward kept for backward (frees memory)."""
        self._cache_value = None

    def _take_cache(self):
        if self._cache_value is None:
            raise RuntimeError(
                f"Layer '{self.name}': backward() called before forward, after a "
                "forward that kept no cache (predict() and evaluate() keep none; "
                "layer(x) and model(x) do), or called twice for one forward pass."
            )
        cache, self._cache_value = self._cache_value, None
        self.grads = []  # a new backward: the last one's weight gradients are stale
        return cache

    # -- the graph (functional API) -----------------------------------------
    @property
    def input(self):
        """The symbolic tensor(s) this layer was first called on (Keras' ``layer.input``)."""
        node = self._first_node("input")
        if not node.inputs:  # an input layer: its tensor is both
            return node.outputs[0]
        return list(node.inputs) if node.many_inputs else node.inputs[0]

    @property
    def output(self):
        """The symbolic tensor(s) its first call returned, e.g. to build a feature
        extractor: ``Model(vgg.input, vgg.get_layer('block4_pool').output)``."""
        node = self._first_node("output")
        return list(node.outputs) if node.many_outputs else node.outputs[0]

    def _first_node(self, what: str):
        if not self._inbound_nodes:
            raise AttributeError(
                f"The layer {self.name} has never been called and thus has no defined {what}."
            )
        return self._inbound_nodes[0]

    # -- the layer tree -----------------------------------------------------
    def _flatten_layers(self, include_self: bool = True, recursive: bool = True):
        """This layer and every layer inside it, depth first, in model order.

        The one walker of the whole library (Keras has the same method): a
        leaf layer yields itself; a model (see ``numvgg.models.Model``)
        overrides ``_sublayers`` to list what it holds.
        """
        if include_self:
            yield self
        for sub in self._sublayers():
            if recursive:
                yield from sub._flatten_layers(include_self=True, recursive=True)
            else:
                yield sub

    def _sublayers(self) -> list:
        """The layers directly inside this one (none for a leaf layer)."""
        return []

    def _leaves_trainable(self, parent_trainable: bool = True):
        """``(leaf, effectively_trainable)`` for every leaf inside, in model order
        (input layers left out). A leaf is effectively trainable only if it and
        every model around it are: Keras' rule for what an optimizer updates."""
        trainable = parent_trainable and self.trainable
        subs = self._sublayers()
        if not subs:
            if not self.is_input_layer:
                yield self, trainable
            return
        for sub in subs:
            yield from sub._leaves_trainable(trainable)

    def leaf_layers(self):
        """Every layer that computes (not a model, not an input layer), in model order."""
        leaves = (l for l in self._flatten_layers() if not l._sublayers() and not l.is_input_layer)
        return list(dict.fromkeys(leaves))  # a layer shared by two nested models counts once

    is_input_layer = False

    # -- weights ----------------------------------------------------------
    @property
    def weight_names(self) -> list[str]:
        return list(self.params)

    @property
    def weights(self) -> list[np.ndarray]:
        """The live weight arrays (not copies), in Keras' order."""
        return list(self.params.values())

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        if not self.trainable:
            return []
        return [w for k, w in self.params.items() if k not in self.non_trainable_param_names]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        if not self.trainable:
            return self.weights
        return [w for k, w in self.params.items() if k in self.non_trainable_param_names]

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.params.values()]

    def set_weights(self, weights) -> None:
        """Assign all weights at once; shapes are checked first so a bad list
        leaves the layer untouched."""
        weights = list(weights)
        names = self.weight_names
        if len(weights) != len(names):
            raise ShapeError(
                f"Layer '{self.name}' has {len(names)} weight(s) {names} but was given {len(weights)}."
            )
        new = {}
        for wname, w in zip(names, weights):
            w = np.asarray(w)
            if w.shape != self.params[wname].shape:
                raise ShapeError(
                    f"Layer '{self.name}', weight '{wname}': expected shape "
                    f"{self.params[wname].shape}, received {w.shape}."
                )
            check_finite_weights(self.name, wname, w, "set_weights()")  # NaN/inf, or past float32
            new[wname] = np.ascontiguousarray(w, dtype=self.dtype)
        for wname, w in new.items():
            self.params[wname][...] = w  # in place: optimizers and traces keep their references

    def count_params(self) -> int:
        return int(sum(w.size for w in self.params.values()))

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config: dict):
        """A new, unbuilt layer from :meth:`get_config`'s dict, as Keras'
        ``Layer.from_config`` (``.keras`` files go through :mod:`numvgg.saving`)."""
        return cls(**config)

    def __repr__(self) -> str:
        shape = format_shape(self.output_shape) if self.output_shape else "unbuilt"
        return f"<{type(self).__name__} name={self.name!r} output={shape} params={self.count_params():,}>"
