"""Winograd's minimal filtering F(m x m, 3x3): a 3x3 convolution with fewer multiplications.

Two sizes are offered, chosen with ``numvgg.config.set_conv_algorithm``:
``'winograd2'`` = F(2x2, 3x3) and ``'winograd4'`` = F(4x4, 3x3) (``'winograd'``
is an alias of ``'winograd4'``). They apply to 3x3, stride-1 convolutions (all
13 of VGG16's), forward and input gradient.

Each ``m x m`` block of output pixels depends on an ``a x a`` input tile,
``a = m + 2``. Lavin & Gray (2015) show it equals

    Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A

for a 3x3 kernel ``g`` and an ``a x a`` tile ``d``: ``a*a`` multiplications per
output block and channel pair instead of ``9*m*m`` (F(2,3): 16 vs 36, 2.25x
fewer; F(4,3): 36 vs 144, 4x fewer). Summed over input channels, the
elementwise products become ``a*a`` independent matrix products
``V[ab] @ U[ab]`` of shape ``(tiles, C) @ (C, F)``, which BLAS does fast.

The matrices come from ``a - 1`` interpolation points plus the point at
infinity (:func:`winograd_matrices`, derived in docs/performance.md). For
F(4,3) numvgg uses ``0, ±1, 1/2, -2, ∞``: a point and its negative
reciprocal balance the large and small powers in the transforms, and float32
loses 2-3x less than with the textbook ``0, ±1, ±2, ∞`` or with
``0, ±1, ±1/2, ∞`` (measured by bench/conv_accuracy.py, published in
docs/performance.md).

Shapes: ``x (N, H, W, C)``, ``kernel (3, 3, C, F)``, output ``(N, H, W, F)``
(``'same'``) or ``(N, H-2, W-2, F)`` (``'valid'``). All three transforms are
matrix products over whole arrays of tiles (no Python loop over tiles). The
forward (:func:`conv2d_winograd`) runs on the thread pool in chunks small
enough for the CPU's cache, through the phases of :func:`_run_chunk`;
``bench/conv_paths.py --phases`` times each phase.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import numpy as np

from .parallel import PIECES, parallel_map, split

# A chunk holds at most this many bytes of transformed input (a*a x tiles x C)
# or products (a*a x tiles x F), so the transforms run in the CPU's cache...
_CHUNK_BYTES = 2**20
# ...unless that is fewer than this many tiles: the products need enough rows
# to run at BLAS speed (and to read U, up to 36 MB, only a few times).
_CHUNK_TILES = 256

# Interpolation points (the point at infinity is always added as the last one).
POINTS_F2 = (0, 1, -1)
POINTS_F4 = (0, 1, -1, Fraction(1, 2), -2)
# Kept for comparison (bench/conv_accuracy.py --points): Lavin & Gray's, and halves.
POINTS_F4_TEXTBOOK = (0, 1, -1, 2, -2)
POINTS_F4_HALVES = (0, 1, -1, Fraction(1, 2), Fraction(-1, 2))


def _solve_exact(rows: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction]:
    """Solve an overdetermined but consistent linear system exactly (Gaussian elimination)."""
    n = len(rows[0])
    aug = [list(r) + [b] for r, b in zip(rows, rhs)]
    pivot_row = 0
    for col in range(n):
        p = next(i for i in range(pivot_row, len(aug)) if aug[i][col] != 0)
        aug[pivot_row], aug[p] = aug[p], aug[pivot_row]
        aug[pivot_row] = [v / aug[pivot_row][col] for v in aug[pivot_row]]
        for i in range(len(aug)):
            if i != pivot_row and aug[i][col] != 0:
                factor = aug[i][col]
                aug[i] = [v - factor * pv for v, pv in zip(aug[i], aug[pivot_row])]
        pivot_row += 1
    if any(row[-1] != 0 for row in aug[n:]):
        raise ValueError("the Winograd identity has no solution for these points")
    return [aug[i][-1] for i in range(n)]


def winograd_matrices(m: int, points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A^T, G, B^T)`` of F(m, 3) for the finite ``points`` (``m + 1`` of them) plus infinity.

    * ``A^T`` (m x a) evaluates: column ``j`` is ``(1, p_j, p_j^2, ...)``; the
      point at infinity contributes only to the last output.
    * ``G`` (a x 3) evaluates the kernel polynomial at each point, divided by
      ``N_j = prod_{l != j} (p_j - p_l)`` (Lagrange's denominators); at
      infinity it takes the kernel's last tap.
    * ``B^T`` (a x a) is then the one matrix that makes
      ``Y = A^T [(G g) ⊙ (B^T d)]`` equal the correlation ``y_i = sum_k g_k d_{i+k}``
      for every ``g`` and ``d``; it is found by solving that identity exactly
      in rational arithmetic.
    """
    points = [Fraction(p) for p in points]
    a = m + 2
    if len(points) != a - 1 or len(set(points)) != len(points):
        raise ValueError(f"F({m}, 3) needs {a - 1} distinct finite points, got {points}")
    at = [[p**i for p in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    g = []
    for j, p in enumerate(points):
        denom = Fraction(1)
        for l, q in enumerate(points):
            if l != j:
                denom *= p - q
        g.append([p**k / denom for k in range(3)])
    g.append([Fraction(0), Fraction(0), Fraction(1)])
    # sum_j AT[i, j] G[j, k] BT[j, l] = [l == i + k] for all i, k: one system per column l.
    rows = [[at[i][j] * g[j][k] for j in range(a)] for i in range(m) for k in range(3)]
    bt_cols = [
        _solve_exact(rows, [Fraction(int(l == i + k)) for i in range(m) for k in range(3)]) for l in range(a)
    ]
    bt = [[bt_cols[l][j] for l in range(a)] for j in range(a)]
    # Each point's row of B^T may be scaled if its G row (or, at infinity, its
    # A^T column) is scaled back: make every B^T row start positive, which
    # gives Lavin & Gray's F(2, 3) matrices exactly.
    for j in range(a):
        if next(v for v in bt[j] if v != 0) < 0:
            bt[j] = [-v for v in bt[j]]
            if j < a - 1:
                g[j] = [-v for v in g[j]]
            else:
                for i in range(m):
                    at[i][j] = -at[i][j]
    as_array = lambda rows_: np.array([[float(v) for v in r] for r in rows_])
    return as_array(at), as_array(g), as_array(bt)


# m -> (A^T, G, B^T), float64. Every entry of A^T and B^T is a small dyadic
# fraction, exact in float32; G's entries (like 1/6) are rounded once, on the kernel.
MATRICES = {2: winograd_matrices(2, POINTS_F2), 4: winograd_matrices(4, POINTS_F4)}


def transform_kernel(kernel: np.ndarray, m: int = 2, matrices=None) -> np.ndarray:
    """``U = G g G^T`` for every (C, F) pair: ``(3, 3, C, F) -> (a*a, C, F)``.

    Row ``b*a + a_h`` holds position ``(a_h, b)`` of the ``a x a`` transform
    (``a_h`` down the rows, ``b`` across the columns), the order
    :func:`_rows_transform` produces ``V`` in. Both sides at once:
    ``U[(b, a_h)] = sum_{k,l} G[a_h, k] G[b, l] g[k, l]``, one product of an
    ``(a*a, 9)`` matrix with the kernel seen as ``(9, C*F)``.
    """
    _, g_mat, _ = matrices or MATRICES[m]
    a = g_mat.shape[0]
    c, f = kernel.shape[2:]
    both = np.einsum("bl,ak->bakl", g_mat, g_mat).reshape(a * a, 9)  # (a_b*a_h, k*l)
    u = both.astype(kernel.dtype) @ kernel.reshape(9, c * f)  # (a*a, C*F)
    return u.reshape(a * a, c, f)


def point_one_column(at: np.ndarray) -> int | None:
    """The column of ``A^T`` that is all ones (the point ``p = 1``), or ``None``.

    ``Y = A^T M A`` gives every output pixel ``sum_ij AT[.,i] AT[.,j] M[i,j]``;
    with ``AT[., p] = 1`` for every output, adding ``b`` to ``M[p, p]`` adds
    exactly ``b`` to each of the ``m x m`` pixels. So the bias costs one pass
    over ``1/a^2`` of the products instead of one over the whole output.
    """
    ones = [j for j in range(at.shape[1]) if np.all(at[:, j] == 1)]
    return ones[0] if ones else None


class _Chunk(NamedTuple):
    images: slice  # images of x
    rows: slice  # tile rows


def _chunks(images: slice, rows: slice, tw: int, max_tiles: int) -> list[_Chunk]:
    """Cut a piece (``images`` x tile ``rows``, ``tw`` tiles per row) into chunks
    of at most ``max_tiles`` tiles: whole images together when an image fits,
    else runs of tile rows of one image (at least one row)."""
    nrows = rows.stop - rows.start
    per_image = nrows * tw
    if per_image <= max_tiles:
        step = max(1, max_tiles // per_image)
        return [
            _Chunk(slice(i, min(i + step, images.stop)), rows) for i in range(images.start, images.stop, step)
        ]
    step = max(1, max_tiles // tw)
    return [
        _Chunk(slice(i, i + 1), slice(t, min(t + step, rows.stop)))
        for i in range(images.start, images.stop)
        for t in range(rows.start, rows.stop, step)
    ]


class _Workspace:
    """One worker's arrays for the chunks of a piece, allocated once and reused.

    Each chunk of ``nb`` images and ``T`` tile rows (``R = m*T + 2`` padded
    rows, ``TW`` tiles across, ``tiles = nb*T*TW``) flows through them in order:

    * ``xg`` ``(a_l, nb, R, TW, C)``: column ``m*s + l`` of the padded input
      under tile column ``s``, for each offset ``l`` (zero outside the image);
    * ``zc`` ``(a_b, nb, R, TW, C)``: ``B^T`` applied across each tile's columns;
    * ``v`` ``(a_b, a_h, nb, T, TW, C)``: then down its rows, ``V = B^T d B``;
      each of the ``a*a`` positions is a ``(tiles, C)`` matrix;
    * ``mp`` ``(a*a, tiles, F)``: the products ``V[ab] @ U[ab]``;
    * ``y1`` ``(a_b, m_i, tiles*F)`` then ``y2`` ``(m_j, m_i, tiles*F)``: ``A^T`` along each axis.

    Sized for the largest chunk; smaller ones use the front of each array.
    """

    def __init__(self, nb: int, t: int, tw: int, c: int, f: int, m: int, dtype):
        a = m + 2
        tiles = nb * t * tw
        self.xg = np.empty(a * nb * (m * t + 2) * tw * c, dtype)
        self.zc = np.empty(a * nb * (m * t + 2) * tw * c, dtype)
        self.v = np.empty(a * a * tiles * c, dtype)
        self.mp = np.empty(a * a * tiles * f, dtype)
        self.y1 = np.empty(a * m * tiles * f, dtype)
        self.y2 = np.empty(m * m * tiles * f, dtype)

    @staticmethod
    def view(buffer: np.ndarray, shape) -> np.ndarray:
        return buffer[: int(np.prod(shape))].reshape(shape)


def _gather_columns(ws: _Workspace, x: np.ndarray, chunk: _Chunk, m: int, top: int, left: int, tw: int):
    """``xg[l, n, r, s] = xp[n, r, m*s + l]``: for each column offset ``l`` of a
    tile, that column of every tile, over the chunk's padded rows
    ``m*t0 - top .. m*t1 + 1 - top``; read straight from ``x``, zero where the
    padding is (so no padded copy of the input is ever made)."""
    a = m + 2
    _, h, w, c = x.shape
    nb = chunk.images.stop - chunk.images.start
    rows = m * (chunk.rows.stop - chunk.rows.start) + 2
    xg = ws.view(ws.xg, (a, nb, rows, tw, c))
    row0 = m * chunk.rows.start - top
    lo, hi = max(row0, 0), min(row0 + rows, h)
    hi = max(hi, lo)
    for l in range(a):
        # Tile column s reads input column m*s + l - left: inside the image for s_lo <= s < s_hi.
        s_lo = min(tw, max(0, -(-(left - l) // m)))
        s_hi = max(s_lo, min(tw, (w - 1 - l + left) // m + 1))
        g = xg[l]
        g[:, : lo - row0] = 0
        g[:, hi - row0 :] = 0
        g[:, :, :s_lo] = 0
        g[:, :, s_hi:] = 0
        if s_hi > s_lo and hi > lo:
            col0 = m * s_lo + l - left
            np.copyto(
                g[:, lo - row0 : hi - row0, s_lo:s_hi],
                x[chunk.images, lo:hi, col0 : col0 + m * (s_hi - s_lo - 1) + 1 : m],
            )
    return xg


def _columns_transform(ws: _Workspace, xg: np.ndarray, bt: np.ndarray) -> np.ndarray:
    """``B^T`` across every tile's columns: one product ``(a x a) @ (a x everything else)``
    on :func:`_gather_columns`' array, ``(a_b, nb, R, TW, C)``."""
    zc = ws.view(ws.zc, xg.shape)
    np.matmul(bt, xg.reshape(xg.shape[0], -1), out=zc.reshape(xg.shape[0], -1))
    return zc


def _rows_transform(ws: _Workspace, zc: np.ndarray, bt: np.ndarray, m: int) -> np.ndarray:
    """``B^T`` down every tile's rows: ``V = B^T d B``, ``(a*a, tiles, C)``, row
    ``b*a + a_h`` (the order :func:`transform_kernel` uses).

    Tile row ``t`` reads rows ``m*t .. m*t + a - 1`` of ``zc``, which are
    contiguous, so a strided view shows every tile row as one ``(a, TW*C)``
    matrix, and one batched product transforms them all. Its output goes
    straight into ``V``'s layout (``a_h`` moved in front of the tiles), so
    each ``V[ab]`` is one contiguous ``(tiles, C)`` matrix.
    """
    a = m + 2
    _, nb, rows, tw, c = zc.shape
    t = (rows - 2) // m
    sb, sn, sr, _, _ = zc.strides
    tile_rows = np.lib.stride_tricks.as_strided(
        zc, (a, nb, t, a, tw * c), (sb, sn, m * sr, sr, zc.itemsize), writeable=False
    )  # (a_b, nb, T, a_k, TW*C), a view
    v = ws.view(ws.v, (a, a, nb, t, tw * c))  # (a_b, a_h, nb, T, TW*C)
    np.matmul(bt, tile_rows, out=v.transpose(0, 2, 3, 1, 4))
    return v.reshape(a * a, nb * t * tw, c)


def _products(ws: _Workspace, v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The ``a*a`` matrix products ``M[ab] = V[ab] @ U[ab]``: ``(a*a, tiles, F)``."""
    mp = ws.view(ws.mp, (v.shape[0], v.shape[1], u.shape[2]))
    np.matmul(v, u, out=mp)
    return mp


def _output_transform(ws: _Workspace, mp: np.ndarray, at: np.ndarray, m: int) -> np.ndarray:
    """``Y = A^T M A`` for every tile: ``(m_j, m_i, tiles*F)``; pixel ``(m*t + i, m*s + j)``."""
    a = m + 2
    y1 = ws.view(ws.y1, (a, m, mp[0].size))
    np.matmul(at, mp.reshape(a, a, -1), out=y1)  # A^T along a_h
    y2 = ws.view(ws.y2, (m, m * mp[0].size))
    np.matmul(at, y1.reshape(a, -1), out=y2)  # A^T along a_b
    return y2


def _scatter(y: np.ndarray, dst: np.ndarray, m: int) -> None:
    """Write ``y (m_j, m_i, nb, T, TW, F)`` into ``dst (nb, R, OW', F)``: output pixel
    ``(m*t + i, m*s + j)`` of the chunk; tiles past the output's edge are dropped.
    One strided copy per in-tile position, each of whole ``F``-long runs."""
    for i in range(m):
        for j in range(m):
            part = dst[:, i::m, j::m]
            np.copyto(part, y[j, i, :, : part.shape[1], : part.shape[2]])


class _Plan(NamedTuple):
    """What every chunk of one call shares: the geometry and the float matrices."""

    m: int
    top: int
    left: int
    oh: int
    ow: int
    th: int  # tile rows
    tw: int  # tiles across
    at: np.ndarray  # A^T in the compute dtype
    bt: np.ndarray  # B^T in the compute dtype
    slot: int | None  # M's row where the bias goes (point_one_column)
    max_tiles: int  # per chunk


def _plan(x_shape, u_shape, pads, out_hw, m: int, matrices, dtype) -> _Plan:
    _, _, _, c = x_shape
    f = u_shape[-1]
    oh, ow = out_hw
    at, _, bt = matrices or MATRICES[m]
    at, bt = at.astype(dtype), bt.astype(dtype)
    a = m + 2
    max_tiles = max(_CHUNK_TILES, _CHUNK_BYTES // (a * a * max(c, f) * np.dtype(dtype).itemsize))
    return _Plan(
        m, pads[0], pads[2], oh, ow, -(-oh // m), -(-ow // m), at, bt, point_one_column(at), max_tiles
    )


def _pieces(n: int, th: int) -> list[tuple[slice, slice]]:
    """The work of one call as ``(images, tile rows)`` pieces for the thread pool:
    :data:`numvgg.ops.parallel.PIECES` groups of images, or for fewer images
    than that, each image cut into as many runs of tile rows."""

    if n >= PIECES:
        return [(images, slice(0, th)) for images in split(n, PIECES)]
    return [(slice(i, i + 1), rows) for i in range(n) for rows in split(th, PIECES)]


def _run_chunk(ws, plan: _Plan, x, u, bias, relu: bool, out, chunk: _Chunk, clock=None) -> None:
    """One chunk through every phase, its output written into ``out``.
    ``clock(phase)``, if given, is called after each phase (bench/conv_paths.py --phases)."""
    tick = clock or (lambda phase: None)
    m, a = plan.m, plan.m + 2
    xg = _gather_columns(ws, x, chunk, m, plan.top, plan.left, plan.tw)
    tick("gather")
    zc = _columns_transform(ws, xg, plan.bt)
    tick("B^T columns")
    v = _rows_transform(ws, zc, plan.bt, m)
    tick("B^T rows")
    mp = _products(ws, v, u)
    tick("products")
    if bias is not None and plan.slot is not None:  # conv2d_winograd checked it is not None
        mp[plan.slot * a + plan.slot] += bias
        tick("bias")
    y = _output_transform(ws, mp, plan.at, m)
    tick("A^T")
    if relu:  # on the contiguous result: NumPy's fast loop, while it is in cache
        np.maximum(y, 0, out=y)
        tick("ReLU")
    nb, t = chunk.images.stop - chunk.images.start, chunk.rows.stop - chunk.rows.start
    r0, r1 = m * chunk.rows.start, min(plan.oh, m * chunk.rows.stop)
    _scatter(y.reshape(m, m, nb, t, plan.tw, u.shape[-1]), out[chunk.images, r0:r1], m)
    tick("scatter")


def _piece_chunks(plan: _Plan, piece) -> tuple[list[_Chunk], int, int]:
    """The chunks of one piece, and the largest chunk's images and tile rows."""
    images, rows = piece
    chunks = _chunks(images, rows, plan.tw, plan.max_tiles)
    nb = max(ch.images.stop - ch.images.start for ch in chunks)
    t = max(ch.rows.stop - ch.rows.start for ch in chunks)
    return chunks, nb, t


def conv2d_winograd(
    x: np.ndarray,
    u: np.ndarray,
    pads,
    out_hw,
    m: int,
    matrices=None,
    bias: np.ndarray | None = None,
    relu: bool = False,
) -> np.ndarray:
    """Stride-1 3x3 correlation of ``x`` with a transformed kernel ``u``, explicit padding.

    The output's tiles are cut into pieces (:func:`_pieces`) that run on the
    thread pool. Each worker takes its piece through the phases of
    :func:`_run_chunk` (gathering each tile's columns, ``B^T`` across the
    columns and down the rows, the ``a*a`` products, bias, ``A^T``, ReLU,
    scatter into the output) in chunks of at most ``_CHUNK_TILES`` tiles (or ``_CHUNK_BYTES``
    of transformed input, if that is more tiles), reusing one
    :class:`_Workspace`: small chunks keep the transforms in the CPU's cache,
    and the products still see enough tiles to run at BLAS speed. Pieces and
    chunks never depend on the number of threads, so neither do the results.

    Args:
        x: ``(N, H, W, C)``; u: ``(a*a, C, F)`` from :func:`transform_kernel`.
        pads: ``(top, bottom, left, right)``, each in 0..2; out_hw: ``(OH, OW)``.
        bias: ``(F,)`` or ``None``, added to the products (:func:`point_one_column`).
        relu: return ``max(y, 0)`` (the layer's ReLU, applied while each chunk is in cache).
    Returns:
        ``(N, OH, OW, F)``.
    """

    n, _, _, c = x.shape
    f = u.shape[-1]
    dtype = np.result_type(x, u)
    out = np.empty((n, *out_hw, f), dtype=dtype)
    if out.size == 0:
        return out
    plan = _plan(x.shape, u.shape, pads, out_hw, m, matrices, dtype)
    if bias is not None and plan.slot is None:
        raise ValueError("conv2d_winograd: these interpolation points have no point 1 to add the bias at")

    def run(piece):
        chunks, nb, t = _piece_chunks(plan, piece)
        ws = _Workspace(nb, t, plan.tw, c, f, m, dtype)
        for chunk in chunks:
            _run_chunk(ws, plan, x, u, bias, relu, out, chunk)

    parallel_map(run, _pieces(n, plan.th))
    return out


class KernelTransforms:
    """A layer's transformed kernels ``U = G g G^T``, kept between calls.

    At inference the kernel does not change, so transforming it again on
    every call (a 512x512 kernel: 36 x 512 x 512 values) would be wasted.
    :meth:`get` compares the kernel with the copy it transformed (one pass
    over the kernel) and transforms again only when it changed, for example
    after an optimizer step, which updates the kernel in place.
    """

    def __init__(self):
        self._entries = {}

    def get(self, kernel: np.ndarray, m: int, flipped: bool = False) -> np.ndarray:
        """``U`` of ``kernel`` (``flipped``: of the kernel flipped in H and W with C
        and F swapped, the one the input gradient uses)."""
        key = (m, flipped)
        entry = self._entries.get(key)
        if (
            entry is not None
            and entry[2] is MATRICES[m]
            and entry[0].shape == kernel.shape
            and entry[0].dtype == kernel.dtype
            and np.array_equal(entry[0], kernel)
        ):
            return entry[1]
        source = kernel[::-1, ::-1].transpose(0, 1, 3, 2) if flipped else kernel
        u = transform_kernel(np.ascontiguousarray(source), m)
        self._entries[key] = (kernel.copy(), u, MATRICES[m])
        return u
