"""Merging several tensors into one: concatenate, add, multiply, average.

Each forward takes a list of arrays ``[x0, x1, ...]`` and each backward returns
a list of gradients, one per input, in the same order.

* concatenate along ``axis``: the gradient is ``dout`` cut back into the
  pieces each input contributed;
* add (``sum_i x_i``): every input gets ``dout`` itself;
* average: every input gets ``dout / n``;
* multiply (``prod_i x_i``): input ``i`` gets ``dout * prod_{j != i} x_j``.
"""

from __future__ import annotations

import numpy as np


def concatenate_forward(xs: list, axis: int = -1):
    """Returns ``(out, cache)``; cache: the sizes along ``axis`` and the axis."""
    out = np.concatenate(xs, axis=axis)
    sizes = [x.shape[axis] for x in xs]
    return out, (sizes, axis)


def concatenate_backward(dout, cache) -> list:
    sizes, axis = cache
    cuts = np.cumsum(sizes)[:-1]
    return np.split(dout, cuts, axis=axis)


def add_forward(xs: list):
    """Returns ``(out, cache)``; cache: the number of inputs."""
    out = xs[0].copy()
    for x in xs[1:]:
        out += x
    return out, len(xs)


def add_backward(dout, cache) -> list:
    return [dout] * cache


def average_forward(xs: list):
    out, n = add_forward(xs)
    out /= n
    return out, n


def average_backward(dout, cache) -> list:
    share = dout / cache
    return [share] * cache


def multiply_forward(xs: list):
    """Returns ``(out, cache)``; cache: the inputs (each one's gradient needs the others)."""
    out = xs[0].copy()
    for x in xs[1:]:
        out *= x
    return out, list(xs)


def multiply_backward(dout, cache) -> list:
    xs = cache
    grads = []
    for i in range(len(xs)):
        g = dout.copy()
        for j, x in enumerate(xs):
            if j != i:
                g *= x
        grads.append(g)
    return grads
