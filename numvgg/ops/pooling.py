"""Pooling by hand: max-pool (Keras' ``MaxPooling2D``) and global average / max.

All arrays are NHWC. The max-pool gradient goes to exactly one element per
window, the *first* maximum in row-major order (what ``np.argmax`` returns),
which is what TensorFlow does too; ties therefore never split the gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .conv import conv_output_size, conv_pads
from .parallel import PIECES, parallel_map, split


class MaxPoolCache(NamedTuple):
    """``argmax``: for each output element, the flat index (within its
    ``PH*PW`` window) of the winning input; plus the geometry to scatter back."""

    x_shape: tuple
    argmax: np.ndarray | None  # (N, OH, OW, C) int, in 0 .. PH*PW-1
    pool_size: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]


def _window_views(xp: np.ndarray, ph: int, pw: int, sh: int, sw: int, oh: int, ow: int):
    """The ``PH*PW`` strided views ``(N, OH, OW, C)``, one per position in the
    window, in row-major order; views, so nothing is copied."""
    return [
        xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
        for i in range(ph)
        for j in range(pw)
    ]


def _max_like_tensorflow(views, o: np.ndarray) -> None:
    """Write into ``o`` TensorFlow's max-pool of windows holding NaN or -inf.

    TensorFlow starts each window at the lowest finite float and keeps any
    element ``>`` the running maximum: a NaN never wins (``np.fmax`` skips
    it), and a window of only NaN and -inf gives the lowest finite float,
    not NaN or -inf.
    """
    np.copyto(o, views[0])
    for v in views[1:]:
        np.fmax(o, v, out=o)
    np.fmax(o, np.finfo(o.dtype).min, out=o)


def maxpool2d_forward(
    x: np.ndarray, pool_size=(2, 2), strides=None, padding: str = "valid", need_cache: bool = True
):
    """Max over each ``PH x PW`` window.

    NaN and -inf follow TensorFlow's max-pool: a NaN never wins the forward
    max (a window of only NaN and -inf gives the lowest finite float), but a
    NaN *first* in its window takes the gradient, as TensorFlow's
    ``MaxPoolGrad`` scans from the first element with ``>``. (With 'same'
    padding before the map, pool 3 and up, a window at the top or left edge
    starts in the padding, so there a NaN first among the pixels does not
    take the gradient as in TensorFlow: not compared.) Finite inputs take
    none of this: one sum of the output tells.

    Args:
        x: ``(N, H, W, C)``.
        pool_size: ``(PH, PW)``; ``strides`` defaults to ``pool_size`` (Keras).
        padding: ``'valid'`` floors odd sizes (a 7-wide map gives 3), ``'same'``
            pads with -inf so the padding never wins.
        need_cache: ``False`` at inference skips finding the winners (most of
            the op's time); the cache is then ``None``.
    Returns:
        out ``(N, OH, OW, C)``, cache :class:`MaxPoolCache`.
    """
    ph, pw = pool_size
    sh, sw = strides if strides is not None else pool_size
    n, h, w, c = x.shape
    oh = conv_output_size(h, ph, sh, padding)
    ow = conv_output_size(w, pw, sw, padding)
    pads = conv_pads(h, w, ph, pw, (sh, sw), padding)
    out = np.empty((n, oh, ow, c), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int16) if need_cache else None

    def images(part):
        """The op on the images ``part``, writing into ``out`` (and ``argmax``)."""
        top, bottom, left, right = pads
        xb = x[part]
        if any(pads):
            xp = np.full((xb.shape[0], h + top + bottom, w + left + right, c), -np.inf, dtype=x.dtype)
            xp[:, top : top + h, left : left + w, :] = xb
        else:
            xp = xb
        views = _window_views(xp, ph, pw, sh, sw, oh, ow)
        o = out[part]
        np.copyto(o, views[0])
        for v in views[1:]:
            np.maximum(o, v, out=o)
        # A NaN or an infinite value in ``o`` (its sum is then non-finite): TensorFlow's rule.
        special = not np.isfinite(o.sum())
        if special:
            _max_like_tensorflow(views, o)
        if need_cache:
            # The winner's position: scan the window backwards so the FIRST maximum in
            # row-major order is the one left standing (np.argmax's rule, and TF's).
            a = argmax[part]
            a[...] = 0
            hit = np.empty(o.shape, dtype=bool)
            for k in range(len(views) - 1, 0, -1):
                np.equal(views[k], o, out=hit)
                a[hit] = k
            np.equal(views[0], o, out=hit)
            a[hit] = 0
            if special:
                # TF's gradient scans each window from its first element with ``>``:
                # a NaN there is never beaten, so it takes the gradient.
                np.isnan(views[0], out=hit)
                a[hit] = 0

    # Images on the thread pool; elementwise work, so the split changes no bit.
    parallel_map(images, split(n, PIECES))
    if not need_cache:
        return out, None
    return out, MaxPoolCache(x.shape, argmax, (ph, pw), (sh, sw), pads)


def maxpool2d_backward(dout: np.ndarray, cache: MaxPoolCache) -> np.ndarray:
    """Route each ``dout`` element to the input that won its window.

    Returns ``dx`` with the input's shape; every other element gets zero.

    For each position ``k`` in the window, the inputs at that position
    receive ``dout * (argmax == k)``, written straight into their strided
    view of ``dx``. With the usual pooling (stride = pool size, the map a
    whole number of windows) the views cover ``dx`` exactly, so nothing is
    zeroed first; overlapping windows (stride < pool) add up. The images run
    on the thread pool, one at a time per worker, so the boolean scratch
    stays small.
    """
    x_shape, argmax, (ph, pw), (sh, sw), pads = cache
    n, h, w, c = x_shape
    _, oh, ow, _ = dout.shape
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, w + left + right
    tiled = (sh, sw) == (ph, pw) and (hp, wp) == (oh * sh, ow * sw)
    overlap = sh < ph or sw < pw
    dxp = (np.empty if tiled else np.zeros)((n, hp, wp, c), dtype=dout.dtype)

    def images(part):
        hit = np.empty((oh, ow, c), dtype=bool)
        tmp = np.empty((oh, ow, c), dtype=dout.dtype) if overlap else None
        for b in range(part.start, part.stop):
            d, a = dout[b], argmax[b]  # (OH, OW, C)
            # dout * hit sends NaN * 0 = NaN to the losers too; TF gives a NaN or
            # inf only to the winner, so such an image takes the slower copyto.
            finite = np.isfinite(d.sum())  # any NaN or inf makes the sum non-finite
            for k, view in enumerate(_window_views(dxp[b : b + 1], ph, pw, sh, sw, oh, ow)):
                np.equal(a, k, out=hit)
                dst = tmp if overlap else view[0]
                if finite:
                    np.multiply(d, hit, out=dst)
                else:
                    dst[...] = 0
                    np.copyto(dst, d, where=hit)
                if overlap:
                    view[0] += tmp

    # Elementwise work on fixed groups of images: the split changes no bit.
    parallel_map(images, split(n, PIECES))
    return dxp[:, top : top + h, left : left + w, :]


def maxpool2d_forward_naive(x, pool_size=(2, 2), strides=None):
    """Loop version (``valid`` padding) for teaching and tests; returns ``out``."""
    ph, pw = pool_size
    sh, sw = strides if strides is not None else pool_size
    n, h, w, c = x.shape
    oh, ow = (h - ph) // sh + 1, (w - pw) // sw + 1
    out = np.zeros((n, oh, ow, c), dtype=x.dtype)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for k in range(c):
                    out[b, i, j, k] = x[b, i * sh : i * sh + ph, j * sw : j * sw + pw, k].max()
    return out


def maxpool2d_backward_naive(dout, x, pool_size=(2, 2), strides=None):
    """Loop version of the backward: the first maximum of each window takes the gradient."""
    ph, pw = pool_size
    sh, sw = strides if strides is not None else pool_size
    dx = np.zeros_like(x, dtype=dout.dtype)
    n, oh, ow, c = dout.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for k in range(c):
                    window = x[b, i * sh : i * sh + ph, j * sw : j * sw + pw, k]
                    r, s = np.unravel_index(np.argmax(window), window.shape)
                    dx[b, i * sh + r, j * sw + s, k] += dout[b, i, j, k]
    return dx


def global_average_pooling2d_forward(x: np.ndarray):
    """Mean over H and W: ``(N, H, W, C) -> (N, C)``. Cache: the input shape."""
    return x.mean(axis=(1, 2)), x.shape


def global_average_pooling2d_backward(dout: np.ndarray, x_shape) -> np.ndarray:
    """Each of the ``H*W`` inputs of a channel gets ``dout / (H*W)``."""
    n, h, w, c = x_shape
    return np.broadcast_to((dout / (h * w))[:, None, None, :], x_shape).copy()


class GlobalMaxCache(NamedTuple):
    x_shape: tuple
    winners: np.ndarray  # (N, H, W, C) bool: where the channel's maximum is
    counts: np.ndarray  # (N, C): how many positions tie for it


def global_max_pooling2d_forward(x: np.ndarray):
    """Max over H and W: ``(N, H, W, C) -> (N, C)``.

    Cache: where the maximum sits. Unlike ``MaxPooling2D`` (TensorFlow's
    max-pool op sends the gradient to one element), this layer is a
    ``reduce_max`` in Keras, whose gradient is shared equally by tied maxima;
    numvgg does the same.
    """
    out = x.max(axis=(1, 2))  # (N, C)
    winners = x == out[:, None, None, :]  # (N, H, W, C)
    counts = winners.sum(axis=(1, 2))  # (N, C), >= 1
    return out, GlobalMaxCache(x.shape, winners, counts)


def global_max_pooling2d_backward(dout: np.ndarray, cache: GlobalMaxCache) -> np.ndarray:
    """Each channel's gradient is split equally between its tied maxima."""
    share = (dout / cache.counts).astype(dout.dtype, copy=False)  # (N, C)
    return np.where(cache.winners, share[:, None, None, :], np.zeros((), dtype=dout.dtype))


# -- average pooling (Keras' AveragePooling2D) -------------------------------------------------
class AvgPoolCache(NamedTuple):
    """What the average-pool backward needs: the geometry and, per output
    position, how many real (not padding) pixels its window averaged."""

    x_shape: tuple
    pool_size: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    counts: np.ndarray  # (OH, OW, 1): the divisor of each window


def _window_counts(h: int, w: int, pool_size, strides, pads, oh: int, ow: int, dtype) -> np.ndarray:
    """``(OH, OW, 1)``: the number of input pixels inside each window. With
    ``'same'`` padding the border windows hang over the edge; TensorFlow (so
    Keras) divides by the pixels that are really there, not by ``PH*PW``."""
    top, bottom, left, right = pads
    inside = np.zeros((1, h + top + bottom, w + left + right, 1), dtype=dtype)
    inside[:, top : top + h, left : left + w, :] = 1
    (ph, pw), (sh, sw) = pool_size, strides
    views = _window_views(inside, ph, pw, sh, sw, oh, ow)
    return np.sum(views, axis=0)[0]  # (OH, OW, 1)


def avgpool2d_forward(x: np.ndarray, pool_size=(2, 2), strides=None, padding: str = "valid"):
    """Mean over each ``PH x PW`` window.

    Args:
        x: ``(N, H, W, C)``.
        pool_size: ``(PH, PW)``; ``strides`` defaults to ``pool_size`` (Keras).
        padding: ``'valid'`` floors odd sizes; ``'same'`` pads, and a window
            that covers padding averages only its real pixels (TensorFlow's rule).
    Returns:
        out ``(N, OH, OW, C)``, cache :class:`AvgPoolCache`.
    """
    ph, pw = pool_size
    sh, sw = strides if strides is not None else pool_size
    n, h, w, c = x.shape
    oh = conv_output_size(h, ph, sh, padding)
    ow = conv_output_size(w, pw, sw, padding)
    pads = conv_pads(h, w, ph, pw, (sh, sw), padding)
    top, bottom, left, right = pads
    if any(pads):
        xp = np.zeros((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
        xp[:, top : top + h, left : left + w, :] = x
    else:
        xp = x
    total = np.zeros((n, oh, ow, c), dtype=x.dtype)
    for v in _window_views(xp, ph, pw, sh, sw, oh, ow):
        total += v
    counts = _window_counts(h, w, (ph, pw), (sh, sw), pads, oh, ow, x.dtype)
    return total / counts, AvgPoolCache(x.shape, (ph, pw), (sh, sw), pads, counts)


def avgpool2d_backward(dout: np.ndarray, cache: AvgPoolCache) -> np.ndarray:
    """Each output shares its gradient equally among the pixels it averaged:
    ``dout / count`` goes to every position of its window (overlaps add up),
    and what lands on padding is dropped."""
    x_shape, (ph, pw), (sh, sw), pads, counts = cache
    n, h, w, c = x_shape
    _, oh, ow, _ = dout.shape
    top, bottom, left, right = pads
    share = dout / counts  # (N, OH, OW, C)
    dxp = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dout.dtype)
    for i in range(ph):
        for j in range(pw):
            dxp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :] += share
    return dxp[:, top : top + h, left : left + w, :]


def avgpool2d_forward_naive(x, pool_size=(2, 2), strides=None, padding: str = "valid"):
    """Loop version for teaching and tests: with ``'same'``, each window is
    clipped to the image and averaged over what is left."""
    ph, pw = pool_size
    sh, sw = strides if strides is not None else pool_size
    n, h, w, c = x.shape
    oh, ow = conv_output_size(h, ph, sh, padding), conv_output_size(w, pw, sw, padding)
    top, _, left, _ = conv_pads(h, w, ph, pw, (sh, sw), padding)
    out = np.zeros((n, oh, ow, c), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            r0, s0 = i * sh - top, j * sw - left
            window = x[:, max(r0, 0) : min(r0 + ph, h), max(s0, 0) : min(s0 + pw, w), :]
            out[:, i, j, :] = window.mean(axis=(1, 2))
    return out
