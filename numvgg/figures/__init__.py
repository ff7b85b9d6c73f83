"""Slide-ready figures for teaching with numvgg (matplotlib, PNG + SVG, 1280 x 720).

All figures share one style (:mod:`numvgg.figures.style`) and say in a footer
which weights produced them. :func:`write_lecture_figures` (``numvgg figures
DIR``) writes the whole set; docs/figures.md says which figure serves which lesson.
"""

from .lecture import LECTURE_FIGURES, write_lecture_figures
from .network import filter_grid, plot_feature_maps, plot_filters, plot_saliency, saliency_map
from .teaching import (
    ReceptiveField,
    plot_im2col,
    plot_maxpool_backward,
    plot_receptive_field,
    receptive_fields,
)
from .training import history_from_csv, merge_histories, plot_history, plot_pretrained_vs_random

__all__ = [
    "LECTURE_FIGURES",
    "ReceptiveField",
    "filter_grid",
    "history_from_csv",
    "merge_histories",
    "plot_feature_maps",
    "plot_filters",
    "plot_history",
    "plot_im2col",
    "plot_maxpool_backward",
    "plot_pretrained_vs_random",
    "plot_receptive_field",
    "plot_saliency",
    "receptive_fields",
    "saliency_map",
    "write_lecture_figures",
]
