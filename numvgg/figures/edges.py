"""HED's teaching picture: what each VGG16 block "sees" as edges (``numvgg edges``).

One slide per image: the input, the five side outputs of HED (Xie & Tu 2015)
and the fused edge map. Each side output is the sigmoid of a 1x1 convolution
of one block's last feature map, upsampled to the image's size: block1 (full
resolution, 5x5-pixel receptive field) marks every fine texture, block5
(1/16 resolution) only the outlines of large objects. The last panel shows
how much the fusion layer trusts each block (its 1x1 kernel).
"""

from __future__ import annotations

import numpy as np

from . import style

#: (block, scale of its feature map) for the side outputs side1 ... side5.
SIDE_BLOCKS = (("block1", "1/1"), ("block2", "1/2"), ("block3", "1/4"), ("block4", "1/8"), ("block5", "1/16"))


def side_titles() -> list[str]:
    """``'side 1: block1, 1/1 scale'`` ... for the five side outputs."""
    return [f"side {i}: {block}, {scale} scale" for i, (block, scale) in enumerate(SIDE_BLOCKS, start=1)]


@style.slide_style
def plot_edges(image, side_edges, fused, path, fuse_kernel=None, weights_source=None, title: str = "") -> str:
    """Save the slide (PNG + SVG); returns the PNG's path.

    Args:
        image: the input, ``(H, W, 3)`` RGB 0..255.
        side_edges: five ``(H, W)`` maps in ``[0, 1]`` (sigmoid of side1 ... side5).
        fused: ``(H, W)`` in ``[0, 1]``, HED's output.
        fuse_kernel: the fusion layer's 5 weights, drawn as bars (or ``None``).
        weights_source: for the footer (``'hed'``, ``'random'`` or a path).
    """
    if len(side_edges) != len(SIDE_BLOCKS):
        raise ValueError(f"plot_edges needs {len(SIDE_BLOCKS)} side outputs; got {len(side_edges)}.")
    fig, axes = style.new_slide(2, 4)
    panels = [(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "input", None)]
    panels += [(edges, name, "gray_r") for edges, name in zip(side_edges, side_titles())]
    panels += [(fused, "fused: HED's edge map", "gray_r")]
    for ax, (picture, name, cmap) in zip(axes.flat, panels):
        # Edges dark on white, as in the paper; every map on the same 0..1 scale.
        ax.imshow(
            picture, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None, interpolation="nearest"
        )
        ax.set_title(name, fontsize=15)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = axes.flat[-1]
    if fuse_kernel is not None:
        weights = np.asarray(fuse_kernel, dtype=np.float64).ravel()
        ax.bar(range(1, len(weights) + 1), weights, color=style.HIGHLIGHTS[1])
        ax.set_xticks(range(1, len(weights) + 1))
        ax.set_xlabel("side output")
        ax.set_title("fusion weights (1x1 conv)", fontsize=15)
    else:
        ax.axis("off")
    fig.suptitle(title or "HED (Xie & Tu 2015): the edges each VGG16 block sees")
    style.footer(
        fig, weights_source, note="side outputs: sigmoid of each block's 1x1 conv, upsampled (bilinear)"
    )
    return style.save(fig, path)
