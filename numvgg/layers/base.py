"""The contract every numvgg layer follows.

A layer is a thin, stateful wrapper around one pure op from :mod:`numvgg.ops`:

* ``build(input_shape)`` creates the weights once the input shape is known
  (shapes carry ``None`` for the batch axis, as in Keras: ``(None, H, W, C)``);
* ``forward(x, training=False)`` runs the op and keeps the op's cache;
* ``backward(dout)`` hands that cache back to the op, stores the weight
  gradients in ``self.grads`` (same order as ``get_weights()``) and returns
  ``dL/dx``. The cache is dropped afterwards so memory does not grow.

Weights live in ``self.params``, an ordered ``dict`` keyed by Keras' own
variable names (``"kernel"``, ``"bias"``), so loading files and comparing with
Keras are loops over names.
"""
from __future__ import annotations

import abc
import itertools
from collections import defaultdict

import numpy as np

from ..errors import ShapeError

# Keras gives unnamed layers names like ``dense``, ``dense_1``, ``conv2d_2``.
_NAME_COUNTERS: dict[str, itertools.count] = defaultdict(itertools.count)


def _snake_case(class_name: str) -> str:
    out = []
    for i, ch in enumerate(class_name):
        if ch.isupper() and i and (not class_name[i - 1].isupper() or
                                   (i + 1 < len(class_name) and class_name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out).replace("2_d", "2d")


def unique_name(prefix: str) -> str:
    """``prefix`` the first time, then ``prefix_1``, ``prefix_2``, ... (Keras' rule)."""
    n = next(_NAME_COUNTERS[prefix])
    return prefix if n == 0 else f"{prefix}_{n}"


def format_shape(shape) -> str:
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + \
        ("," if len(shape) == 1 else "") + ")"


class Layer(abc.ABC):
    """Base class: weights, gradients, ``trainable`` and shape bookkeeping.

    Subclasses set ``self.params`` in ``build`` and implement
    ``compute_output_shape``, ``forward`` and ``backward``.
    """

    def __init__(self, name: str | None = None, trainable: bool = True,
                 dtype: str = "float32", input_shape=None):
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self.dtype = np.dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        # Weights no optimizer updates even when the layer trains (Keras'
        # add_weight(trainable=False)): BatchNormalization's moving statistics.
        self.non_trainable_param_names: set[str] = set()
        self.grads: list[np.ndarray | None] = []
        self.built = False
        self.input_shape = None          # (None, ...) once built
        self.output_shape = None
        # A first layer may declare its input like Keras: Dense(4, input_shape=(8,)).
        self._declared_input_shape = (None, *input_shape) if input_shape is not None else None
        self._cache = None

    # -- shapes ---------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create weights for ``input_shape`` (batch axis ``None``). Layers
        without weights only record the shapes."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _ensure_built(self, x: np.ndarray) -> None:
        if not self.built:
            self.build((None, *x.shape[1:]))
            return
        expected = self.input_shape[1:]
        got = x.shape[1:]
        if len(expected) != len(got) or any(e is not None and e != g for e, g in zip(expected, got)):
            raise ShapeError(
                f"Layer '{self.name}' expects input of shape {format_shape(self.input_shape)} "
                f"but received an array of shape {tuple(x.shape)}.")

    def _as_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)   # Keras casts inputs to the layer's compute dtype
        self._ensure_built(x)
        return x

    # -- forward / backward ----------------------------------------------
    @abc.abstractmethod
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Run the layer's op on ``x``, keeping its cache for ``backward``."""

    @abc.abstractmethod
    def backward(self, dout: np.ndarray, need_input_grad: bool = True,
                 need_weight_grads: bool = True):
        """Return ``dL/dx`` (or ``None`` when ``need_input_grad`` is False)."""

    def __call__(self, x, training: bool = False) -> np.ndarray:
        """Inference, as Keras' ``layer(x)``. It may skip what only backward
        needs (``MaxPooling2D`` does): call ``forward`` before ``backward``."""
        return self.forward(x, training=training)

    def clear_cache(self) -> None:
        """Forget what the last forward kept for backward (frees memory)."""
        self._cache = None

    def _take_cache(self):
        if self._cache is None:
            raise RuntimeError(f"Layer '{self.name}': backward() called before forward(training=...) "
                               "or called twice for one forward pass.")
        cache, self._cache = self._cache, None
        return cache

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
            raise ShapeError(f"Layer '{self.name}' has {len(names)} weight(s) {names} "
                             f"but was given {len(weights)}.")
        new = {}
        for wname, w in zip(names, weights):
            w = np.asarray(w)
            if w.shape != self.params[wname].shape:
                raise ShapeError(f"Layer '{self.name}', weight '{wname}': expected shape "
                                 f"{self.params[wname].shape}, received {w.shape}.")
            new[wname] = np.ascontiguousarray(w, dtype=self.dtype)
        for wname, w in new.items():
            self.params[wname][...] = w   # in place: optimizers and traces keep their references

    def count_params(self) -> int:
        return int(sum(w.size for w in self.params.values()))

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        shape = format_shape(self.output_shape) if self.output_shape else "unbuilt"
        return f"<{type(self).__name__} name={self.name!r} output={shape} params={self.count_params():,}>"
