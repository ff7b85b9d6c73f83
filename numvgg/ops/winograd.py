"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 convolution with fewer multiplications.

An option beside im2col for 3x3, stride-1 convolutions (all 13 of VGG16's),
chosen explicitly with ``numvgg.config.set_conv_algorithm('winograd')``.

Each 2x2 block of output pixels depends on a 4x4 tile of input. Lavin & Gray
(2015) show it equals

    Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A

for a 3x3 kernel ``g`` and a 4x4 input tile ``d``: 16 multiplications per
output block and channel pair instead of 36 (2.25x fewer). Summed over input
channels, the elementwise products become 16 independent matrix products
``V[ab] @ U[ab]`` of shape ``(tiles, C) @ (C, F)``, which BLAS does fast.

Shapes: ``x (N, H, W, C)``, ``kernel (3, 3, C, F)``, output ``(N, H, W, F)``
(``'same'``) or ``(N, H-2, W-2, F)`` (``'valid'``). The backward pass is the
same as im2col's (:func:`numvgg.ops.conv.conv2d_backward`): only the way the
forward sum is computed differs, not what it is. Rounding differs from im2col
in the last float32 digits (measured ~1e-6 relative).
"""
from __future__ import annotations

import numpy as np

from .conv import ConvCache, conv_output_size, conv_pads

# The transforms, written out (rows of B^T, G and A^T).
B_T = np.array([[1, 0, -1, 0],
                [0, 1, 1, 0],
                [0, -1, 1, 0],
                [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0],
                [0, 1, -1, -1]], dtype=np.float64)

# Tiles per chunk, so the transformed input (16 x tiles x C) stays near 64 MB.
_CHUNK_BYTES = 64 * 2**20


def transform_kernel(kernel: np.ndarray) -> np.ndarray:
    """``U = G g G^T`` for every (C, F) pair: ``(3, 3, C, F) -> (16, C, F)``."""
    g = G.astype(kernel.dtype)                                     # 0.5 and 1: exact in float32
    t = np.tensordot(g, kernel, axes=(1, 0))                       # (4, 3, C, F): G g
    u = np.tensordot(g, t, axes=(1, 1))                            # (4b, 4a, C, F): (G g) G^T
    return np.ascontiguousarray(u.transpose(1, 0, 2, 3)).reshape(16, *kernel.shape[2:])


def _bt_combine(r0, r1, r2, r3):
    """Apply ``B^T`` along one axis, given the four rows (or columns) of the tiles."""
    return (r0 - r2, r1 + r2, r2 - r1, r1 - r3)


def transform_input(xp: np.ndarray, th: int, tw: int) -> np.ndarray:
    """``V = B^T d B`` for every 4x4 tile (stride 2) of the padded input.

    Args:
        xp: ``(N, 2*th + 2, 2*tw + 2, C)``, padded.
    Returns:
        ``(16, N*th*tw, C)``: one matrix per position ``(a, b)`` of the 4x4 transform.
    """
    n, _, _, c = xp.shape
    rows = [xp[:, k:k + 2 * th:2] for k in range(4)]              # 4 x (N, th, Wp, C), views
    v = np.empty((4, 4, n, th, tw, c), dtype=xp.dtype)
    for a, t in enumerate(_bt_combine(*rows)):                     # t: (N, th, Wp, C)
        cols = [t[:, :, k:k + 2 * tw:2] for k in range(4)]        # 4 x (N, th, tw, C)
        for b, vb in enumerate(_bt_combine(*cols)):
            v[a, b] = vb
    return v.reshape(16, n * th * tw, c)                           # (16, tiles, C)


def inverse_transform(m: np.ndarray, n: int, th: int, tw: int) -> np.ndarray:
    """``Y = A^T M A``: ``(16, N*th*tw, F) -> (N, 2*th, 2*tw, F)``."""
    f = m.shape[-1]
    m = m.reshape(4, 4, n, th, tw, f)
    # A^T has rows (1, 1, 1, 0) and (0, 1, -1, -1): apply along a, then along b.
    s = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])                   # 2 x (4, N, th, tw, F)
    y = np.empty((n, th, 2, tw, 2, f), dtype=m.dtype)
    for p in range(2):
        y[:, :, p, :, 0] = s[p][0] + s[p][1] + s[p][2]
        y[:, :, p, :, 1] = s[p][1] - s[p][2] - s[p][3]
    return y.reshape(n, 2 * th, 2 * tw, f)


def conv2d_forward_winograd(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                            strides=(1, 1), padding: str = "same", u: np.ndarray | None = None):
    """Same contract as :func:`numvgg.ops.conv.conv2d_forward`, for 3x3 kernels
    with stride 1. ``u`` may pass a kernel already transformed by
    :func:`transform_kernel` (layers cache it between calls).

    Returns ``(out, ConvCache)``: the cache is im2col's, so the backward is shared.
    """
    if kernel.shape[:2] != (3, 3) or tuple(strides) != (1, 1):
        raise ValueError(f"Winograd F(2x2, 3x3) needs a 3x3 kernel and stride 1; got kernel "
                         f"{kernel.shape[:2]} and strides {tuple(strides)}. Use im2col.")
    n, h, w, c = x.shape
    f = kernel.shape[3]
    if kernel.shape[2] != c:
        raise ValueError(f"conv2d: input has {c} channels but the kernel expects {kernel.shape[2]}")
    pads = conv_pads(h, w, 3, 3, (1, 1), padding)
    oh, ow = conv_output_size(h, 3, 1, padding), conv_output_size(w, 3, 1, padding)
    th, tw = -(-oh // 2), -(-ow // 2)                              # 2x2 output tiles
    if u is None:
        u = transform_kernel(kernel)                               # (16, C, F)
    out = np.empty((n, oh, ow, f), dtype=np.result_type(x, kernel))
    top, _, left, _ = pads
    per_image = 16 * th * tw * max(c, f) * x.itemsize
    step = max(1, _CHUNK_BYTES // per_image)
    for start in range(0, n, step):
        xb = x[start:start + step]
        nb = xb.shape[0]
        # Pad to exactly 2*th + 2 rows and 2*tw + 2 columns of tiles.
        xp = np.zeros((nb, 2 * th + 2, 2 * tw + 2, c), dtype=x.dtype)
        hh, ww = min(h, 2 * th + 2 - top), min(w, 2 * tw + 2 - left)
        xp[:, top:top + hh, left:left + ww, :] = xb[:, :hh, :ww, :]
        v = transform_input(xp, th, tw)                            # (16, tiles, C)
        m = np.matmul(v, u)                                        # (16, tiles, F)
        y = inverse_transform(m, nb, th, tw)                       # (nb, 2*th, 2*tw, F)
        out[start:start + nb] = y[:, :oh, :ow, :]
    if bias is not None:
        out += bias
    return out, ConvCache(x, kernel, (1, 1), pads)
