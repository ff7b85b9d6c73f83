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

Which path runs (``algorithm``, default :func:`numvgg.config.conv_algorithm`):

* ``'im2col'``: exactly the above, any kernel and stride; backward by
  ``cols.T @ dout`` and ``col2im``. This is the path the docs and the
  exercises teach.
* ``'kernel_rows'``: stride 1 only; the same sum split by kernel row
  (:func:`_conv_by_kernel_rows`), a third of im2col's copying. Backward:
  ``dkernel`` by kernel rows, ``dx`` as the stride-1 convolution of ``dout``
  with the flipped kernel (:func:`stride1_input_grad`), by kernel rows too.
* ``'winograd2'`` / ``'winograd4'`` (``'winograd'`` = ``'winograd4'``): 3x3
  kernels with stride 1 (:mod:`numvgg.ops.winograd`); backward: ``dx`` by the
  same Winograd size, ``dkernel`` and ``dbias`` by the same size too
  (:mod:`numvgg.ops.winograd_grad`).
* ``'auto'``: per layer shape, the fastest of the paths whose float32
  rounding matches im2col's (``'im2col'``, ``'kernel_rows'``,
  ``'winograd2'``), measured on a 2-core AVX-512 EPYC (:func:`auto_path`;
  the table is in docs/performance.md). ``'winograd4'`` is faster still but
  rounds about 5x more, so it is only used when asked for.

A path that cannot run a given convolution falls back: Winograd on a non-3x3
kernel uses ``'kernel_rows'`` at stride 1 and ``'im2col'`` otherwise;
``'kernel_rows'`` at stride > 1 uses ``'im2col'``. The cache records the path
that ran, and ``conv2d_backward`` follows it.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import numpy as np

from .. import config
from . import winograd, winograd_grad
from .parallel import PIECES, parallel_map, split

