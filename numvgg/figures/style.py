"""One look for every numvgg figure: a 16:9 slide with fonts readable from the back row.

Every figure is drawn on a 12.8 x 7.2 inch canvas at 100 dpi, i.e. 1280 x 720
pixels, a projector's native size, so nothing is rescaled on the slide and a
16 pt label stays 16 pt. :func:`save` writes a PNG and an SVG side by side.

Every figure also says which weights produced it (a footer, :func:`footer`):
a grid of random filters looks like a broken model unless the slide says the
weights are random. The source is the ``weights_source=`` argument of each
figure function, by default ``model.weights_source`` (set by ``VGG16``:
``'random'``, ``'imagenet'``, ``'hed'`` or a file path), see :func:`weights_source_of`.

Only matplotlib's Agg backend is used, so figures are made on machines without a screen.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile

SLIDE_INCHES = (12.8, 7.2)
DPI = 100  # 12.8 x 7.2 in at 100 dpi = 1280 x 720 px
FORMATS = ("png", "svg")

# Sizes in points; at 100 dpi a point is 1.39 px, so body text (tick labels, 14 pt) is
# ~19 px high on a 720 px slide, and nothing is below 12 pt (~17 px): readable from the
# back of a lecture room.
RC = {
    "font.size": 16,
    "axes.titlesize": 18,
    "axes.labelsize": 16,
    "xtick.labelsize": 14,
    "ytick.labelsize": 14,
    "legend.fontsize": 14,
    "figure.titlesize": 21,
    "axes.grid": False,
    "grid.alpha": 0.3,
    "lines.linewidth": 2.5,
    "lines.markersize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",  # SVG text stays text: editable, searchable
}
FOOTER_SIZE = 13

# One colour per meaning, the same on every slide.
TRAIN_COLOR = "#1f77b4"  # blue: training data
VAL_COLOR = "#d62728"  # red: validation data
HIGHLIGHTS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628")
PHASE_SHADES = ("#f2f2f2", "#fff4e0", "#e8f4ea", "#eef0fb")


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def slide_style(draw):
    """Decorator: run a figure function inside the slide's rcParams.

    Font sizes are read when a text is created, so the whole drawing (not only
    ``subplots``) has to run inside the style.
    """

    @functools.wraps(draw)
    def wrapped(*args, **kwargs):
        with pyplot().rc_context(RC):
            return draw(*args, **kwargs)

    return wrapped


def new_slide(nrows: int = 1, ncols: int = 1, **kwargs):
    """``(fig, axes)`` on a 1280 x 720 canvas; ``axes`` is always 2-D.

    The layout keeps the bottom 5 % free for the :func:`footer`.
    """
    plt = pyplot()
    fig, axes = plt.subplots(
        nrows, ncols, figsize=SLIDE_INCHES, dpi=DPI, squeeze=False, layout="constrained", **kwargs
    )
    fig.get_layout_engine().set(rect=(0.0, 0.05, 1.0, 0.95))
    return fig, axes


# -- where the weights came from ----------------------------------------------------------
_KNOWN_SOURCES = {
    "random": "random (untrained): no pattern here is learned",
    "imagenet": "ImageNet (Keras' published VGG16 weights)",
    "hed": "HED edge detector (VGG16 fine-tuned for edges)",
}


def weights_label(source) -> str:
    """Words for a footer: ``'imagenet'`` -> ``'weights: ImageNet (Keras' ...)'``.

    A path is shown by its file name; ``None`` says the source is unknown
    rather than leaving the reader to guess.
    """
    if source is None:
        return "weights: source not given"
    text = str(source)
    if text.lower() in _KNOWN_SOURCES:
        return "weights: " + _KNOWN_SOURCES[text.lower()]
    if text.lower() in ("none", "no weights"):
        return "no weights: a drawing of the operation"
    return f"weights: {os.path.basename(text) or text}"


def weights_source_of(model):
    """``model.weights_source``, else the first one found in its layers (a
    ``Sequential`` holding a VGG16 conv base), else ``None``."""
    source = getattr(model, "weights_source", None)
    if source is not None:
        return source
    for layer in getattr(model, "layers", None) or ():
        source = weights_source_of(layer)
        if source is not None:
            return source
    return None


def footer(fig, weights_source, note: str = "", text: str | None = None) -> None:
    """Write the weights' source (and ``note``) in the bottom-left corner, in grey;
    ``text`` replaces the weights' label (a figure comparing two sources)."""
    text = (weights_label(weights_source) if text is None else text) + (f"   |   {note}" if note else "")
    fig.text(0.01, 0.012, text, ha="left", va="bottom", fontsize=FOOTER_SIZE, color="#555555")


# -- saving -----------------------------------------------------------------------------------
def _stem(path) -> str:
    path = os.fspath(path)
    root, ext = os.path.splitext(path)
    if ext.lower() not in ("", ".png", ".svg"):
        raise ValueError(
            f"A figure is saved as .png and .svg; got '{path}' (use a .png name or no extension)."
        )
    return root


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(fig, path) -> str:
    """Write ``fig`` as ``<stem>.png`` and ``<stem>.svg``; returns the PNG's path.

    Each file is written under a temporary name and renamed when complete, so
    an interrupted save never leaves half a figure where the old one was.
    """
    plt = pyplot()
    stem = _stem(path)
    folder = os.path.dirname(os.path.abspath(stem))
    os.makedirs(folder, exist_ok=True)
    try:
        for fmt in FORMATS:
            target = f"{stem}.{fmt}"
            fd, partial = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".part", dir=folder)
            os.close(fd)
            try:
                fig.savefig(partial, format=fmt, dpi=DPI)
                os.chmod(partial, 0o666 & ~_umask())  # mkstemp's 0600 -> a normal file
                os.replace(partial, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(partial)
    finally:
        plt.close(fig)
    return f"{stem}.png"
