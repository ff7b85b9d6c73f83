"""Image ops with forward and backward: resizing and affine warps (TensorFlow's semantics).

All arrays are NHWC float32. Each op is a pair, like the other ops:
``*_forward(...) -> (out, cache)`` and ``*_backward(dout, cache) -> dx``.
Every output pixel is a fixed weighted sum of input pixels (the weights
depend on the geometry only), so the backward pass sends ``dout`` back along
the same weights: ``dx = W^T dout``.

**Resizing** (``tf.image.resize``, no antialias): half-pixel centres, output
pixel ``i`` reads input coordinate ``(i + 0.5) * in / out - 0.5``, clamped at
the borders. Bilinear blends the two neighbours on each axis; nearest picks
``floor((i + 0.5) * in / out)``. The forward repeats TF's float32 order of
operations (blend columns, then rows), so it equals ``tf.image.resize`` bit
for bit; the backward is TF's ``ResizeBilinearGrad``. The HED application
reuses :func:`resize_bilinear_forward` / :func:`resize_bilinear_backward` to
upsample its side outputs.

**Affine warps** (``keras.ops.image.affine_transform``, TF's
``ImageProjectiveTransformV3``): a transform ``[a0, a1, a2, b0, b1, b2, c0, c1]``
maps each *output* pixel ``(x, y)`` (column, row; integer coordinates) to the
input point ``((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k)``,
``k = c0 x + c1 y + 1``. Points outside the image are mapped back in by the
fill mode, exactly as TF does:

* ``'reflect'``: ``d c b a | a b c d | d c b a`` (about the pixel edge);
* ``'wrap'``: ``a b c d | a b c d | a b c d``;
* ``'nearest'``: ``a a a a | a b c d | d d d d`` (clamped);
* ``'constant'``: not mapped; every neighbour outside reads ``fill_value``.

Then ``'nearest'`` interpolation rounds the point (halves away from zero)
and ``'bilinear'`` blends the four pixels around it. ``fill_value`` is a
constant, so it gets no gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("nearest", "bilinear")


# ---------------------------------------------------------------------------- resizing
def _bilinear_taps(in_size: int, out_size: int):
    """Input rows (or columns) each output blends, and the weight of the second.

    Returns ``lower, upper`` int ``(out_size,)`` and ``frac`` float32
    ``(out_size,)``: ``out[i] = in[lower] + (in[upper] - in[lower]) * frac``.
    Computed in float32 in TF's order, so rounding matches.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(src)
    # Coordinates left of the first centre (src < 0) or right of the last clamp to the edge.
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    return lower, upper, (src - floor).astype(np.float32)


def _interpolation_matrix(in_size: int, out_size: int, dtype) -> np.ndarray:
    """``(out_size, in_size)`` matrix ``M`` with ``out = M @ in`` along one axis (bilinear)."""
    lower, upper, frac = _bilinear_taps(in_size, out_size)
    m = np.zeros((out_size, in_size), dtype=dtype)
    rows = np.arange(out_size)
    np.add.at(m, (rows, lower), 1 - frac.astype(dtype))
    np.add.at(m, (rows, upper), frac.astype(dtype))  # lower == upper at clamped edges: adds to 1
    return m


class ResizeCache(NamedTuple):
    x_shape: tuple  # (N, H, W, C)
    size: tuple  # (OH, OW)


