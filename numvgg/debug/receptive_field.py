"""Receptive fields: which input pixels one output pixel of a layer can see.

For a stack of convolutions and poolings, walked from the input, with
``k`` a layer's kernel (or pool) size and ``s`` its stride:

    size_out  = size_in + (k - 1) * jump_in     # the new kernel spans k input steps
    jump_out  = jump_in * s                     # input pixels between neighbouring outputs
    start_out = start_in + ((k - 1) / 2 - pad_before) * jump_in

starting from ``size = 1, jump = 1, start = 0.5`` (one pixel, centred on pixel 0's
middle). ``size`` is the side of the square of input pixels that reaches one
output; ``jump`` is how far that square moves per output step; ``start`` is the
centre of the first output's square, in input pixels (negative when ``'same'``
padding makes the first window hang over the edge).

VGG16: block1_conv1 sees 3x3 pixels, block5_conv3 196x196 (jump 16),
block5_pool 212x212 (jump 32). Layers that mix every position (``Flatten``,
``Dense``, the global poolings) see the whole image: their size is ``None``.
Computed from the layers' configs (``kernel_size``, ``pool_size``,
``strides``, ``padding``); no forward pass is needed.
"""

from __future__ import annotations

from typing import NamedTuple

from ..ops.conv import same_pads


class ReceptiveField(NamedTuple):
    """One layer's receptive field. ``size``/``jump``/``start`` are ``None``
    once a layer mixes every position (the whole image is seen)."""

    name: str
    class_name: str
    size: tuple[int, int] | None  # (height, width) in input pixels
    jump: tuple[int, int] | None  # (down, across) per output step
    start: tuple[float, float] | None  # centre of output (0, 0)'s field (None: unknown)


# Layers that keep the spatial grid as it is (element-wise or per-pixel).
_PER_PIXEL = {"Activation", "Dropout", "InputLayer", "BatchNormalization"}


def _window(layer):
    """``(k, s, padding)`` per axis for a sliding-window layer, else ``None``."""
    kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    if kernel is None:
        return None
    return tuple(kernel), tuple(layer.strides), layer.padding


def receptive_fields(layers, input_size=None) -> list[ReceptiveField]:
    """The receptive field after each layer of a chain (``model.layers``).

    Args:
        layers: the layers in the order the input flows through them (a
            model's ``layers``; nested models must be flattened first).
        input_size: ``(H, W)`` of the input; only ``'same'`` padding needs it
            (for ``start``: TensorFlow pads ``total // 2`` before). ``None``
            takes the first layer's built input shape; if that is unknown
            too, ``start`` is ``None`` after a strided ``'same'`` layer.
    Returns:
        One :class:`ReceptiveField` per layer.
    Raises:
        ValueError: for a layer type it does not know how to follow, naming it.
    """
    layers = list(layers)
    size, jump = [1, 1], [1, 1]
    start: list[float] | None = [0.5, 0.5]
    grid = list(input_size) if input_size is not None else None
    if grid is None and layers and getattr(layers[0], "input_shape", None):
        hw = layers[0].input_shape[1:3]
        grid = list(hw) if len(hw) == 2 and None not in hw else None
    whole = False
    fields = []
    for layer in layers:
        class_name = type(layer).__name__
        window = _window(layer)
        if whole or class_name in ("Flatten", "Dense", "GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            whole = True
        elif window is not None:
            kernel, strides, padding = window
            for a in range(2):
                k, s = kernel[a], strides[a]
                if padding == "valid":
                    before = 0
                elif grid is not None:
                    before = same_pads(grid[a], k, s)[0]
                else:
                    # Unknown input size: 'same' pads (k - 1) // 2 before only at stride 1.
                    before = (k - 1) // 2 if s == 1 else None
                if start is not None and before is not None:
                    start[a] = start[a] + ((k - 1) / 2 - before) * jump[a]
                elif start is not None:
                    start = None
                size[a] = size[a] + (k - 1) * jump[a]
                jump[a] = jump[a] * s
                if grid is not None:
                    grid[a] = -(-grid[a] // s) if padding == "same" else (grid[a] - k) // s + 1
        elif class_name not in _PER_PIXEL:
            raise ValueError(
                f"receptive_fields: layer '{layer.name}' ({class_name}) is neither a "
                f"sliding window (kernel_size/pool_size, strides) nor one of "
                f"{sorted(_PER_PIXEL | {'Flatten', 'Dense'})}"
            )
        if whole:
            fields.append(ReceptiveField(layer.name, class_name, None, None, None))
        else:
            fields.append(
                ReceptiveField(
                    layer.name, class_name, tuple(size), tuple(jump), None if start is None else tuple(start)
                )
            )
    return fields
