"""2-D convolution by hand: im2col / col2im and the conv forward and backward.

Layouts are Keras': activations ``x`` are NHWC ``(N, H, W, C)``, the kernel is
HWIO ``(KH, KW, C, F)``, the bias ``(F,)``. Shape letters used throughout:
``N`` batch, ``H, W`` input height/width, ``C`` input channels, ``KH, KW``
kernel size, ``F`` filters (output channels), ``OH, OW`` output size.

The idea of im2col: every output pixel is a dot product between one
``KH*KW*C`` patch of the input and each filter. Copy all patches into the rows
of a matrix ``cols`` of shape ``(N*OH*OW, KH*KW*C)`` and the whole convolution
is one matrix product ``cols @ kernel.reshape(KH*KW*C, F)``, which BLAS does
fast. ``col2im`` is the adjoint of ``im2col``: it scatters patch gradients back
and *adds* them where patches overlap.

To keep memory bounded (the ``cols`` matrix of one 224x224x64 image is 115 MB),
the forward and backward work on chunks of the batch, and backward rebuilds
``cols`` from the cached input instead of keeping it.

``conv2d_forward_naive`` / ``conv2d_backward_naive`` are the same maths as
plain loops, kept for teaching and as the reference the tests compare with.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Images per im2col chunk are chosen so one ``cols`` matrix stays near this size.
_CHUNK_BYTES = 64 * 2**20


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs: the (unpadded) input, the kernel, and
    the geometry. ``cols`` is *not* kept; backward rebuilds it chunk by chunk."""
    x: np.ndarray            # (N, H, W, C)
    kernel: np.ndarray       # (KH, KW, C, F)
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]   # (top, bottom, left, right)