def resize_bilinear_forward(x: np.ndarray, size):
    """Bilinear resize, ``tf.image.resize(x, size)`` (half-pixel centres, no antialias).

    Args:
        x: ``(N, H, W, C)``, float32 or float64.
        size: ``(OH, OW)``; larger or smaller than ``(H, W)``.
    Returns:
        out ``(N, OH, OW, C)`` in ``x``'s float dtype, cache :class:`ResizeCache`.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    oh, ow = int(size[0]), int(size[1])
    top, bottom, fy = _bilinear_taps(x.shape[1], oh)
    left, right, fx = _bilinear_taps(x.shape[2], ow)
    fy = fy.astype(x.dtype)[None, :, None, None]  # (1, OH, 1, 1)
    fx = fx.astype(x.dtype)[None, None, :, None]  # (1, 1, OW, 1)
    rows_top, rows_bottom = x[:, top], x[:, bottom]  # (N, OH, W, C) each
    # TF blends horizontally first, then vertically: same order, same rounding.
    upper = rows_top[:, :, left] + (rows_top[:, :, right] - rows_top[:, :, left]) * fx  # (N, OH, OW, C)
    lower = (
        rows_bottom[:, :, left] + (rows_bottom[:, :, right] - rows_bottom[:, :, left]) * fx
    )  # (N, OH, OW, C)
    out = upper + (lower - upper) * fy  # (N, OH, OW, C)
    return out, ResizeCache(x.shape, (oh, ow))


def resize_bilinear_backward(dout: np.ndarray, cache: ResizeCache) -> np.ndarray:
    """``dL/dx`` of :func:`resize_bilinear_forward` (TF's ``ResizeBilinearGrad``).

    The forward is ``out = My @ x @ Mx^T`` per image and channel, with the
    interpolation matrices ``My (OH, H)`` and ``Mx (OW, W)``; so
    ``dx = My^T @ dout @ Mx``: every input pixel collects the gradient of the
    outputs that read it, with the same weights.
    """
    _, h, w, _ = cache.x_shape  # (N, H, W, C)
    dtype = dout.dtype if np.issubdtype(dout.dtype, np.floating) else np.float32
    my = _interpolation_matrix(h, cache.size[0], dtype)  # (OH, H)
    mx = _interpolation_matrix(w, cache.size[1], dtype)  # (OW, W)
    dx = np.einsum("oh,nopc->nhpc", my, dout, optimize=True)  # (N, H, OW, C)
    return np.einsum("pw,nhpc->nhwc", mx, dx, optimize=True)  # (N, H, W, C)


def _nearest_taps(in_size: int, out_size: int) -> np.ndarray:
    """Input index copied to each output index: ``floor((i + 0.5) * in / out)``, clamped."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor((np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale)
    return np.minimum(src.astype(np.int64), in_size - 1)


def resize_nearest_forward(x: np.ndarray, size):
    """Nearest-neighbour resize, ``tf.image.resize(x, size, 'nearest')``.

    Returns out ``(N, OH, OW, C)``, cache :class:`ResizeCache`.
    """
    x = np.asarray(x)
    oh, ow = int(size[0]), int(size[1])
    out = x[:, _nearest_taps(x.shape[1], oh)][:, :, _nearest_taps(x.shape[2], ow)]  # (N, OH, OW, C)
    return out, ResizeCache(x.shape, (oh, ow))


def resize_nearest_backward(dout: np.ndarray, cache: ResizeCache) -> np.ndarray:
    """``dL/dx`` of :func:`resize_nearest_forward`: each copied pixel sums its copies' gradients."""
    n, h, w, c = cache.x_shape
    rows = _nearest_taps(h, cache.size[0])
    cols = _nearest_taps(w, cache.size[1])
    dx_rows = np.zeros((n, h, cache.size[1], c), dtype=dout.dtype)  # (N, H, OW, C)
    np.add.at(dx_rows, (slice(None), rows), dout)  # type: ignore[arg-type]
    dx = np.zeros((n, h, w, c), dtype=dout.dtype)  # (N, H, W, C)
    np.add.at(dx, (slice(None), slice(None), cols), dx_rows)  # type: ignore[arg-type]
    return dx


def resize_forward(x, size, interpolation="bilinear"):
    """``tf.image.resize`` for ``'bilinear'`` or ``'nearest'``: ``(out, cache)``."""
    if interpolation == "bilinear":
        return resize_bilinear_forward(x, size)
    if interpolation == "nearest":
        return resize_nearest_forward(x, size)
    raise ValueError(
        f"Invalid value for argument `interpolation`. Expected one of "
        f"{INTERPOLATIONS}. Received: interpolation={interpolation!r}"
    )


def resize_backward(dout, cache, interpolation="bilinear"):
    """The backward of :func:`resize_forward` with the same ``interpolation``."""
    if interpolation == "bilinear":
        return resize_bilinear_backward(dout, cache)
    return resize_nearest_backward(dout, cache)


def center_crop_box(height: int, width: int, target_height: int, target_width: int):
    """``(top, left, crop_height, crop_width)``: the largest centred window with the
    target's aspect ratio (Keras' ``crop_to_aspect_ratio`` and ``smart_resize``)."""
    crop_h = max(min(height, int(np.float32(width * target_height) / np.float32(target_width))), 1)
    crop_w = max(min(width, int(np.float32(height * target_width) / np.float32(target_height))), 1)
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


# ---------------------------------------------------------------------------- affine warps
def _map_reflect(c: np.ndarray, n: int) -> np.ndarray:
    # TF's MapCoordinate<FILL_REFLECT>: fold by 2n, then mirror about the edge (-0.5 / n - 0.5).
    if n <= 1:
        return np.zeros_like(c)
    sz2 = np.float32(2 * n)
    out = c.copy()
    neg = c < 0
    cn = sz2 * np.trunc(-c[neg] / sz2) + c[neg]
    out[neg] = np.where(cn < -n, cn + sz2, -cn - 1)
    pos = c > n - 1
    cp = c[pos] - sz2 * np.trunc(c[pos] / sz2)
    out[pos] = np.where(cp >= n, sz2 - cp - 1, cp)
    return np.clip(out, 0, n - 1)


def _map_wrap(c: np.ndarray, n: int) -> np.ndarray:
    # TF's MapCoordinate<FILL_WRAP>.
    if n <= 1:
        return np.zeros_like(c)
    size = np.float32(n - 1)
    out = c.copy()
    neg = c < 0
    out[neg] = c[neg] + n * (np.trunc(-c[neg] / size) + 1)
    pos = c > n - 1
    out[pos] = c[pos] - n * np.trunc(c[pos] / size)
    return np.clip(out, 0, n - 1)


def _map_coordinates(c: np.ndarray, n: int, fill_mode: str) -> np.ndarray:
    if fill_mode == "reflect":
        return _map_reflect(c, n)
    if fill_mode == "wrap":
        return _map_wrap(c, n)
    if fill_mode == "nearest":
        return np.clip(c, 0, n - 1)
    return c  # 'constant': outside points read fill_value


class AffineCache(NamedTuple):
    """For each output pixel: the input pixels it read (up to four) and their weights."""

    x_shape: tuple  # (N, H, W, C)
    rows: np.ndarray  # (taps, N*H*W) int: row of the flattened (N*H*W + 1, C) input; the
    # extra last row holds fill_value (taps outside the image read it)
    weights: np.ndarray  # (taps, N*H*W): interpolation weights


def check_fill_and_interpolation(fill_mode: str, interpolation: str, name: str = "layer") -> None:
    """Clear errors for an unknown ``fill_mode`` / ``interpolation`` (naming the valid ones)."""
    if fill_mode not in FILL_MODES:
        raise ValueError(f"{name}: unknown `fill_mode` {fill_mode!r}. Expected one of {FILL_MODES}.")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"{name}: unknown `interpolation` {interpolation!r}. Expected one of {INTERPOLATIONS}."
        )


