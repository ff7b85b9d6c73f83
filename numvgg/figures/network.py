"""Looking inside VGG16: its filters, its feature maps for one image, its saliency.

:func:`plot_filters` draws what a conv layer learned, :func:`plot_feature_maps`
what it computes for one image (beside that image), :func:`plot_saliency` what
a decision depends on. The array helpers (:func:`filter_grid`,
:func:`saliency_map`) can be used on their own.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from . import style

# ImageNet mean pixel in RGB order, to undo 'caffe' preprocessing for display.
_CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


def _find_layer(model_or_layer, name):
    """``model.get_layer(name)`` for a model, the layer itself for a layer."""
    if hasattr(model_or_layer, "get_layer"):
        return model_or_layer.get_layer(name)
    return model_or_layer


def _tile(images, cols: int, pad: int = 1, pad_value: float = 1.0):
    """Lay ``images`` ``(n, h, w[, 3])`` out on a grid, ``cols`` wide, ``pad``
    pixels of ``pad_value`` between cells.

    Returns ``(rows*(h+pad)+pad, cols*(w+pad)+pad[, 3])``; unused cells stay ``pad_value``.
    """
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    rows = -(-n // cols)  # ceil(n / cols)
    grid = np.full(
        (rows * (h + pad) + pad, cols * (w + pad) + pad, *images.shape[3:]), pad_value, dtype=np.float64
    )
    for k in range(n):
        r, c = divmod(k, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = images[k]
    return grid


def _grid_columns(n: int) -> int:
    """Columns for ``n`` cells: a square-ish grid (64 -> 8, 128 -> 12, 3 -> 2)."""
    return max(1, int(np.ceil(np.sqrt(n))))


# -- filters ----------------------------------------------------------------------------------
def filter_grid(
    kernel,
    input_order: str = "BGR",
    normalize: str = "global",
    channel: int = 0,
    pad: int = 1,
    pad_color=None,
) -> np.ndarray:
    """Arrange a conv kernel's filters on an image grid, values scaled to [0, 1].

    Args:
        kernel: ``(KH, KW, C_in, F)``, Keras' layout.
        input_order: the meaning of the 3 input channels when ``C_in == 3``.
            VGG16 was trained on BGR images (``preprocess_input``, mode
            'caffe'), so the channels are reversed to show them as RGB.
            Use ``'RGB'`` for a network fed RGB.
        normalize: ``'global'`` scales all filters with one min and max, so
            strong and weak filters can be compared; ``'filter'`` scales each
            filter on its own, to see the pattern of weak ones too.
        channel: for ``C_in != 3`` each filter is shown in grey for this one
            input channel (a deeper kernel has no colour meaning).
        pad: pixels between cells.
        pad_color: RGB in [0, 1] of the gaps; default white for colour
            filters and light blue for grey ones (so a white weight stays visible).
    Returns:
        ``(rows*(KH+pad)+pad, cols*(KW+pad)+pad, 3)`` float64 in [0, 1]:
        filter ``f`` is cell ``divmod(f, cols)``, with ``cols = ceil(sqrt(F))``.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4:
        raise ShapeError(f"filter_grid expects a conv kernel (KH, KW, C_in, F); got shape {kernel.shape}")
    if input_order not in ("BGR", "RGB"):
        raise ValueError(f"input_order must be 'BGR' or 'RGB', got {input_order!r}")
    if normalize not in ("global", "filter"):
        raise ValueError(f"normalize must be 'global' or 'filter', got {normalize!r}")
    c_in = kernel.shape[2]
    if c_in == 3:
        images = np.moveaxis(kernel, 3, 0)  # (F, KH, KW, 3)
        if input_order == "BGR":
            images = images[..., ::-1]  # BGR -> RGB
    else:
        if not 0 <= channel < c_in:
            raise ValueError(f"channel={channel} is out of range for a kernel with {c_in} input channels")
        images = np.moveaxis(kernel[:, :, channel, :], 2, 0)  # (F, KH, KW)
        images = np.repeat(images[..., None], 3, axis=-1)  # (F, KH, KW, 3), grey
    axes = tuple(range(1, images.ndim)) if normalize == "filter" else None
    low = images.min(axis=axes, keepdims=True)
    span = images.max(axis=axes, keepdims=True) - low
    # A constant filter has no pattern to show: draw it mid-grey rather than divide by zero.
    images = np.where(span > 0, (images - low) / np.where(span > 0, span, 1.0), 0.5)
    if pad_color is None:
        pad_color = (1.0, 1.0, 1.0) if c_in == 3 else (0.75, 0.85, 1.0)
    grid = _tile(images, _grid_columns(images.shape[0]), pad=pad, pad_value=np.nan)
    return np.where(np.isnan(grid), np.asarray(pad_color, dtype=np.float64), grid)


