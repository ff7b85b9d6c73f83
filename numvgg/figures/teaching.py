"""Diagrams for the lessons, drawn from numvgg's own ops so they cannot disagree with the code.

* :func:`plot_im2col` -- the conv2d lesson: each kernel-sized patch of the input
  becomes one row of a matrix, so a convolution is one matrix product.
* :func:`plot_maxpool_backward` -- the pooling lesson: the winner of each
  window takes the whole gradient, the others get zero.
* :func:`plot_receptive_field` -- the architecture lesson: how many input
  pixels one unit of each VGG16 layer sees (:func:`receptive_fields`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import style

_NO_WEIGHTS = "none"  # footer: these drawings use no trained weights


def _number_grid(
    ax, values, x0: float = 0.0, y0: float = 0.0, fills=None, fmt="{:g}", fontsize: int = 16, edge="#333333"
):
    """Draw ``values`` (2-D) as a table of boxed numbers, top-left cell at ``(x0, y0)``,
    one unit per cell, y growing downwards. ``fills[(r, c)]`` colours a cell."""
    from matplotlib.patches import Rectangle

    fills = fills or {}
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            ax.add_patch(
                Rectangle(
                    (x0 + c, y0 + r),
                    1,
                    1,
                    facecolor=fills.get((r, c), "white"),
                    edgecolor=edge,
                    linewidth=1.2,
                )
            )
            ax.text(
                x0 + c + 0.5,
                y0 + r + 0.5,
                fmt.format(values[r, c]),
                ha="center",
                va="center",
                fontsize=fontsize,
            )


def _outline(ax, x0, y0, w, h, color, linewidth=4.0, inset=0.0):
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle(
            (x0 + inset, y0 + inset),
            w - 2 * inset,
            h - 2 * inset,
            fill=False,
            edgecolor=color,
            linewidth=linewidth,
            zorder=5,
        )
    )


def _canvas(ax, width, height):
    """Fix the drawing's extent in data units; call after drawing. Texts are left out
    of the layout so that a long caption does not shrink the drawing."""
    for text in ax.texts:
        text.set_in_layout(False)
    ax.set_xlim(-0.5, width + 0.5)
    ax.set_ylim(height + 0.5, -1.5)  # y down, like an array
    ax.set_aspect("equal")
    ax.set_axis_off()


def _arrow(ax, start, end, text="", color="#333333"):
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops=dict(arrowstyle="-|>", color=color, linewidth=2.5, mutation_scale=22),
    )
    if text:
        ax.text(
            (start[0] + end[0]) / 2,
            (start[1] + end[1]) / 2 - 0.35,
            text,
            ha="center",
            va="bottom",
            fontsize=14,
            color=color,
        )


def _light(color, amount=0.35):
    """``color`` mixed with white, for cell backgrounds."""
    from matplotlib.colors import to_rgb

    return tuple(1 - amount * (1 - v) for v in to_rgb(color))


# -- im2col -----------------------------------------------------------------------------------
@style.slide_style
def plot_im2col(path: str, size: int = 4, k: int = 3, highlight: int = 1) -> str:
    """One patch -> one row: the ``k x k`` patches of a ``size x size`` one-channel input
    (no padding, stride 1), copied by :func:`numvgg.ops.conv.im2col` into the rows of
    ``cols``; patch ``highlight`` (row-major) is outlined in both. Returns ``path``."""
    from ..ops.conv import im2col

    if not 1 <= k <= size <= 6:
        raise ValueError(
            f"plot_im2col draws small examples: need 1 <= k <= size <= 6, got size={size}, k={k}"
        )
    x = np.arange(1, size * size + 1, dtype=np.float64).reshape(size, size)
    cols = im2col(x[None, :, :, None], k, k)  # (OH*OW, K*K), C=1
    oh = size - k + 1
    if not 0 <= highlight < cols.shape[0]:
        raise ValueError(f"highlight must be in 0..{cols.shape[0] - 1}, got {highlight}")
    hr, hc = divmod(highlight, oh)
    color = style.HIGHLIGHTS[0]

    fig, axes = style.new_slide()
    ax = axes[0][0]
    x_fill = {(hr + i, hc + j): _light(color) for i in range(k) for j in range(k)}
    _number_grid(ax, x, 0, 0, fills=x_fill)
    _outline(ax, hc, hr, k, k, color)
    ax.text(size / 2, -0.6, f"input x: {size}x{size}, 1 channel", ha="center", fontsize=16)

    left = size + 3.0
    row_fill = {(highlight, j): _light(color) for j in range(k * k)}
    _number_grid(ax, cols, left, 0, fills=row_fill)
    _outline(ax, left, highlight, k * k, 1, color)
    ax.text(
        left + k * k / 2,
        -0.6,
        f"cols = im2col(x): {cols.shape[0]} patches x {k * k} values",
        ha="center",
        fontsize=16,
    )
    for r in range(cols.shape[0]):
        i, j = divmod(r, oh)
        ax.text(
            left + k * k + 0.3,
            r + 0.5,
            f"patch at ({i}, {j})",
            va="center",
            fontsize=14,
            color=color if r == highlight else "#444444",
        )
    _arrow(ax, (hc + k + 0.1, hr + k / 2), (left - 0.2, highlight + 0.5), "one row", color)
    below = max(size, cols.shape[0]) + 1.2
    ax.text(
        0,
        below,
        f"Each {k}x{k} patch is read row by row into one row of cols.\n"
        f"Then the whole convolution is one matrix product:\n"
        f"    out = cols @ kernel.reshape({k}*{k}*C, F)   -> ({cols.shape[0]}, F) -> ({oh}, {oh}, F)\n"
        f"Backward: dcols = dout @ kernel.T; col2im adds each row back onto its patch.",
        fontsize=16,
        va="top",
        linespacing=1.5,
    )
    _canvas(ax, left + k * k + 3.5, below + 3.5)
    fig.suptitle("im2col: one patch becomes one row")
    style.footer(fig, _NO_WEIGHTS, note="numbers from numvgg.ops.conv.im2col")
    return style.save(fig, path)


# -- max-pool backward -------------------------------------------------------------------------
# A 4x4 input whose bottom-right window holds a tie (two 7s), to show the tie rule.
_POOL_X = np.array([[1.0, 3.0, 2.0, 0.0], [4.0, 2.0, 8.0, 5.0], [6.0, 1.0, 7.0, 3.0], [0.0, 5.0, 7.0, 2.0]])
_POOL_DOUT = np.array([[0.1, -0.2], [0.3, 0.5]])


@style.slide_style
def plot_maxpool_backward(path: str) -> str:
    """Winner takes the gradient: a 2x2 max-pool forward (top) and backward (bottom),
    computed by :func:`numvgg.ops.pooling.maxpool2d_forward` / ``_backward``. The
    window with a tie shows numvgg's (and TensorFlow's) rule: the first maximum in
    row-major order gets all of it. Returns ``path``."""
    from ..ops.pooling import maxpool2d_backward, maxpool2d_forward

    x = _POOL_X[None, :, :, None]
    out, cache = maxpool2d_forward(x, (2, 2))
    dx = maxpool2d_backward(_POOL_DOUT[None, :, :, None], cache)[0, :, :, 0]
    out = out[0, :, :, 0]
    winners = {}
    for r in range(2):
        for c in range(2):
            i, j = divmod(int(cache.argmax[0, r, c, 0]), 2)
            winners[(2 * r + i, 2 * c + j)] = style.HIGHLIGHTS[2 * r + c]
    window_colors = {(r, c): style.HIGHLIGHTS[2 * r + c] for r in range(2) for c in range(2)}

    fig, axes = style.new_slide()
    ax = axes[0][0]

    def windows(x0, y0):
        for (r, c), color in window_colors.items():
            _outline(ax, x0 + 2 * c, y0 + 2 * r, 2, 2, color, linewidth=3.5, inset=0.06)

    # Forward, top row: x -> out.
    _number_grid(ax, _POOL_X, 0, 0, fills={p: _light(c) for p, c in winners.items()})
    windows(0, 0)
    ax.text(2, -0.6, "x (forward input)", ha="center", fontsize=16)
    _number_grid(ax, out, 7, 1, fills={p: _light(c) for p, c in window_colors.items()})
    ax.text(8, 0.4, "out = max of each window", ha="center", fontsize=16)
    _arrow(ax, (4.3, 2), (6.7, 2), "max", "#333333")
    # Backward, bottom row: dout -> dx.
    top = 6.5
    _number_grid(ax, _POOL_DOUT, 7, top + 1, fills={p: _light(c) for p, c in window_colors.items()})
    ax.text(8, top + 0.4, "dout (from above)", ha="center", fontsize=16)
    dx_fill = {
        p: (_light(c) if p in winners else "#eeeeee")
        for p, c in ((p, winners.get(p, "#999999")) for p in np.ndindex(4, 4))
    }
    _number_grid(ax, dx, 0, top, fills=dx_fill)
    windows(0, top)
    ax.text(2, top - 0.6, "dx = dL/dx", ha="center", fontsize=16)
    _arrow(ax, (6.7, top + 2), (4.3, top + 2), "route back", "#333333")
    ax.text(
        10.8,
        1.0,
        "Forward remembers where each\nwindow's maximum was (argmax).\n\n"
        "Backward sends each dout value\nto that one input; the other three\n"
        "inputs of the window get 0:\nthey did not change the output.",
        fontsize=15,
        va="top",
    )
    ax.text(
        10.8,
        top + 0.6,
        "Tie (the two 7s, bottom right):\nthe FIRST maximum in row-major\n"
        "order takes all the gradient --\nnumvgg's rule, and TensorFlow's.",
        fontsize=15,
        va="top",
        color=style.HIGHLIGHTS[3],
    )
    _canvas(ax, 16.5, top + 4)
    fig.suptitle("Max-pool backward: the winner takes the gradient")
    style.footer(fig, _NO_WEIGHTS, note="numbers from numvgg.ops.pooling, 2x2 window, stride 2")
    return style.save(fig, path)


# -- receptive field ---------------------------------------------------------------------------
class ReceptiveField(NamedTuple):
    """What one unit of a layer sees of the input.

    ``size``: the side of the input square that can change the unit; ``jump``:
    input pixels between neighbouring units (the product of the strides so far);
    ``start``: the input row (and column) where unit 0's square begins
    (negative = in the zero padding). Unit ``i`` sees rows
    ``start + i*jump .. start + i*jump + size - 1``.
    """

    layer: str
    size: int
    jump: int
    start: int


def receptive_fields(arch=None) -> list[ReceptiveField]:
    """Receptive field of every conv and pooling layer of VGG16, input to block5_pool.

    Each 3x3 conv ('same', stride 1) widens the field by 2 steps of the current
    jump and moves its start one step up/left (the padding); each 2x2 pool with
    stride 2 widens it by one step and doubles the jump. ``arch`` is
    :data:`numvgg.applications.vgg16.ARCH` (convs per block, filters) by default.
    """
    from ..applications.vgg16 import ARCH

    size, jump, start, fields = 1, 1, 0, []
    for b, (n_convs, _) in enumerate(arch or ARCH, start=1):
        for i in range(1, n_convs + 1):
            size, start = size + 2 * jump, start - jump  # 3x3 kernel, pad 1
            fields.append(ReceptiveField(f"block{b}_conv{i}", size, jump, start))
        size, jump = size + jump, jump * 2  # 2x2 window, stride 2
        fields.append(ReceptiveField(f"block{b}_pool", size, jump, start))
    return fields


@style.slide_style
def plot_receptive_field(path: str, image=None, input_size: int = 224) -> str:
    """How far each VGG16 layer sees: receptive field per layer (left) and, on a
    ``input_size`` input, the square one central unit of each block's last layer sees
    (right). ``image``: an optional RGB picture in [0, 1] ``(H, W, 3)`` to draw under
    the squares. Returns ``path``."""
    from matplotlib.patches import Rectangle

    fields = receptive_fields()
    fig, axes = style.new_slide(1, 2, width_ratios=[1.45, 1.0])
    ax = axes[0][0]
    block_of = [int(f.layer[5]) for f in fields]
    colors = [style.HIGHLIGHTS[b - 1] for b in block_of]
    ax.bar(range(len(fields)), [f.size for f in fields], color=colors)
    for k, f in enumerate(fields):
        ax.text(k, f.size + 3, str(f.size), ha="center", va="bottom", fontsize=12)
    ax.set_xticks(range(len(fields)))
    ax.set_xticklabels(
        [f.layer.replace("block", "b").replace("_conv", " conv").replace("_pool", " pool") for f in fields],
        rotation=70,
        fontsize=12,
    )
    ax.set_ylabel("receptive field (input pixels, one side)")
    ax.set_title("Each 3x3 conv adds 2 x jump; each pool doubles the jump")
    ax.axhline(input_size, color="#777777", linestyle=":", linewidth=1.5)
    ax.text(0, input_size + 4, f"input {input_size}x{input_size}", fontsize=13, color="#555555")
    ax.set_ylim(0, max(f.size for f in fields) * 1.15)
    ax.grid(True, axis="y")

    ax = axes[0][1]
    if image is not None:
        ax.imshow(np.asarray(image), extent=(0, input_size, input_size, 0), alpha=0.6)
    else:
        ax.add_patch(Rectangle((0, 0), input_size, input_size, facecolor="#f4f4f4", edgecolor="none"))
    last_of_block = [f for k, f in enumerate(fields) if f.layer.endswith("_pool")]
    for b, f in enumerate(last_of_block, start=1):
        n_units = input_size // f.jump
        unit = max(0, (n_units - 1) // 2)  # the central unit
        low = f.start + unit * f.jump  # may fall in the padding
        ax.add_patch(
            Rectangle(
                (low, low),
                f.size,
                f.size,
                fill=False,
                linewidth=3,
                edgecolor=style.HIGHLIGHTS[b - 1],
                label=f"block{b}_pool: {f.size}x{f.size}",
            )
        )
    ax.add_patch(Rectangle((0, 0), input_size, input_size, fill=False, edgecolor="black", linewidth=1.5))
    margin = 0.08 * input_size
    ax.set_xlim(-margin, input_size + margin)
    ax.set_ylim(input_size + margin, -margin)
    ax.set_aspect("equal")
    ax.set_xticks([0, input_size // 2, input_size])
    ax.set_yticks([0, input_size // 2, input_size])
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2, fontsize=13, frameon=False)
    ax.set_title("What one central unit sees")
    fig.suptitle("Receptive field growth through VGG16's blocks")
    style.footer(fig, _NO_WEIGHTS, note="from the architecture alone: weights do not change it")
    return style.save(fig, path)
