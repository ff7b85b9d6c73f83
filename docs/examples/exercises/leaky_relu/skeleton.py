"""Exercise leaky_relu: LeakyReLU forward and backward.

Read leaky_relu.md (next to this file), then replace each
``raise NotImplementedError`` below with your code. Check your work with

    numvgg exercises check leaky_relu leaky_relu.py --exercises-dir FOLDER
"""
from __future__ import annotations


def leaky_relu_forward(x, negative_slope=0.3):
    """``out = x`` where ``x > 0``, ``negative_slope * x`` elsewhere.

    Returns ``(out, cache)``: ``out`` has the shape and dtype of ``x``;
    ``cache`` is whatever your backward needs.
    """
    raise NotImplementedError("exercise: implement leaky_relu_forward")


def leaky_relu_backward(dout, cache):
    """``dx`` from the upstream gradient ``dout`` and your forward's ``cache``."""
    raise NotImplementedError("exercise: implement leaky_relu_backward")