@style.slide_style
def plot_filters(
    model_or_layer,
    path: str,
    layer: str = "block1_conv1",
    input_order: str = "BGR",
    normalize: str = "global",
    channel: int = 0,
    weights_source=None,
) -> str:
    """Draw a conv layer's filters as a grid of small images; returns ``path``.

    For ``block1_conv1`` of VGG16 each of the 64 filters is a 3x3 RGB patch:
    the colour and edge pattern the filter responds to most. With ImageNet
    weights you see colour blobs and oriented edges; with random weights,
    noise -- the footer says which.

    Args:
        model_or_layer: a model (``layer`` names the layer) or a ``Conv2D``.
        path: PNG file to write (folders are created; an SVG is written next to it).
        input_order, normalize, channel: see :func:`filter_grid`.
        weights_source: for the footer; default ``model.weights_source``.
    """
    conv = _find_layer(model_or_layer, layer)
    if "kernel" not in getattr(conv, "params", {}) or np.ndim(conv.params["kernel"]) != 4:
        raise ShapeError(
            f"plot_filters needs a conv layer with a 4-D kernel; '{conv.name}' "
            f"({type(conv).__name__}) has none."
        )
    if weights_source is None:
        weights_source = style.weights_source_of(model_or_layer)
    kernel = conv.params["kernel"]
    kh, kw, c_in, n_filters = kernel.shape
    grid = filter_grid(kernel, input_order=input_order, normalize=normalize, channel=channel)
    fig, axes = style.new_slide()
    ax = axes[0][0]
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    what = "as RGB colour patches" if c_in == 3 else f"input channel {channel} of {c_in}, in grey"
    scale = "one scale for all filters" if normalize == "global" else "each filter scaled on its own"
    ax.set_title(
        f"{conv.name}: {n_filters} filters of {kh}x{kw} ({what})\n"
        f"darkest = most negative weight, brightest = most positive; {scale}",
        fontsize=16,
    )
    style.footer(fig, weights_source)
    return style.save(fig, path)


