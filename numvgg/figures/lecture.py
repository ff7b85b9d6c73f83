"""The figure set for a lecture: ``numvgg figures DIR`` / :func:`write_lecture_figures`."""

from __future__ import annotations

import os
import time
from typing import NamedTuple

import numpy as np

from . import network, style, teaching, training


class LectureFigure(NamedTuple):
    """One figure of the set: its file name (PNG; an SVG is written next to it),
    the lesson it serves and what it shows."""

    name: str
    lesson: str
    shows: str


LECTURE_FIGURES = (
    LectureFigure(
        "im2col.png",
        "conv2d (docs/layers/conv2d.md)",
        "one input patch becomes one row of cols; conv = one matrix product",
    ),
    LectureFigure(
        "maxpool_backward.png",
        "max pooling (docs/layers/maxpool2d.md)",
        "forward keeps the argmax; backward routes dout to the winner, ties to the first",
    ),
    LectureFigure(
        "receptive_field.png",
        "VGG16's architecture",
        "receptive field per layer, and the square one unit of each block sees",
    ),
    LectureFigure(
        "filters_block1_conv1.png",
        "what a conv layer learns",
        "the 64 first-layer 3x3 filters as colour patches",
    ),
    LectureFigure(
        "feature_maps.png",
        "what the network computes",
        "the input beside block1_conv2, block3_conv3 and block5_conv3 maps",
    ),
    LectureFigure(
        "saliency.png",
        "what a decision depends on",
        "|d class score / d pixel| for the top class, titled with its name",
    ),
    LectureFigure(
        "pretrained_vs_random.png",
        "transfer learning (the main job)",
        "training curves from ImageNet weights vs random initialisation",
    ),
)

FEATURE_MAP_LAYERS = ("block1_conv2", "block3_conv3", "block5_conv3")


def sample_image(size: int = 224) -> np.ndarray:
    """A photograph for the figures, ``(size, size, 3)`` RGB 0..255 float32: matplotlib's
    public-domain sample portrait of Grace Hopper (shipped with matplotlib), loaded as
    ``keras.utils.load_img(target_size=...)`` would."""
    from matplotlib import cbook

    from ..data.images import img_to_array, load_img

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return img_to_array(load_img(path, target_size=(size, size)))


def write_lecture_figures(
    out_dir: str, model=None, image=None, weights_source=None, histories=None, log=print
) -> list[str]:
    """Write the lecture set (:data:`LECTURE_FIGURES`) into ``out_dir``; returns the PNG paths.

    Args:
        out_dir: folder (created).
        model: a VGG16 (with or without top) for the filters, feature maps and
            saliency; ``None`` writes only the diagrams that need no model.
        image: the model's input for one image ``(H, W, 3)`` after
            ``preprocess_input``; default :func:`sample_image` at the model's size.
        weights_source: for the footers; default ``model.weights_source``.
        histories: ``(pretrained, random)`` History-like pair for the last
            figure; ``None`` skips it (say so in the log).
        log: called with one progress line per figure.
    """
    from ..applications.imagenet_utils import preprocess_input

    os.makedirs(out_dir, exist_ok=True)
    if model is not None:
        if weights_source is None:
            weights_source = style.weights_source_of(model)
        if image is None:
            size = (getattr(model, "input_shape", None) or (None, 224))[1] or 224
            image = preprocess_input(sample_image(size))

    def path(figure):
        return os.path.join(out_dir, figure.name)

    jobs = {
        "im2col.png": lambda f: teaching.plot_im2col(path(f)),
        "maxpool_backward.png": lambda f: teaching.plot_maxpool_backward(path(f)),
        "receptive_field.png": lambda f: teaching.plot_receptive_field(path(f)),
    }
    if model is not None:
        jobs["filters_block1_conv1.png"] = lambda f: network.plot_filters(
            model, path(f), weights_source=weights_source
        )
        jobs["feature_maps.png"] = lambda f: network.plot_feature_maps(
            model, image, list(FEATURE_MAP_LAYERS), path(f), max_maps=16, weights_source=weights_source
        )
        jobs["saliency.png"] = lambda f: network.plot_saliency(
            model, image, path(f), weights_source=weights_source
        )
    if histories is not None:
        pretrained, random = histories
        jobs["pretrained_vs_random.png"] = lambda f: training.plot_pretrained_vs_random(
            pretrained, random, path(f)
        )

    written = []
    total = len(LECTURE_FIGURES)
    for k, figure in enumerate(LECTURE_FIGURES, start=1):
        job = jobs.get(figure.name)
        if job is None:
            why = (
                "needs a model"
                if figure.name not in ("pretrained_vs_random.png",)
                else "needs two training logs (--curves PRETRAINED.csv RANDOM.csv)"
            )
            log(f"[{k}/{total}] {figure.name:<26} skipped: {why}")
            continue
        start = time.perf_counter()
        written.append(job(figure))
        log(
            f"[{k}/{total}] {figure.name:<26} {time.perf_counter() - start:5.1f} s  "
            f"{figure.lesson}: {figure.shows}"
        )
    return written
