"""The kernel gradient of a 3x3 stride-1 convolution through Winograd F(m x m, 3x3).

The forward (:mod:`numvgg.ops.winograd`) computes each ``m x m`` output block as

    Y = A^T [ U ⊙ V ] A,   U = G g G^T,   V = B^T d B

summed over the input channels. Read backwards, with ``dY`` the block's
upstream gradient:

* ``Y`` is linear in ``M = U ⊙ V`` through ``A^T . A``, so its gradient goes
  back through the transposed maps: ``dM = A dY A^T`` (``a x a`` from ``m x m``);
* ``M = U ⊙ V`` elementwise, so ``dU = dM ⊙ V``, summed over every tile;
  with channels, position ``(a_h, b)`` of the ``a x a`` transform is one
  matrix product ``dU[ab] = V[ab]^T @ dM[ab]``, ``(C, tiles) @ (tiles, F)``;
* ``U = G g G^T``, so ``dg = G^T dU G``: once per layer, not per tile.

That is ``a*a`` products for ``m*m`` output pixels instead of the direct
``9*m*m`` (F(4,3): 36 instead of 144, 4x fewer; F(2,3): 16 instead of 36).

The bias gradient (the sum of ``dY``) comes for free. ``A`` has one row of
ones, the one of the interpolation point 1 (``A[j, i] = p_j ** i``); so the
transform's entry at ``(1, 1)`` is the plain sum of the tile's ``m x m``
gradients, and summing that entry over the tiles gives ``db``.

Shapes: ``x (N, H, W, C)`` the forward's input, ``dout (N, OH, OW, F)``,
results ``(3, 3, C, F)`` and ``(F,)``. The tiles are cut into
:data:`numvgg.ops.parallel.PIECES` pieces (groups of images, or tile rows of
one image) that run on the thread pool, each in chunks of tile rows of about
``_CHUNK_BYTES``; each piece keeps its own ``dU`` and the pieces are added in
order, so the result does not depend on the number of threads. Memory: one
``dU`` per piece (``a*a*C*F`` values, 38 MB for a 512x512 layer with F(4x4, 3x3))
plus the chunks in flight, whatever the batch or the image size.
"""

from __future__ import annotations

import numpy as np

from .parallel import PIECES, parallel_map, split
from .winograd import point_one_column

# Each chunk's transformed input (a*a x tiles x C) or gradient (a*a x tiles x F)
# stays near this, so that the transforms' passes over it stay in cache; but a
# chunk has at least _MIN_TILES tiles.
_CHUNK_BYTES = 2 * 2**20
_MIN_TILES = 256


def input_transform(xp: np.ndarray, m: int, bt: np.ndarray) -> np.ndarray:
    """``V = B^T d B`` for every tile of a padded chunk, as in the forward.

    Args:
        xp: ``(N, m*TH + 2, m*TW + 2, C)``; bt: ``B^T``, ``(a, a)``.
    Returns:
        ``(a*a, N*TH*TW, C)``; row ``b*a + a_h`` is position ``(a_h, b)``.
    """
    a = m + 2
    n, hp, wp, c = xp.shape
    th, tw = (hp - 2) // m, (wp - 2) // m
    # Tile row t covers padded rows m*t .. m*t + a - 1: one strided view holds them all.
    s0, s1, _, s3 = xp.strides
    rows = np.lib.stride_tricks.as_strided(
        xp, shape=(n, th, a, wp * c), strides=(s0, m * s1, s1, s3), writeable=False
    )  # (N, TH, a, Wp*C), a view
    z = np.matmul(bt, rows).reshape(n, th, a, wp, c)  # (N, TH, a_h, Wp, C)
    zg = np.empty((a, a, n, th, tw, c), dtype=xp.dtype)  # (l, a_h, N, TH, TW, C)
    for l in range(a):
        zg[l] = z[:, :, :, l : l + m * (tw - 1) + 1 : m, :].transpose(2, 0, 1, 3, 4)
    return np.matmul(bt, zg.reshape(a, -1)).reshape(a * a, n * th * tw, c)  # (a_b*a_h, tiles, C)


def gradient_transform(dy: np.ndarray, m: int, at: np.ndarray) -> np.ndarray:
    """``dM = A dY A^T`` for every ``m x m`` tile of ``dy``.

    Args:
        dy: ``(N, m*TH, m*TW, F)``, a whole number of tiles (tiles do not overlap);
            at: ``A^T``, ``(m, a)``.
    Returns:
        ``(a*a, N*TH*TW, F)``, in the order of :func:`input_transform`.
    """
    a = m + 2
    n, hh, ww, f = dy.shape
    th, tw = hh // m, ww // m
    a_mat = np.ascontiguousarray(at.T)  # (a, m)
    # Down the rows: tile row t is rows m*t .. m*t + m - 1, contiguous.
    z = np.matmul(a_mat, dy.reshape(n, th, m, tw * m * f))  # (N, TH, a_h, TW*m*F)
    z = z.reshape(n, th, a, tw, m, f)
    zg = np.empty((m, a, n, th, tw, f), dtype=dy.dtype)  # (j, a_h, N, TH, TW, F)
    for j in range(m):
        zg[j] = z[:, :, :, :, j, :].transpose(2, 0, 1, 3, 4)
    return np.matmul(a_mat, zg.reshape(m, -1)).reshape(a * a, n * th * tw, f)  # (a_b*a_h, tiles, F)