# -- feature maps -----------------------------------------------------------------------------
def _one_image(image, what: str) -> np.ndarray:
    """``(H, W, C)`` or ``(1, H, W, C)`` -> ``(1, H, W, C)`` float32."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]  # (H, W, C) -> (1, H, W, C)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ShapeError(f"{what} takes one image, (H, W, C) or (1, H, W, C); got shape {x.shape}")
    return x


def _displayable(image, preprocessing) -> np.ndarray:
    """A model input ``(H, W, 3)`` turned back into an RGB picture in [0, 1].

    ``preprocessing='caffe'`` undoes VGG16's ``preprocess_input`` (BGR -> RGB,
    add the ImageNet mean); ``None`` just stretches min..max to 0..1.
    """
    if preprocessing not in (None, "caffe"):
        raise ValueError(f"preprocessing must be 'caffe' or None, got {preprocessing!r}")
    x = np.asarray(image, dtype=np.float64)
    if preprocessing == "caffe" and x.shape[-1] == 3:
        x = x[..., ::-1] + np.asarray(_CAFFE_MEAN_RGB)
        return np.clip(x / 255.0, 0.0, 1.0)
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def _scaled_maps(out, n):
    """The first ``n`` channels of ``out`` ``(OH, OW, C)``, each scaled to its own
    min..max, as ``(n, OH, OW)``; and which of them are 0 everywhere."""
    maps = np.moveaxis(out[..., :n], -1, 0).astype(np.float64)  # (n, OH, OW)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1.0), 0.0)
    return scaled, span[:, 0, 0] == 0


@style.slide_style
def plot_feature_maps(
    model,
    image,
    layer_name,
    path: str,
    max_maps: int = 64,
    cmap: str = "viridis",
    preprocessing="caffe",
    weights_source=None,
) -> str:
    """The input image and, beside it, the activation maps of one or more layers.

    Args:
        model: a numvgg model (nested models are searched).
        image: the model's input for one image, ``(H, W, 3)`` or ``(1, H, W, 3)``,
            i.e. after ``preprocess_input``.
        layer_name: e.g. ``'block1_conv2'``, or a list of names (one panel each,
            e.g. ``['block1_conv2', 'block3_conv3', 'block5_conv3']``).
        path: PNG to write (and an SVG next to it).
        max_maps: draw the first ``max_maps`` channels of each layer at most.
        cmap: matplotlib colour map.
        preprocessing: how ``image`` was preprocessed, to show it as a picture.
        weights_source: for the footer; default ``model.weights_source``.

    Each panel is titled with the layer's name and output shape (H x W x C).
    Each map is scaled on its own (dark = its minimum, bright = its maximum),
    so weak channels are visible too; a map that is 0 everywhere (a ReLU that
    never fired for this image) is drawn dark and counted under the panel.
    Only the layers up to each ``layer_name`` are run.
    """
    from ..debug.trace import layer_output

    if max_maps < 1:
        raise ValueError(f"max_maps must be at least 1, got {max_maps}")
    names = [layer_name] if isinstance(layer_name, str) else list(layer_name)
    if not names:
        raise ValueError("plot_feature_maps: give at least one layer name")
    x = _one_image(image, "plot_feature_maps")
    outputs = []
    for name in names:
        out = layer_output(model, x, name)[0]  # (OH, OW, C) or (D,)
        if out.ndim != 3:
            raise ShapeError(
                f"plot_feature_maps: layer '{name}' outputs shape {out.shape} per "
                "image; feature maps need (H, W, C): pick a conv or pooling layer."
            )
        outputs.append(out)
    if weights_source is None:
        weights_source = style.weights_source_of(model)

    plt = style.pyplot()
    fig, axes = style.new_slide(1, 1 + len(names), width_ratios=[1.0] + [1.25] * len(names))
    axes = axes[0]
    axes[0].imshow(_displayable(x[0], preprocessing), interpolation="nearest")
    axes[0].set_title(f"input\n{x.shape[1]}x{x.shape[2]}x{x.shape[3]}")
    axes[0].set_axis_off()
    colours = plt.get_cmap(cmap).with_extremes(bad="white")  # NaN gaps drawn white
    for ax, name, out in zip(axes[1:], names, outputs):
        n = min(max_maps, out.shape[-1])
        scaled, dead = _scaled_maps(out, n)
        pad = max(1, out.shape[0] // 16)
        ax.imshow(
            _tile(scaled, _grid_columns(n), pad=pad, pad_value=np.nan),
            cmap=colours,
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
        )
        shown = f"first {n} of {out.shape[-1]} maps" if n < out.shape[-1] else f"all {n} maps"
        ax.set_title(f"{name}\n{out.shape[0]}x{out.shape[1]}x{out.shape[2]}")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel(
            f"{shown}\n{np.mean(out == 0):.0%} of values are 0"
            + (f"; {int(dead.sum())} all-zero" if dead.any() else ""),
            fontsize=14,
        )
    fig.suptitle(
        "Feature maps: what each layer computes for this image (each map scaled to its own min..max)",
        fontsize=18,
    )
    style.footer(fig, weights_source, note="shape = height x width x channels")
    return style.save(fig, path)


# -- saliency ---------------------------------------------------------------------------------
def _saliency(model, image, class_index):
    """(saliency ``(H, W)``, class index, score, score_is_logit) -- see :func:`saliency_map`."""
    from ..models import leaf_layers

    x = _one_image(image, "saliency_map")
    leaves = list(leaf_layers(model))
    saved_grads = [(leaf, leaf.grads) for leaf in leaves]
    last = leaves[-1]
    # Simonyan et al. (2013) differentiate the class score before the softmax: after it, a
    # class can gain probability just because the others lose score.
    # Such a layer keeps its pre-activation (``last_logits``) at every forward.
    from_logits = getattr(last, "activation_name", "linear") in ("softmax", "sigmoid")
    saved_logits = last.__dict__.get("last_logits")
    try:
        out = model(x, training=False)
        scores = (last.last_logits if from_logits else out).reshape(-1)  # (classes,) or (D,)
        if class_index is None:
            class_index = int(np.argmax(out.reshape(-1)))
        if not 0 <= class_index < scores.size:
            raise ValueError(
                f"class_index {class_index} is out of range: the model has {scores.size} outputs"
            )
        dout = np.zeros(out.shape, dtype=np.float32)
        dout.reshape(-1)[class_index] = 1.0  # d(score)/d(output): one-hot
        dx = model.backward(dout, need_weight_grads=False, from_logits=from_logits)
    finally:
        model.clear_cache()
        if hasattr(last, "last_logits"):
            last.last_logits = saved_logits
        for leaf, grads in saved_grads:
            leaf.grads = grads  # the caller's gradients are untouched
    saliency = np.max(np.abs(dx[0]), axis=-1)  # (H, W): strongest channel per pixel
    return saliency.astype(np.float32), class_index, float(scores[class_index]), from_logits


def saliency_map(model, image, class_index=None) -> np.ndarray:
    """How much each input pixel affects one class score (Simonyan et al., 2013).

    ``|d score / d image|``, maximised over the colour channels. The score is
    the one *before* the softmax (or sigmoid) when the model ends in one
    (backward with ``from_logits=True``); otherwise the output itself.

    Args:
        model: a numvgg model; one forward and one backward are run, the
            model's weight gradients (``layer.grads``) are left as they were.
        image: one input, ``(H, W, 3)`` or ``(1, H, W, 3)``, after ``preprocess_input``.
        class_index: which output to explain; ``None`` = the top prediction.
            For a model without top it indexes the flattened output.
    Returns:
        ``(H, W)`` float32, >= 0.
    """
    return _saliency(model, image, class_index)[0]


def _imagenet_name(index: int, n_outputs: int):
    """The ImageNet class name when the model has ImageNet's 1000 outputs, else ``None``."""
    if n_outputs != 1000:
        return None
    from ..applications.imagenet_utils import imagenet_class_name

    return imagenet_class_name(index)


