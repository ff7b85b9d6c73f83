"""Layers that merge several inputs: ``Concatenate``, ``Add``, ``Multiply``, ``Average``.

They take a *list* of tensors, ``Concatenate()([a, b])``, and their backward
returns a list of gradients, one per input. In a functional model these are
where branches meet; where a tensor fans out to several layers, the model sums
the gradients that come back (see ``numvgg.models.Model.backward``).
"""

from __future__ import annotations

from ..errors import ShapeError
from ..ops import merging as merge_ops
from .base import Layer, format_shape


class _Merge(Layer):
    """Shared shape checks: a list of at least two inputs."""

    def _check_list(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' must be called on a list of at "
                f"least 2 inputs; received {format_shape(input_shape)}."
            )


class _Elementwise(_Merge):
    """Inputs of one shape in, that shape out."""

    def compute_output_shape(self, input_shape):
        self._check_list(input_shape)
        first = input_shape[0]
        for shape in input_shape[1:]:
            if len(shape) != len(first) or any(
                a is not None and b is not None and a != b for a, b in zip(first[1:], shape[1:])
            ):
                raise ShapeError(
                    f"{type(self).__name__} '{self.name}' needs inputs of one shape; "
                    f"received {format_shape(input_shape)}."
                )
        return tuple(first)


class Add(_Elementwise):
    """``x0 + x1 + ...``. Shapes: n inputs ``(N, ...)`` of one shape, out the same.
    Backward caches: the number of inputs (each gets ``dout``)."""

    def forward(self, xs, training=False):
        xs = self._as_input(xs)
        out, self._cache = merge_ops.add_forward(xs)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        n = self._take_cache()
        return merge_ops.add_backward(dout, n) if need_input_grad else None


class Average(_Elementwise):
    """``(x0 + x1 + ...) / n``. Backward caches: ``n`` (each input gets ``dout / n``)."""

    def forward(self, xs, training=False):
        xs = self._as_input(xs)
        out, self._cache = merge_ops.average_forward(xs)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        n = self._take_cache()
        return merge_ops.average_backward(dout, n) if need_input_grad else None


class Multiply(_Elementwise):
    """``x0 * x1 * ...`` elementwise. Backward caches: the inputs
    (input ``i``'s gradient is ``dout`` times the product of the others)."""

    def forward(self, xs, training=False):
        xs = self._as_input(xs)
        out, self._cache = merge_ops.multiply_forward(xs)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        xs = self._take_cache()
        return merge_ops.multiply_backward(dout, xs) if need_input_grad else None


class Concatenate(_Merge):
    """Join inputs along ``axis`` (default: the channels, ``-1``).

    Shapes: inputs equal except along ``axis``; out sums their sizes there.
    Backward caches: each input's size along ``axis`` (to cut ``dout`` apart).
    """

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        self._check_list(input_shape)
        rank = len(input_shape[0])
        axis = self.axis % rank
        if axis == 0:
            raise ValueError(f"Concatenate '{self.name}': axis 0 is the batch axis.")
        out = list(input_shape[0])
        for shape in input_shape[1:]:
            if len(shape) != rank or any(
                i != axis and a is not None and b is not None and a != b
                for i, (a, b) in enumerate(zip(input_shape[0], shape))
            ):
                raise ShapeError(
                    f"Concatenate '{self.name}': the inputs must match in every axis but the "
                    f"concatenation axis ({self.axis}); received {format_shape(input_shape)}."
                )
            out[axis] = None if out[axis] is None or shape[axis] is None else out[axis] + shape[axis]
        return tuple(out)

    def forward(self, xs, training=False):
        xs = self._as_input(xs)
        out, self._cache = merge_ops.concatenate_forward(xs, self.axis)
        return out

    def backward(self, dout, need_input_grad=True, need_weight_grads=True):
        cache = self._take_cache()
        return merge_ops.concatenate_backward(dout, cache) if need_input_grad else None

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
