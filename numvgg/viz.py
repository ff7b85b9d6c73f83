"""Plots with matplotlib, saved as PNG (also callable from Python).

Only the Agg backend is used, so plots work on machines without a screen.
"""
from __future__ import annotations

import os

import numpy as np

from .errors import ShapeError


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _merge_histories(histories):
    """Concatenate ``History`` objects (or ``.history`` dicts) epoch by epoch."""
    if not isinstance(histories, (list, tuple)):
        histories = [histories]
    merged, epochs, phase_starts = {}, [], []
    for h in histories:
        logs = getattr(h, "history", h)
        eps = list(getattr(h, "epoch", range(len(next(iter(logs.values()), [])))))
        phase_starts.append(len(epochs))
        epochs.extend(eps)
        for key, values in logs.items():
            merged.setdefault(key, []).extend(values)
    return merged, epochs, phase_starts


def plot_history(histories, path: str, title: str = "Training curves") -> str:
    """Loss and accuracy per epoch, training and validation, one panel each.

    ``histories`` is a ``History`` (from ``fit``) or a list of them, e.g. the
    two phases of the seed's recipe; a dashed line marks where each new phase
    starts. Returns ``path``.
    """
    plt = _pyplot()
    logs, epochs, starts = _merge_histories(histories)
    if not epochs:
        raise ValueError("plot_history: the history is empty (did fit() run any epoch?)")
    x = [e + 1 for e in epochs]
    metric_names = sorted({k[4:] if k.startswith("val_") else k for k in logs} - {"loss"})
    panels = ["loss"] + metric_names
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, name in zip(axes[0], panels):
        for key, style in ((name, "o-"), (f"val_{name}", "s--")):
            if key in logs:
                ax.plot(x[:len(logs[key])], logs[key], style, label=key)
        for s in starts[1:]:
            ax.axvline(x[s] - 0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return _save(fig, path)


# -- looking inside the network --------------------------------------------------------------
#
# The functions below draw what VGG16 learned (filters), what it computes for one image
# (feature maps) and what its decision depends on (saliency). Each saves a PNG and returns
# its path; the array-returning helpers (filter_grid, saliency_map) can be used on their own.

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
    rows = -(-n // cols)                                    # ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, *images.shape[3:]),
                   pad_value, dtype=np.float64)
    for k in range(n):
        r, c = divmod(k, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top:top + h, left:left + w] = images[k]
    return grid


def _grid_columns(n: int) -> int:
    """Columns for ``n`` cells: a square-ish grid (64 -> 8, 128 -> 12, 3 -> 2)."""
    return max(1, int(np.ceil(np.sqrt(n))))


def filter_grid(kernel, input_order: str = "BGR", normalize: str = "global", channel: int = 0,
                pad: int = 1, pad_color=None) -> np.ndarray:
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
        images = np.moveaxis(kernel, 3, 0)                  # (F, KH, KW, 3)
        if input_order == "BGR":
            images = images[..., ::-1]                      # BGR -> RGB
    else:
        if not 0 <= channel < c_in:
            raise ValueError(f"channel={channel} is out of range for a kernel with {c_in} input channels")
        images = np.moveaxis(kernel[:, :, channel, :], 2, 0)  # (F, KH, KW)
        images = np.repeat(images[..., None], 3, axis=-1)   # (F, KH, KW, 3), grey
    axes = tuple(range(1, images.ndim)) if normalize == "filter" else None
    low = images.min(axis=axes, keepdims=True)
    span = images.max(axis=axes, keepdims=True) - low
    # A constant filter has no pattern to show: draw it mid-grey rather than divide by zero.
    images = np.where(span > 0, (images - low) / np.where(span > 0, span, 1.0), 0.5)
    if pad_color is None:
        pad_color = (1.0, 1.0, 1.0) if c_in == 3 else (0.75, 0.85, 1.0)
    grid = _tile(images, _grid_columns(images.shape[0]), pad=pad, pad_value=np.nan)
    return np.where(np.isnan(grid), np.asarray(pad_color, dtype=np.float64), grid)


def plot_filters(model_or_layer, path: str, layer: str = "block1_conv1", input_order: str = "BGR",
                 normalize: str = "global", channel: int = 0) -> str:
    """Draw a conv layer's filters as a grid of small images; returns ``path``.

    For ``block1_conv1`` of VGG16 each of the 64 filters is a 3x3 RGB patch:
    the colour and edge pattern the filter responds to most. With ImageNet
    weights you see colour blobs and oriented edges; with random weights,
    noise.

    Args:
        model_or_layer: a model (``layer`` names the layer) or a ``Conv2D``.
        path: PNG file to write (folders are created).
        input_order, normalize, channel: see :func:`filter_grid`.
    """
    plt = _pyplot()
    conv = _find_layer(model_or_layer, layer)
    if "kernel" not in getattr(conv, "params", {}) or np.ndim(conv.params["kernel"]) != 4:
        raise ShapeError(f"plot_filters needs a conv layer with a 4-D kernel; '{conv.name}' "
                         f"({type(conv).__name__}) has none.")
    kernel = conv.params["kernel"]
    kh, kw, c_in, n_filters = kernel.shape
    grid = filter_grid(kernel, input_order=input_order, normalize=normalize, channel=channel)
    cols = _grid_columns(n_filters)
    rows = -(-n_filters // cols)
    fig, ax = plt.subplots(figsize=(max(3.0, 0.55 * cols + 0.6), max(3.0, 0.55 * rows + 1.0)))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    what = "RGB" if c_in == 3 else f"input channel {channel} of {c_in}, grey"
    scale = "one scale for all" if normalize == "global" else "each filter scaled alone"
    ax.set_title(f"{conv.name}: {n_filters} filters {kh}x{kw} ({what})\n"
                 f"min..max weight -> dark..bright, {scale}", fontsize=9)
    return _save(fig, path)


def _one_image(image, what: str) -> np.ndarray:
    """``(H, W, C)`` or ``(1, H, W, C)`` -> ``(1, H, W, C)`` float32."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]                                         # (H, W, C) -> (1, H, W, C)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ShapeError(f"{what} takes one image, (H, W, C) or (1, H, W, C); got shape {x.shape}")
    return x


def _displayable(image, preprocessing) -> np.ndarray:
    """A model input ``(H, W, 3)`` turned back into an RGB picture in [0, 1].

    ``preprocessing='caffe'`` undoes VGG16's ``preprocess_input`` (BGR -> RGB,
    add the ImageNet mean); ``None`` just stretches min..max to 0..1.
    """
    x = np.asarray(image, dtype=np.float64)
    if preprocessing == "caffe" and x.shape[-1] == 3:
        x = x[..., ::-1] + np.asarray(_CAFFE_MEAN_RGB)
        return np.clip(x / 255.0, 0.0, 1.0)
    if preprocessing not in (None, "caffe"):
        raise ValueError(f"preprocessing must be 'caffe' or None, got {preprocessing!r}")
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def plot_feature_maps(model, image, layer_name: str, path: str, max_maps: int = 64,
                      cmap: str = "viridis") -> str:
    """Draw the activation maps of one layer for one image; returns ``path``.

    Args:
        model: a numvgg model (nested models are searched).
        image: the model's input for one image, ``(H, W, 3)`` or ``(1, H, W, 3)``,
            i.e. after ``preprocess_input``.
        layer_name: e.g. ``'block1_conv2'`` (or ``'vgg16/block1_conv2'``).
        max_maps: draw the first ``max_maps`` channels at most.
        cmap: matplotlib colour map.

    Each map is scaled on its own (dark = its minimum, bright = its
    maximum), so weak channels are visible too; a map that is 0 everywhere
    (a ReLU that never fired for this image) is drawn dark and labelled
    ``*``. Only the layers up to ``layer_name`` are run.
    """
    from .debug.trace import layer_output
    plt = _pyplot()
    if max_maps < 1:
        raise ValueError(f"max_maps must be at least 1, got {max_maps}")
    x = _one_image(image, "plot_feature_maps")
    out = layer_output(model, x, layer_name)[0]             # (OH, OW, C) or (D,)
    if out.ndim != 3:
        raise ShapeError(f"plot_feature_maps: layer '{layer_name}' outputs shape {out.shape[0:]} per "
                         "image; feature maps need (H, W, C): pick a conv or pooling layer.")
    n = min(max_maps, out.shape[-1])
    maps = np.moveaxis(out[..., :n], -1, 0).astype(np.float64)   # (n, OH, OW)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1.0), 0.0)
    cols = _grid_columns(n)
    rows = -(-n // cols)
    pad = max(1, out.shape[0] // 16)
    grid = _tile(scaled, cols, pad=pad, pad_value=np.nan)   # NaN cells: background colour

    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * cols + 0.5), max(4.0, 1.1 * rows + 1.0)))
    colours = plt.get_cmap(cmap).with_extremes(bad="white")   # NaN gaps drawn white
    ax.imshow(grid, cmap=colours, vmin=0.0, vmax=1.0, interpolation="nearest")
    h, w = maps.shape[1:]
    for k in range(n):
        r, c = divmod(k, cols)
        dead = span[k, 0, 0] == 0
        ax.text(pad + c * (w + pad) + 0.3, pad + r * (h + pad) + 0.3, f"{k}" + ("*" if dead else ""),
                color="white", fontsize=6, va="top", ha="left",
                bbox=dict(boxstyle="square,pad=0.1", fc="black", ec="none", alpha=0.5))
    ax.set_axis_off()
    shown = f"first {n} of {out.shape[-1]}" if n < out.shape[-1] else f"all {n}"
    ax.set_title(f"{layer_name}: output {out.shape[0]}x{out.shape[1]}x{out.shape[-1]} ({shown} "
                 f"channels)\neach map scaled to its own min..max (dark..bright); "
                 f"{np.mean(out == 0):.0%} of the values are 0; * = a map that is 0 everywhere",
                 fontsize=9)
    return _save(fig, path)


def _saliency(model, image, class_index):
    """(saliency ``(H, W)``, class index, score, score_is_logit) -- see :func:`saliency_map`."""
    from .models import leaf_layers
    x = _one_image(image, "saliency_map")
    leaves = list(leaf_layers(model))
    saved_grads = [(leaf, leaf.grads) for leaf in leaves]
    last = leaves[-1]
    # Simonyan et al. (2013) differentiate the class score before the softmax: after it, a
    # class can gain probability just because the others lose score.
    from_logits = getattr(last, "activation_name", "linear") in ("softmax", "sigmoid")
    saved_logit_state = {k: last.__dict__[k] for k in ("keep_logits", "last_logits") if k in last.__dict__}
    try:
        if from_logits:
            last.keep_logits = True                         # the layer keeps its pre-activation
        out = model.forward(x, training=False)
        scores = (last.last_logits if from_logits else out).reshape(-1)   # (classes,) or (D,)
        if class_index is None:
            class_index = int(np.argmax(out.reshape(-1)))
        if not 0 <= class_index < scores.size:
            raise ValueError(f"class_index {class_index} is out of range: the model has "
                             f"{scores.size} outputs")
        dout = np.zeros(out.shape, dtype=np.float32)
        dout.reshape(-1)[class_index] = 1.0                 # d(score)/d(output): one-hot
        dx = model.backward(dout, need_weight_grads=False, from_logits=from_logits)
    finally:
        model.clear_cache()
        for k in ("keep_logits", "last_logits"):
            last.__dict__.pop(k, None)
        last.__dict__.update(saved_logit_state)
        for leaf, grads in saved_grads:
            leaf.grads = grads                              # the caller's gradients are untouched
    saliency = np.max(np.abs(dx[0]), axis=-1)               # (H, W): strongest channel per pixel
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


def plot_saliency(model, image, path: str, class_index=None, preprocessing="caffe",
                  class_name: str | None = None) -> str:
    """Draw the image, its saliency map and the two overlaid; returns ``path``.

    Args:
        model, image, class_index: as :func:`saliency_map`.
        preprocessing: how ``image`` was preprocessed, to show it as a
            picture: ``'caffe'`` (VGG16's ``preprocess_input``) or ``None``.
        class_name: a label for the title (e.g. from ``decode_predictions``).
    """
    plt = _pyplot()
    saliency, index, score, is_logit = _saliency(model, image, class_index)
    picture = _displayable(_one_image(image, "plot_saliency")[0], preprocessing)
    top = saliency.max()
    heat = saliency / top if top > 0 else saliency

    fig, axes = plt.subplots(1, 3, figsize=(11, 4.0), layout="constrained")
    axes[0].imshow(picture, interpolation="nearest")
    axes[0].set_title("input")
    shown = axes[1].imshow(heat, cmap="inferno", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes[1].set_title("saliency: |d score / d pixel| / max")
    fig.colorbar(shown, ax=axes[1], shrink=0.8)
    axes[2].imshow(picture.mean(axis=-1), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes[2].imshow(heat, cmap="inferno", alpha=np.clip(heat * 1.5, 0.0, 0.85), vmin=0.0, vmax=1.0,
                   interpolation="nearest")
    axes[2].set_title("overlay")
    for ax in axes:
        ax.set_axis_off()
    # A model without a classifier (4-D output) explains one feature channel.
    unit = "class" if len(getattr(model, "output_shape", None) or ()) <= 2 else "feature"
    label = f"{unit} {index}" + (f" ({class_name})" if class_name else "")
    kind = "logit" if is_logit else "score"
    fig.suptitle(f"What the {label} {kind} ({score:.3g}) depends on", fontsize=11)
    return _save(fig, path)