def affine_transform_forward(
    x: np.ndarray, transforms: np.ndarray, interpolation="bilinear", fill_mode="constant", fill_value=0.0
):
    """Warp each image by its transform, like ``keras.ops.image.affine_transform`` (TF).

    Args:
        x: ``(N, H, W, C)``.
        transforms: ``(N, 8)`` or ``(8,)`` rows ``[a0, a1, a2, b0, b1, b2, c0, c1]``
            mapping output pixels to input points (see the module docstring).
        interpolation: ``'bilinear'`` or ``'nearest'``.
        fill_mode: ``'reflect'``, ``'wrap'``, ``'constant'`` or ``'nearest'``.
        fill_value: the value outside the image with ``'constant'``.
    Returns:
        out ``(N, H, W, C)`` (same size), cache :class:`AffineCache`.
    """
    check_fill_and_interpolation(fill_mode, interpolation, "affine_transform")
    x = np.asarray(x)
    n, h, w, c = x.shape
    t = np.asarray(transforms, dtype=np.float32).reshape(-1, 8)
    if len(t) == 1 and n > 1:
        t = np.repeat(t, n, axis=0)
    if len(t) != n:
        raise ValueError(f"affine_transform: {len(t)} transforms for a batch of {n} images.")
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)  # output pixel coordinates
    xs, ys = xs.ravel()[None], ys.ravel()[None]  # (1, H*W)
    a0, a1, a2, b0, b1, b2, c0, c1 = (t[:, k : k + 1] for k in range(8))  # each (N, 1)
    # float32 throughout, as TF computes the input point.
    k = c0 * xs + c1 * ys + np.float32(1)
    in_x = _map_coordinates((a0 * xs + a1 * ys + a2) / k, w, fill_mode).ravel()  # (N*H*W,)
    in_y = _map_coordinates((b0 * xs + b1 * ys + b2) / k, h, fill_mode).ravel()  # (N*H*W,)
    image_start = np.repeat(np.arange(n, dtype=np.int64) * (h * w), h * w)  # (N*H*W,)
    sentinel = n * h * w  # the fill_value row

    def rows_of(r, col):
        inside = (r >= 0) & (r < h) & (col >= 0) & (col < w)
        return np.where(inside, image_start + r * w + col, sentinel)

    # One extra row of fill_value: every tap outside the image reads it (TF's read_with_fill_value).
    flat = np.concatenate([x.reshape(n * h * w, c), np.full((1, c), fill_value, x.dtype)])
    if interpolation == "nearest":
        # std::round: halves away from zero.
        col = (np.sign(in_x) * np.floor(np.abs(in_x) + np.float32(0.5))).astype(np.int64)
        row = (np.sign(in_y) * np.floor(np.abs(in_y) + np.float32(0.5))).astype(np.int64)
        rows = rows_of(row, col)[None]  # (1, N*H*W)
        weights = np.ones((1, n * h * w), dtype=x.dtype)
        out = np.take(flat, rows[0], axis=0)  # (N*H*W, C)
    else:
        x0, y0 = np.floor(in_x), np.floor(in_y)
        # TF's weights: (x_ceil - x) and (x - x_floor), x_ceil = x_floor + 1.
        wx1, wy1 = in_x - x0, in_y - y0
        wx0, wy0 = (x0 + np.float32(1)) - in_x, (y0 + np.float32(1)) - in_y
        x0i, y0i = x0.astype(np.int64), y0.astype(np.int64)
        rows = np.stack(
            [rows_of(y0i, x0i), rows_of(y0i, x0i + 1), rows_of(y0i + 1, x0i), rows_of(y0i + 1, x0i + 1)]
        )  # (4, N*H*W)
        g = [np.take(flat, r, axis=0) for r in rows]  # 4 x (N*H*W, C)
        wx0c, wx1c, wy0c, wy1c = (v.astype(x.dtype)[:, None] for v in (wx0, wx1, wy0, wy1))
        # TF's order: blend along x on the top and bottom rows, then along y.
        out = wy0c * (wx0c * g[0] + wx1c * g[1]) + wy1c * (wx0c * g[2] + wx1c * g[3])
        # In x's dtype, from the same factors as the blend, so backward is its exact transpose.
        weights = np.stack([wy0c * wx0c, wy0c * wx1c, wy1c * wx0c, wy1c * wx1c])[..., 0]  # (4, N*H*W)
    out = out.reshape(n, h, w, c).astype(x.dtype, copy=False)  # (N, H, W, C)
    return out, AffineCache(x.shape, rows, weights)