@style.slide_style
def plot_saliency(
    model,
    image,
    path: str,
    class_index=None,
    preprocessing="caffe",
    class_name: str | None = None,
    weights_source=None,
) -> str:
    """Draw the image, its saliency map and the two overlaid; returns ``path``.

    Args:
        model, image, class_index: as :func:`saliency_map`.
        preprocessing: how ``image`` was preprocessed, to show it as a
            picture: ``'caffe'`` (VGG16's ``preprocess_input``) or ``None``.
        class_name: the class's name for the title; by default, for a model
            with ImageNet's 1000 classes, the name from the class index numvgg
            ships (no download).
        weights_source: for the footer; default ``model.weights_source``.
    """
    saliency, index, score, is_logit = _saliency(model, image, class_index)
    output_shape = tuple(getattr(model, "output_shape", None) or ())
    classifier = len(output_shape) <= 2  # (N, classes); else a feature map
    if class_name is None and classifier and output_shape:
        class_name = _imagenet_name(index, output_shape[-1])
    if weights_source is None:
        weights_source = style.weights_source_of(model)
    picture = _displayable(_one_image(image, "plot_saliency")[0], preprocessing)
    top = saliency.max()
    heat = saliency / top if top > 0 else saliency

    fig, axes = style.new_slide(1, 3)
    axes = axes[0]
    axes[0].imshow(picture, interpolation="nearest")
    axes[0].set_title("input")
    shown = axes[1].imshow(heat, cmap="inferno", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes[1].set_title("|d score / d pixel|\n(max over colours, / its max)")
    fig.colorbar(shown, ax=axes[1], shrink=0.7)
    axes[2].imshow(picture.mean(axis=-1), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes[2].imshow(
        heat,
        cmap="inferno",
        alpha=np.clip(heat * 1.5, 0.0, 0.85),
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    axes[2].set_title("overlay")
    for ax in axes:
        ax.set_axis_off()
    # A model without a classifier (4-D output) explains one feature channel.
    if classifier:
        what = f"'{class_name}' (class {index})" if class_name else f"class {index}"
    else:
        what = f"feature {index}"
    kind = "its logit (before the softmax)" if is_logit else "its score"
    fig.suptitle(
        f"Saliency: which pixels change the score of {what}\n{kind}: {score:.3g}; Simonyan et al. (2013)"
    )
    style.footer(fig, weights_source)
    return style.save(fig, path)
