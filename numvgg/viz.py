"""Plots with matplotlib (the public entry kept from before :mod:`numvgg.figures`).

Every function here lives in :mod:`numvgg.figures` and shares its slide style:
1280 x 720 pixels, PNG + SVG, a footer naming the weights' source.
"""

from __future__ import annotations

from .figures.network import (
    filter_grid,
    plot_feature_maps,  # noqa: F401
    plot_filters,
    plot_saliency,
    saliency_map,
)
from .figures.teaching import (
    plot_im2col,
    plot_maxpool_backward,
    plot_receptive_field,  # noqa: F401
    receptive_fields,
)
from .figures.training import merge_histories, plot_history, plot_pretrained_vs_random  # noqa: F401

__all__ = [
    "filter_grid",
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
]