def affine_transform_backward(dout: np.ndarray, cache: AffineCache) -> np.ndarray:
    """``dL/dx`` of :func:`affine_transform_forward`: scatter ``dout`` to the input pixels it
    was read from, times the interpolation weights (the ``fill_value`` row is dropped:
    a constant gets no gradient)."""
    n, h, w, c = cache.x_shape
    g = dout.reshape(1, n * h * w, c)
    dx = np.zeros((n * h * w + 1, c), dtype=dout.dtype)
    for rows, weights in zip(cache.rows, cache.weights):  # one tap at a time
        # np.add.at adds repeated rows correctly; bincount per channel is much faster.
        contribution = g[0] * weights[:, None]  # (N*H*W, C)
        for ch in range(c):
            dx[:, ch] += np.bincount(rows, contribution[:, ch], minlength=n * h * w + 1)
    return dx[:-1].reshape(n, h, w, c)


# ---------------------------------------------------------------------------- Keras' matrices
def rotation_matrices(angles_deg: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(N, 8)`` transforms rotating about the image centre by ``angles_deg``
    (Keras' ``_compute_affine_matrix`` with no shear, scale 1; positive = counter-clockwise)."""
    angle = np.asarray(angles_deg, dtype=np.float32) * np.float32(np.pi / 180.0)
    cx, cy = np.float32(0.5) * np.float32(width - 1), np.float32(0.5) * np.float32(height - 1)
    cos, sin = np.cos(angle), np.sin(angle)
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = cx - cx * a0 - cy * a1
    b2 = cy - cx * b0 - cy * b1
    zeros = np.zeros_like(angle)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1).astype(np.float32)


def zoom_matrices(width_zoom: np.ndarray, height_zoom: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(N, 8)`` transforms zooming about the centre (Keras' ``RandomZoom._get_zoom_matrix``):
    a zoom ``z > 1`` reads a larger area (zooms out), ``z < 1`` zooms in."""
    zx = np.asarray(width_zoom, dtype=np.float32).reshape(-1)
    zy = np.asarray(height_zoom, dtype=np.float32).reshape(-1)
    x_offset = (np.float32(width) - np.float32(1)) / np.float32(2) * (np.float32(1) - zx)
    y_offset = (np.float32(height) - np.float32(1)) / np.float32(2) * (np.float32(1) - zy)
    zeros = np.zeros_like(zx)
    return np.stack([zx, zeros, x_offset, zeros, zy, y_offset, zeros, zeros], axis=1)


def translation_matrices(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``(N, 8)`` transforms shifting the image by ``(dx, dy)`` pixels (right, down)."""
    dx = np.asarray(dx, dtype=np.float32).reshape(-1)
    dy = np.asarray(dy, dtype=np.float32).reshape(-1)
    ones, zeros = np.ones_like(dx), np.zeros_like(dx)
    return np.stack([ones, zeros, -dx, zeros, ones, -dy, zeros, zeros], axis=1)