def conv_output_size(size: int, k: int, stride: int, padding: str) -> int:
    """Keras' rule: ``same`` -> ceil(size / stride); ``valid`` -> floor((size - k) / stride) + 1."""
    if padding == "same":
        return -(-size // stride)
    if padding == "valid":
        return max((size - k) // stride + 1, 0)
    raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")


def same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """Padding before/after for ``same``: TensorFlow puts the odd pixel *after*."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv_pads(h: int, w: int, kh: int, kw: int, strides, padding: str) -> tuple[int, int, int, int]:
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding != "same":
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    return (*same_pads(h, kh, strides[0]), *same_pads(w, kw, strides[1]))


def pad_input(x: np.ndarray, pads) -> np.ndarray:
    """Zero-pad the H and W axes of an NHWC array; ``pads`` = (top, bottom, left, right)."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    n, h, w, c = x.shape
    xp = np.zeros((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
    xp[:, top:top + h, left:left + w, :] = x    # explicit ends: correct even when a pad is 0
    return xp


def im2col(x_padded: np.ndarray, kh: int, kw: int, strides=(1, 1)) -> np.ndarray:
    """Copy every ``kh x kw`` patch of a padded NHWC array into a row.

    Args:
        x_padded: ``(N, Hp, Wp, C)``, already padded.
    Returns:
        cols: ``(N*OH*OW, KH*KW*C)``; row ``(n, i, j)`` holds the patch whose
        top-left corner is ``(i*sh, j*sw)``, flattened in (kh, kw, c) order so
        it lines up with ``kernel.reshape(KH*KW*C, F)``.
    """
    sh, sw = strides
    n, hp, wp, c = x_padded.shape
    oh = (hp - kh) // sh + 1
    ow = (wp - kw) // sw + 1
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x_padded.dtype)
    # One strided slice per kernel offset: KH*KW copies instead of a loop over pixels.
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = x_padded[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
    return cols.reshape(n * oh * ow, kh * kw * c)            # (N*OH*OW, KH*KW*C)


def col2im(cols: np.ndarray, padded_shape, kh: int, kw: int, strides=(1, 1)) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter rows back onto the padded image, adding overlaps.

    Args:
        cols: ``(N*OH*OW, KH*KW*C)``.
        padded_shape: ``(N, Hp, Wp, C)`` of the padded input.
    Returns:
        ``(N, Hp, Wp, C)``; a pixel covered by several patches receives the sum
        of their gradients (hence ``+=``, never ``=``).
    """
    sh, sw = strides
    n, hp, wp, c = padded_shape
    oh = (hp - kh) // sh + 1
    ow = (wp - kw) // sw + 1
    patches = cols.reshape(n, oh, ow, kh, kw, c)             # (N, OH, OW, KH, KW, C)
    x_padded = np.zeros(padded_shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            x_padded[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :] += patches[:, :, :, i, j, :]
    return x_padded


def _batch_chunks(n: int, row_bytes: int):
    """Split ``range(n)`` so each chunk's ``cols`` is about ``_CHUNK_BYTES``."""
    step = max(1, _CHUNK_BYTES // max(row_bytes, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                   strides=(1, 1), padding: str = "same"):
    """Convolve NHWC ``x`` with an HWIO ``kernel`` (cross-correlation, as Keras).

    Args:
        x: ``(N, H, W, C)``.
        kernel: ``(KH, KW, C, F)``.
        bias: ``(F,)`` or ``None``.
        strides: ``(sh, sw)``.
        padding: ``'same'`` (output ``ceil(H/sh)``) or ``'valid'``
            (output ``floor((H-KH)/sh)+1``).
    Returns:
        out: ``(N, OH, OW, F)``; cache: :class:`ConvCache`.
    """
    strides = tuple(strides)
    n, h, w, c = x.shape
    kh, kw, kc, f = kernel.shape
    if kc != c:
        raise ValueError(f"conv2d: input has {c} channels but the kernel expects {kc} "
                         f"(x {x.shape}, kernel {kernel.shape})")
    pads = conv_pads(h, w, kh, kw, strides, padding)
    oh = conv_output_size(h, kh, strides[0], padding)
    ow = conv_output_size(w, kw, strides[1], padding)
    out = np.empty((n, oh, ow, f), dtype=np.result_type(x, kernel))
    out_rows = out.reshape(n * oh * ow, f)                   # (N*OH*OW, F) view into out
    rows_per_image = oh * ow
    if strides == (1, 1) and kh > 1 and c >= 16 and rows_per_image >= 1024:
        # Stride 1, big maps (VGG16's blocks 1-3): the same product, split by
        # kernel row, copies a third of what full im2col copies (see
        # _conv_by_kernel_rows); measured 20-40% faster there. Small maps and
        # few channels make its matrix products too thin, so they keep im2col.
        tmp = np.empty((rows_per_image, f), dtype=out.dtype)
        for i in range(n):
            dst = out_rows[i * rows_per_image:(i + 1) * rows_per_image]
            _conv_by_kernel_rows(pad_input(x[i:i + 1], pads)[0], kernel, oh, ow, dst, tmp)
    else:
        w_mat = kernel.reshape(kh * kw * c, f)               # (KH*KW*C, F)
        for b in _batch_chunks(n, rows_per_image * kh * kw * c * x.itemsize):
            cols = im2col(pad_input(x[b], pads), kh, kw, strides)   # (n_b*OH*OW, KH*KW*C)
            np.matmul(cols, w_mat, out=out_rows[b.start * rows_per_image:b.stop * rows_per_image])
    if bias is not None:
        out += bias
    return out, ConvCache(x, kernel, strides, pads)


def _conv_by_kernel_rows(xp: np.ndarray, kernel: np.ndarray, oh: int, ow: int,
                         dst: np.ndarray, tmp: np.ndarray) -> None:
    """One padded image, stride 1: ``dst = im2col(xp) @ kernel`` without building im2col.

    Full im2col copies each pixel ``KH*KW`` times. Here ``r`` holds, at every
    (padded row, output column), the ``KW*C`` values one *kernel row* sees, so
    each pixel is copied only ``KW`` times; rows ``i .. i+OH`` of ``r`` are then
    exactly the im2col columns of kernel row ``i``, already contiguous, and
    the convolution is the sum over kernel rows of ``r[i:i+OH] @ kernel[i]``.

    Args:
        xp: ``(Hp, Wp, C)``; kernel: ``(KH, KW, C, F)``.
        dst: ``(OH*OW, F)``, written; tmp: ``(OH*OW, F)`` scratch.
    """
    kh, kw, c, f = kernel.shape
    hp = xp.shape[0]
    r = np.empty((hp, ow, kw, c), dtype=xp.dtype)
    for j in range(kw):
        r[:, :, j, :] = xp[:, j:j + ow, :]
    r = r.reshape(hp, ow * kw * c)                           # (Hp, OW*KW*C)
    k_rows = kernel.reshape(kh, kw * c, f)                   # (KH, KW*C, F)
    np.matmul(r[0:oh].reshape(oh * ow, kw * c), k_rows[0], out=dst)
    for i in range(1, kh):
        np.matmul(r[i:i + oh].reshape(oh * ow, kw * c), k_rows[i], out=tmp)
        dst += tmp


def conv2d_backward(dout: np.ndarray, cache: ConvCache, need_input_grad: bool = True,
                    need_weight_grads: bool = True):
    """Gradients of :func:`conv2d_forward`.

    With ``cols = im2col(x)`` and ``out = cols @ W``:
    ``dW = cols.T @ dout``, ``db = sum(dout)``, ``dx = col2im(dout @ W.T)``.

    Args:
        dout: ``(N, OH, OW, F)``, upstream gradient.
    Returns:
        ``(dx, dkernel, dbias)`` with the shapes of ``x``, ``kernel`` and
        ``(F,)``; an entry is ``None`` when not asked for.
    """
    x, kernel, strides, pads = cache
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    _, oh, ow, _ = dout.shape
    w_mat = kernel.reshape(kh * kw * c, f)                   # (KH*KW*C, F)
    dout_rows = dout.reshape(n * oh * ow, f)                 # (N*OH*OW, F)
    top, bottom, left, right = pads
    padded_shape_hw = (h + top + bottom, w + left + right)

    dx = np.empty_like(x) if need_input_grad else None
    dw_mat = np.zeros_like(w_mat) if need_weight_grads else None
    rows_per_image = oh * ow
    for b in _batch_chunks(n, rows_per_image * kh * kw * c * x.itemsize):
        d_rows = dout_rows[b.start * rows_per_image:b.stop * rows_per_image]
        if need_weight_grads:
            cols = im2col(pad_input(x[b], pads), kh, kw, strides)
            dw_mat += cols.T @ d_rows                        # (KH*KW*C, F)
        if need_input_grad:
            dcols = d_rows @ w_mat.T                         # (n_b*OH*OW, KH*KW*C)
            dxp = col2im(dcols, (b.stop - b.start, *padded_shape_hw, c), kh, kw, strides)
            dx[b] = dxp[:, top:top + h, left:left + w, :]    # drop the padding
    dkernel = dw_mat.reshape(kernel.shape) if need_weight_grads else None
    dbias = dout_rows.sum(axis=0) if need_weight_grads else None
    return dx, dkernel, dbias


# ---------------------------------------------------------------------------
# Naive loop versions: slow, obvious, and the reference for the fast ones.
# ---------------------------------------------------------------------------

def conv2d_forward_naive(x, kernel, bias=None, strides=(1, 1), padding="same"):
    """The convolution as four nested loops over ``n, i, j, f``. Same contract
    as :func:`conv2d_forward`; returns ``out`` only."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    sh, sw = strides
    pads = conv_pads(h, w, kh, kw, strides, padding)
    xp = pad_input(x, pads)
    oh = conv_output_size(h, kh, sh, padding)
    ow = conv_output_size(w, kw, sw, padding)
    out = np.zeros((n, oh, ow, f), dtype=np.result_type(x, kernel))
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                patch = xp[b, i * sh:i * sh + kh, j * sw:j * sw + kw, :]   # (KH, KW, C)
                for k in range(f):
                    out[b, i, j, k] = np.sum(patch * kernel[:, :, :, k])
    if bias is not None:
        out += bias
    return out


def conv2d_backward_naive(dout, x, kernel, strides=(1, 1), padding="same"):
    """Loop version of :func:`conv2d_backward`: each output pixel sends
    ``dout * kernel`` back to its patch and ``dout * patch`` to the kernel."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    sh, sw = strides
    pads = conv_pads(h, w, kh, kw, strides, padding)
    xp = pad_input(x, pads)
    dxp = np.zeros_like(xp)
    dkernel = np.zeros_like(kernel)
    _, oh, ow, _ = dout.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for k in range(f):
                    g = dout[b, i, j, k]
                    dxp[b, i * sh:i * sh + kh, j * sw:j * sw + kw, :] += g * kernel[:, :, :, k]
                    dkernel[:, :, :, k] += g * xp[b, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
    top, _, left, _ = pads
    dx = dxp[:, top:top + h, left:left + w, :]
    dbias = dout.sum(axis=(0, 1, 2))
    return dx, dkernel, dbias