def _zero_padded_block(x: np.ndarray, row0: int, row1: int, width: int, left: int) -> np.ndarray:
    """Rows ``row0 .. row1-1`` and columns ``-left .. width-left-1`` of
    ``x (N, H, W, C)``, zero outside the image: ``(N, row1-row0, width, C)``."""
    n, h, w, c = x.shape
    block = np.zeros((n, row1 - row0, width, c), dtype=x.dtype)
    r_lo, r_hi = max(row0, 0), min(row1, h)
    cols = min(w, width - left)
    if r_hi > r_lo and cols > 0:
        block[:, r_lo - row0 : r_hi - row0, left : left + cols] = x[:, r_lo:r_hi, :cols]
    return block


def _chunks(images: slice, rows: slice, th: int, tw: int, tiles: int):
    """Cut a piece (``images`` x tile ``rows``) into chunks of about ``tiles``
    tiles: ``(image slice, first tile row, end tile row)``. Whole images
    when one image has fewer tiles, else tile rows of one image at a time."""
    rows_per_image = rows.stop - rows.start
    per_image = rows_per_image * tw
    if per_image <= tiles:
        step = tiles // per_image
        for i in range(images.start, images.stop, step):
            yield slice(i, min(i + step, images.stop)), rows.start, rows.stop
        return
    step = max(1, tiles // tw)
    for i in range(images.start, images.stop):
        for t0 in range(rows.start, rows.stop, step):
            yield slice(i, i + 1), t0, min(t0 + step, rows.stop)


def kernel_grad_winograd(x: np.ndarray, dout: np.ndarray, pads, matrices):
    """``dkernel`` and ``dbias`` of a 3x3 stride-1 convolution, by Winograd F(m x m, 3x3).

    Args:
        x: ``(N, H, W, C)``, the forward's input; dout: ``(N, OH, OW, F)``.
        pads: the forward's ``(top, bottom, left, right)``, each in 0..2.
        matrices: ``(A^T, G, B^T)`` of F(m, 3), ``numvgg.ops.winograd.MATRICES[m]``
            (or :func:`~numvgg.ops.winograd.winograd_matrices` for other points).
    Returns:
        ``(dkernel (3, 3, C, F), dbias (F,))``.
    """
    at, g_mat, bt = matrices
    m = at.shape[0]
    dtype = np.result_type(x, dout)
    at_t, bt_t = at.astype(dtype), bt.astype(dtype)
    a = m + 2
    n, _, _, c = x.shape
    _, oh, ow, f = dout.shape
    top, _, left, _ = pads
    th, tw = -(-oh // m), -(-ow // m)  # tiles, the last maybe partial
    wp = m * tw + 2
    whole = oh % m == 0 and ow % m == 0  # then dout's tile rows are plain views
    one = point_one_column(at)  # the point 1: its transformed entry is each tile's plain sum
    # Chunks of about _CHUNK_BYTES keep the transforms' passes in cache; at
    # least _MIN_TILES tiles keep each product big enough for BLAS and the
    # additions into dU (a*a*C*F each) rare.
    tiles_per_chunk = max(_MIN_TILES, _CHUNK_BYTES // (a * a * max(c, f) * dtype.itemsize))
    if n >= PIECES:
        pieces = [(images, slice(0, th)) for images in split(n, PIECES)]
    else:
        pieces = [(slice(i, i + 1), rows) for i in range(n) for rows in split(th, PIECES)]

    def run(piece):
        """This piece's ``dU (a*a, C, F)`` and ``db (F,)``."""
        du = tmp = None
        db = np.zeros(f, dtype=dtype)
        for images, t0, t1 in _chunks(*piece, th, tw, tiles_per_chunk):
            xb, dyb = x[images], dout[images]
            xp = _zero_padded_block(xb, m * t0 - top, m * t1 + 2 - top, wp, left)  # (nb, m*T+2, Wp, C)
            if whole:
                dy = dyb[:, m * t0 : m * t1]  # (nb, m*T, OW, F), a view
            else:
                dy = _zero_padded_block(dyb, m * t0, m * t1, m * tw, 0)  # zeros past the edge
            v = input_transform(xp, m, bt_t)  # (a*a, tiles, C)
            dm = gradient_transform(dy, m, at_t)  # (a*a, tiles, F)
            if du is None:  # the first chunk writes dU: no zeros, no scratch for one-chunk pieces
                du = np.matmul(v.transpose(0, 2, 1), dm)  # (a*a, C, F)
            else:
                tmp = np.matmul(v.transpose(0, 2, 1), dm, out=tmp)
                du += tmp
            if one is not None:
                db += dm[one * a + one].sum(axis=0)  # each tile's plain sum
            else:
                db += dy.sum(axis=(0, 1, 2))
        return du, db

    partials = parallel_map(run, pieces)
    du, db = partials[0]
    for du_p, db_p in partials[1:]:
        du += du_p
        db += db_p
    # dg = G^T dU G for every (C, F): the transposed map of transform_kernel's.
    both = np.einsum("bl,ak->bakl", g_mat, g_mat).reshape(a * a, 9)  # (a_b*a_h, k*l)
    dkernel = (both.T.astype(dtype) @ du.reshape(a * a, c * f)).reshape(3, 3, c, f)
    return dkernel, db