# Images per im2col chunk are chosen so one ``cols`` matrix stays near this size.
_CHUNK_BYTES = 64 * 2**20


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs: the (unpadded) input, the kernel, and
    the geometry. ``cols`` is *not* kept; backward rebuilds it chunk by chunk."""

    x: np.ndarray  # (N, H, W, C)
    kernel: np.ndarray  # (KH, KW, C, F)
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]  # (top, bottom, left, right)

    @property
    def algorithm(self) -> str:
        """The path the forward took (backward follows it): always plain im2col here."""
        return "im2col"


class FastConvCache(NamedTuple):
    """:class:`ConvCache` of the stride-1 paths: the same four fields (so
    ``cache[:4]`` reads like im2col's), plus the path that ran and the layer's
    :class:`~numvgg.ops.winograd.KernelTransforms` (or ``None``)."""

    x: np.ndarray  # (N, H, W, C)
    kernel: np.ndarray  # (KH, KW, C, F)
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    algorithm: str  # 'kernel_rows', 'winograd2' or 'winograd4'
    transforms: object = None


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
    xp[:, top : top + h, left : left + w, :] = x  # explicit ends: correct even when a pad is 0
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
            cols[:, :, :, i, j, :] = x_padded[
                :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :
            ]
    return cols.reshape(n * oh * ow, kh * kw * c)  # (N*OH*OW, KH*KW*C)


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
    patches = cols.reshape(n, oh, ow, kh, kw, c)  # (N, OH, OW, KH, KW, C)
    x_padded = np.zeros(padded_shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            x_padded[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :] += patches[
                :, :, :, i, j, :
            ]
    return x_padded


def _batch_chunks(n: int, row_bytes: int):
    """Split ``range(n)`` so each chunk's ``cols`` is about ``_CHUNK_BYTES``."""
    step = max(1, _CHUNK_BYTES // max(row_bytes, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def auto_path(x_shape, kernel_shape, strides) -> str:
    """The path ``'auto'`` takes for one convolution, from measurements on a
    2-vCPU AMD EPYC with AVX-512 (``bench/conv_paths.py`` prints the table;
    docs/performance.md has it). Only paths as exact as im2col in float32
    are candidates (errors ~1e-6 against Keras, like Keras' own rounding).

    * 3x3, stride 1, at least 32 input channels, maps of at least 7x7 (VGG16
      at 224x224 from block1_conv2 on): Winograd F(2x2, 3x3). Its transforms
      cost in proportion to ``C + F`` and its products to ``C*F``, so with
      few channels (block1_conv1's 3) the transforms dominate and it loses.
      Smaller maps (VGG16 at 32x32 from block4 on) keep im2col: their time is
      negligible, and there Winograd's rounding shows in a float64 gradient
      check, on kernel taps whose gradient is exactly zero because every live
      output they touch reads padding (the check sees ~1e-10 instead of 0).
    * other stride-1 convolutions on maps of at least 1024 pixels
      (block1_conv1): the kernel-row path.
    * everything else (strides, small maps): im2col.
    """
    _, h, w, c = x_shape
    kh, kw, _, f = kernel_shape
    if tuple(strides) != (1, 1):
        return "im2col"
    if (kh, kw) == (3, 3) and c >= 32 and min(h, w) >= 7:
        return "winograd2"
    if kh > 1 and h * w >= 1024:
        return "kernel_rows"
    return "im2col"


def all_finite(*arrays: np.ndarray) -> bool:
    """Whether every value of ``arrays`` is finite, which Winograd needs to
    put NaN and inf where the direct sum (and TensorFlow) does.

    Winograd mixes a tile's pixels before it multiplies: one NaN reaches
    every output of its tile (2x2 or 4x4, and of the overlapping tiles'),
    and an inf meets ``inf - inf`` and becomes NaN, where the direct sum
    keeps it to the outputs that read it, as ``inf``. So a convolution with
    a non-finite value runs by kernel rows instead (the cache records it).
    One ``np.sum`` per array: one pass, no boolean copy; a sum that
    overflows only sends a finite convolution to the exact path.
    """
    return all(np.isfinite(np.sum(a)) for a in arrays)


def conv_path(algorithm, x_shape, kernel_shape, strides) -> str:
    """The path that runs: ``algorithm`` (a name from :data:`numvgg.config.CONV_ALGORITHMS`,
    ``None`` for the configured one) resolved for this convolution's shape."""
    name = config.resolve_conv_algorithm(config.conv_algorithm() if algorithm is None else algorithm)
    stride1 = tuple(strides) == (1, 1)
    if name == "auto":
        return auto_path(x_shape, kernel_shape, strides)
    if name.startswith("winograd") and (tuple(kernel_shape[:2]) != (3, 3) or not stride1):
        name = "kernel_rows"
    if name == "kernel_rows" and not stride1:
        name = "im2col"
    return name


def conv2d_forward(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    strides=(1, 1),
    padding: str = "same",
    algorithm: str | None = None,
    transforms=None,
    relu: bool = False,
):
    """Convolve NHWC ``x`` with an HWIO ``kernel`` (cross-correlation, as Keras).

    Args:
        x: ``(N, H, W, C)``.
        kernel: ``(KH, KW, C, F)``.
        bias: ``(F,)`` or ``None``.
        strides: ``(sh, sw)``.
        padding: ``'same'`` (output ``ceil(H/sh)``) or ``'valid'``
            (output ``floor((H-KH)/sh)+1``).
        algorithm: ``'im2col'``, ``'kernel_rows'``, ``'winograd2'``,
            ``'winograd4'``, ``'winograd'`` or ``'auto'``; ``None`` follows
            :func:`numvgg.config.conv_algorithm`. See the module docstring for
            which path runs when.
        transforms: a :class:`numvgg.ops.winograd.KernelTransforms` that keeps
            the Winograd-transformed kernel between calls (layers pass theirs).
        relu: return ``max(out, 0)`` instead, the ReLU applied while each piece
            of the output is still in the CPU's cache (``Conv2D`` with
            ``activation='relu'`` asks for it); the values are exactly those of
            a separate ``np.maximum(out, 0)``.
    Returns:
        out: ``(N, OH, OW, F)``; cache: :class:`ConvCache` for ``'im2col'``,
        :class:`FastConvCache` (which records the path) for the others.
    """
    strides = tuple(strides)
    n, h, w, c = x.shape
    kh, kw, kc, f = kernel.shape
    if kc != c:
        raise ValueError(
            f"conv2d: input has {c} channels but the kernel expects {kc} (x {x.shape}, kernel {kernel.shape})"
        )
    pads = conv_pads(h, w, kh, kw, strides, padding)
    oh = conv_output_size(h, kh, strides[0], padding)
    ow = conv_output_size(w, kw, strides[1], padding)
    path = conv_path(algorithm, x.shape, kernel.shape, strides)
    if path.startswith("winograd") and not all_finite(x, kernel):
        path = "kernel_rows"
    if path == "im2col":
        out = np.empty((n, oh, ow, f), dtype=np.result_type(x, kernel))
        out_rows = out.reshape(n * oh * ow, f)  # (N*OH*OW, F) view into out
        rows_per_image = oh * ow
        w_mat = kernel.reshape(kh * kw * c, f)  # (KH*KW*C, F)
        for b in _batch_chunks(n, rows_per_image * kh * kw * c * x.itemsize):
            cols = im2col(pad_input(x[b], pads), kh, kw, strides)  # (n_b*OH*OW, KH*KW*C)
            np.matmul(cols, w_mat, out=out_rows[b.start * rows_per_image : b.stop * rows_per_image])
        if bias is not None:
            out += bias
        if relu:
            np.maximum(out, 0, out=out)
    else:
        out = stride1_conv(x, kernel, pads, (oh, ow), path, transforms, bias=bias, relu=relu)
    if path == "im2col":
        return out, ConvCache(x, kernel, strides, pads)
    return out, FastConvCache(x, kernel, strides, pads, path, transforms)


def stride1_conv(
    x: np.ndarray,
    kernel: np.ndarray,
    pads,
    out_hw,
    path: str,
    transforms=None,
    flipped_of=None,
    bias=None,
    relu: bool = False,
) -> np.ndarray:
    """Stride-1 correlation of ``x`` with ``kernel`` and explicit ``pads``, plus
    ``bias`` if given, then ``max(., 0)`` if ``relu``, by ``path``
    (``'kernel_rows'``, ``'winograd2'`` or ``'winograd4'``). The bias and the
    ReLU are applied piece by piece on the thread pool, while each piece of
    the output is still in cache.

    Args:
        x: ``(N, H, W, C)``; kernel: ``(KH, KW, C, F)``; out_hw: ``(OH, OW)``.
        transforms: a :class:`~numvgg.ops.winograd.KernelTransforms` to reuse
            the transformed kernel; flipped_of: the forward kernel when
            ``kernel`` is its flipped version (the input gradient's).
    Returns:
        ``(N, OH, OW, F)``.
    """
    if path.startswith("winograd"):
        m = int(path[len("winograd") :])
        if transforms is None:
            u = winograd.transform_kernel(kernel, m)
        elif flipped_of is not None:
            u = transforms.get(flipped_of, m, flipped=True)
        else:
            u = transforms.get(kernel, m)
        return winograd.conv2d_winograd(x, u, pads, out_hw, m, bias=bias, relu=relu)
    if path != "kernel_rows":
        raise ValueError(
            f"stride1_conv: unknown path {path!r}; valid: 'kernel_rows', 'winograd2', 'winograd4'"
        )
    n = x.shape[0]
    oh, ow = out_hw
    f = kernel.shape[3]
    out = np.empty((n, oh, ow, f), dtype=np.result_type(x, kernel))
    out_rows = out.reshape(n, oh * ow, f)  # (N, OH*OW, F) view into out

    def one_image(i):
        tmp = np.empty((oh * ow, f), dtype=out.dtype)
        _conv_by_kernel_rows(pad_input(x[i : i + 1], pads)[0], kernel, oh, ow, out_rows[i], tmp)
        if bias is not None:
            out_rows[i] += bias
        if relu:
            np.maximum(out_rows[i], 0, out=out_rows[i])

    parallel_map(one_image, range(n))  # images on the thread pool
    return out


def _conv_by_kernel_rows(
    xp: np.ndarray, kernel: np.ndarray, oh: int, ow: int, dst: np.ndarray, tmp: np.ndarray
) -> None:
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
    r = _kernel_row_patches(xp, kw, ow)  # (Hp, OW*KW*C)
    k_rows = kernel.reshape(kh, kw * c, f)  # (KH, KW*C, F)
    np.matmul(r[0:oh].reshape(oh * ow, kw * c), k_rows[0], out=dst)
    for i in range(1, kh):
        np.matmul(r[i : i + oh].reshape(oh * ow, kw * c), k_rows[i], out=tmp)
        dst += tmp


def _kernel_row_patches(xp: np.ndarray, kw: int, ow: int) -> np.ndarray:
    """``(Hp, Wp, C) -> (Hp, OW*KW*C)``: at every padded row and output column,
    the ``KW*C`` values one kernel row sees (stride 1)."""
    hp, _, c = xp.shape
    r = np.empty((hp, ow, kw, c), dtype=xp.dtype)
    for j in range(kw):
        r[:, :, j, :] = xp[:, j : j + ow, :]
    return r.reshape(hp, ow * kw * c)  # (Hp, OW*KW*C)


def kernel_grad_by_rows(x: np.ndarray, dout: np.ndarray, kernel_shape, pads) -> np.ndarray:
    """``dkernel`` of a stride-1 convolution, one kernel row at a time.

    Kernel row ``i`` saw, for output row ``r``, padded input row ``r + i``; so
    ``dkernel[i] = patches[i:i+OH].T @ dout`` with the kernel-row patches of
    :func:`_kernel_row_patches`: the im2col formula ``cols.T @ dout`` split in
    ``KH`` products, without building ``cols``.

    Returns:
        ``(KH, KW, C, F)``.
    """
    kh, kw, c, f = kernel_shape
    n, oh, ow, _ = dout.shape

    def images(part):  # one partial sum per group of images
        dk = np.zeros((kh, kw * c, f), dtype=np.result_type(x, dout))  # (KH, KW*C, F)
        for b in range(part.start, part.stop):
            r = _kernel_row_patches(pad_input(x[b : b + 1], pads)[0], kw, ow)  # (Hp, OW*KW*C)
            d_rows = dout[b].reshape(oh * ow, f)  # (OH*OW, F)
            for i in range(kh):
                dk[i] += r[i : i + oh].reshape(oh * ow, kw * c).T @ d_rows
        return dk

    # The groups are fixed (parallel.PIECES), and summed in order: the same
    # result whatever the number of threads.
    partials = parallel_map(images, split(n, PIECES))
    dk = partials[0]
    for p in partials[1:]:
        dk += p
    return dk.reshape(kernel_shape)


def kernel_gradient(x: np.ndarray, dout: np.ndarray, kernel_shape, pads, path: str):
    """``(dkernel, dbias)`` of a stride-1 convolution that ran by ``path``.

    Winograd layers (3x3) get both from
    :func:`numvgg.ops.winograd_grad.kernel_grad_winograd`, with the layer's
    tile size: F(4x4, 3x3) does 4x fewer multiplications than the direct sum
    and F(2x2, 3x3) 2.25x fewer, and F(2x2, 3x3) rounds about as little as
    the direct sum (docs/performance.md has the numbers). The kernel-row path
    uses :func:`kernel_grad_by_rows` and :func:`bias_gradient`.

    Returns:
        ``(KH, KW, C, F)`` and ``(F,)``.
    """
    if path.startswith("winograd") and tuple(kernel_shape[:2]) == (3, 3):
        return winograd_grad.kernel_grad_winograd(
            x, dout, pads, winograd.MATRICES[int(path[len("winograd") :])]
        )
    return kernel_grad_by_rows(x, dout, kernel_shape, pads), bias_gradient(dout)


def bias_gradient(dout: np.ndarray) -> np.ndarray:
    """``dbias = sum of dout over N, OH, OW``: ``(N, OH, OW, F) -> (F,)``.

    Summed by groups of images on the thread pool, the groups fixed
    (:data:`numvgg.ops.parallel.PIECES`) and added in order, so the result
    does not depend on the number of threads.
    """
    partials = parallel_map(lambda part: dout[part].sum(axis=(0, 1, 2)), split(dout.shape[0], PIECES))
    total = partials[0]
    for p in partials[1:]:
        total += p
    return total


def stride1_input_grad(
    dout: np.ndarray, kernel: np.ndarray, pads, x_hw, path: str, transforms=None
) -> np.ndarray:
    """``dx`` of a stride-1 convolution, as a convolution itself.

    ``out[r] = sum_i xp[r + i] k[i]`` sends ``dout[r] * k[i]`` to padded pixel
    ``r + i``; collecting at one pixel gives ``dxp[q] = sum_i dout[q - i] k[i]``,
    a correlation of ``dout`` with the kernel flipped in both spatial axes and
    with C and F swapped, over ``dout`` padded by ``KH - 1 - top`` before and
    ``KH - 1 - bottom`` after (likewise for the columns). It runs through
    ``path``, so Winograd speeds up the backward pass as well.

    Returns:
        ``(N, H, W, C)``.
    """
    kh, kw = kernel.shape[:2]
    top, bottom, left, right = pads
    flipped = np.ascontiguousarray(kernel[::-1, ::-1].transpose(0, 1, 3, 2))  # (KH, KW, F, C)
    back_pads = (kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right)
    return stride1_conv(dout, flipped, back_pads, x_hw, path, transforms, flipped_of=kernel)


def conv2d_backward(
    dout: np.ndarray, cache: ConvCache, need_input_grad: bool = True, need_weight_grads: bool = True
):
    """Gradients of :func:`conv2d_forward`.

    With ``cols = im2col(x)`` and ``out = cols @ W``:
    ``dW = cols.T @ dout``, ``db = sum(dout)``, ``dx = col2im(dout @ W.T)``.

    That is the ``'im2col'`` path. When the forward took a stride-1 path
    (``cache.algorithm``), ``dkernel`` and ``dbias`` come from
    :func:`kernel_gradient` (through Winograd for Winograd layers, by kernel
    rows otherwise) and ``dx`` from :func:`stride1_input_grad` by the same path.

    Args:
        dout: ``(N, OH, OW, F)``, upstream gradient.
    Returns:
        ``(dx, dkernel, dbias)`` with the shapes of ``x``, ``kernel`` and
        ``(F,)``; an entry is ``None`` when not asked for.
    """
    x, kernel, strides, pads = cache[:4]
    path = getattr(cache, "algorithm", "im2col")  # a student's 4-field ConvCache: im2col
    if path.startswith("winograd") and not all_finite(dout):
        path = "kernel_rows"
    if path != "im2col":
        transforms = cast(FastConvCache, cache).transforms
        dx = (
            stride1_input_grad(dout, kernel, pads, x.shape[1:3], path, transforms)
            if need_input_grad
            else None
        )
        dkernel = dbias = None
        if need_weight_grads:
            dkernel, dbias = kernel_gradient(x, dout, kernel.shape, pads, path)
        return dx, dkernel, dbias
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    _, oh, ow, _ = dout.shape
    w_mat = kernel.reshape(kh * kw * c, f)  # (KH*KW*C, F)
    dout_rows = dout.reshape(n * oh * ow, f)  # (N*OH*OW, F)
    top, bottom, left, right = pads
    padded_shape_hw = (h + top + bottom, w + left + right)

    dx = np.empty_like(x) if need_input_grad else None
    dw_mat = np.zeros_like(w_mat) if need_weight_grads else None
    rows_per_image = oh * ow
    for b in _batch_chunks(n, rows_per_image * kh * kw * c * x.itemsize):
        d_rows = dout_rows[b.start * rows_per_image : b.stop * rows_per_image]
        if dw_mat is not None:
            cols = im2col(pad_input(x[b], pads), kh, kw, strides)
            dw_mat += cols.T @ d_rows  # (KH*KW*C, F)
        if dx is not None:
            dcols = d_rows @ w_mat.T  # (n_b*OH*OW, KH*KW*C)
            dxp = col2im(dcols, (b.stop - b.start, *padded_shape_hw, c), kh, kw, strides)
            dx[b] = dxp[:, top : top + h, left : left + w, :]  # drop the padding
    dkernel = dw_mat.reshape(kernel.shape) if dw_mat is not None else None
    dbias = dout_rows.sum(axis=0) if need_weight_grads else None
    return dx, dkernel, dbias


# ---------------------------------------------------------------------------
# Naive loop versions: slow, obvious, and the reference for the fast ones.
# ---------------------------------------------------------------------------


def conv2d_forward_winograd(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    strides=(1, 1),
    padding: str = "same",
    u: np.ndarray | None = None,
    m: int = 2,
):
    """Same contract as :func:`conv2d_forward`, for 3x3 kernels
    with stride 1; ``m`` is 2 for F(2x2, 3x3) or 4 for F(4x4, 3x3). ``u`` may
    pass a kernel already transformed by :func:`numvgg.ops.winograd.transform_kernel`.

    Returns ``(out, FastConvCache)``; the cache's ``algorithm`` names this
    Winograd size, so :func:`conv2d_backward` computes ``dx``
    with it too.
    """
    if kernel.shape[:2] != (3, 3) or tuple(strides) != (1, 1):
        raise ValueError(
            f"Winograd F({m}x{m}, 3x3) needs a 3x3 kernel and stride 1; got kernel "
            f"{kernel.shape[:2]} and strides {tuple(strides)}. Use 'im2col'."
        )
    if m not in winograd.MATRICES:
        raise ValueError(f"Winograd output tile m must be one of {sorted(winograd.MATRICES)}, got {m!r}")
    _, h, w, c = x.shape
    if kernel.shape[2] != c:
        raise ValueError(
            f"conv2d: input has {c} channels but the kernel expects {kernel.shape[2]} "
            f"(x {x.shape}, kernel {kernel.shape})"
        )
    pads = conv_pads(h, w, 3, 3, (1, 1), padding)
    oh, ow = conv_output_size(h, 3, 1, padding), conv_output_size(w, 3, 1, padding)
    if u is None:
        u = winograd.transform_kernel(kernel, m)  # (a*a, C, F)
    out = winograd.conv2d_winograd(x, u, pads, (oh, ow), m, bias=bias)
    return out, FastConvCache(x, kernel, (1, 1), pads, f"winograd{m}")


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
                patch = xp[b, i * sh : i * sh + kh, j * sw : j * sw + kw, :]  # (KH, KW, C)
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
                    dxp[b, i * sh : i * sh + kh, j * sw : j * sw + kw, :] += g * kernel[:, :, :, k]
                    dkernel[:, :, :, k] += g * xp[b, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
    top, _, left, _ = pads
    dx = dxp[:, top : top + h, left : left + w, :]
    dbias = dout.sum(axis=(0, 1, 2))
    return dx, dkernel, dbias
