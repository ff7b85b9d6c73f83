"""Training curves: one run by phase, and pretrained vs random initialisation side by side.

A history is anything ``fit`` returns or that looks like it: a ``History``
(``.history`` dict + ``.epoch`` list), a plain ``{"loss": [...], "val_acc": [...]}``
dict, or a list of those, one per training phase (the original blog post's recipe
trains the head with the conv base frozen, then fine-tunes block5). Phases are
drawn one after the other on one epoch axis, each shaded and labelled.
"""

from __future__ import annotations

import csv

from ..errors import ShapeError
from . import style

# The original blog post's recipe has two phases; a one-phase run gets no labels.
RECIPE_PHASES = ("phase 1: conv base frozen", "phase 2: block5 fine-tuned")

_TITLES = {
    "loss": "Loss (lower is better)",
    "acc": "Accuracy (higher is better)",
    "accuracy": "Accuracy (higher is better)",
}
_LABELS = {"loss": "loss", "acc": "accuracy", "accuracy": "accuracy"}


def _as_phases(histories) -> list:
    return list(histories) if isinstance(histories, (list, tuple)) else [histories]


def merge_histories(histories):
    """Concatenate phases epoch by epoch.

    Returns ``(logs, epochs, phase_starts)``: the merged ``{key: [values]}``,
    the 1-based epoch number of every row (a phase started with
    ``initial_epoch`` keeps its numbers) and the row where each phase starts.
    """
    merged, epochs, phase_starts = {}, [], []
    for k, h in enumerate(_as_phases(histories)):
        logs = getattr(h, "history", h)
        if not isinstance(logs, dict):
            raise TypeError(
                f"history {k}: expected a History or a dict of per-epoch lists, got {type(h).__name__}"
            )
        lengths = {key: len(values) for key, values in logs.items()}
        if len(set(lengths.values())) > 1:
            raise ShapeError(f"history {k}: the metrics have different numbers of epochs: {lengths}")
        n = next(iter(lengths.values()), 0)
        own_epochs = list(getattr(h, "epoch", None) or [])
        if len(own_epochs) != n:
            own_epochs = list(range(len(epochs), len(epochs) + n))  # continue the count
        phase_starts.append(len(epochs))
        epochs.extend(e + 1 for e in own_epochs)  # Keras counts from 0
        for key in set(merged) | set(logs):
            merged.setdefault(key, [None] * (len(epochs) - n)).extend(logs.get(key, [None] * n))
    return merged, epochs, phase_starts


def history_from_csv(path) -> dict:
    """Read a ``CSVLogger`` file back into a ``History``-like dict (with ``epoch``)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise OSError(f"Cannot read the training log '{path}': {e}") from e
    if not rows or "epoch" not in rows[0]:
        raise ValueError(
            f"'{path}' is not a CSVLogger file: it needs a header with 'epoch' and at least one row."
        )
    logs = {key: [float(r[key]) for r in rows] for key in rows[0] if key != "epoch"}

    class _CsvHistory:  # the two attributes merge_histories reads
        history = logs
        epoch = [int(r["epoch"]) for r in rows]

    return _CsvHistory()


def _metric_names(logs) -> list[str]:
    names = sorted({k[4:] if k.startswith("val_") else k for k in logs} - {"loss"})
    return (["loss"] if "loss" in logs or "val_loss" in logs else []) + names


def _add_headroom(ax, low, high):
    ax.set_ylim(low, high + 0.3 * (high - low))


def _data_range(logs, name):
    values = [v for key in (name, f"val_{name}") for v in logs.get(key) or () if v is not None]
    return min(values), max(values)


def _draw_panel(ax, logs, epochs, starts, name, phases, headroom=True):
    """Training and validation ``name`` against the epoch, phases shaded."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    marker = len(epochs) <= 30  # markers on short runs only
    for key, label, color, line in (
        (name, "training", style.TRAIN_COLOR, "-"),
        (f"val_{name}", "validation", style.VAL_COLOR, "--"),
    ):
        values = logs.get(key)
        if values is None:
            continue
        points = [(e, v) for e, v in zip(epochs, values) if v is not None]
        ax.plot(
            [e for e, _ in points],
            [v for _, v in points],
            line,
            color=color,
            label=label,
            marker=("o" if line == "-" else "s") if marker else None,
        )
    if len(starts) > 1:
        edges = [epochs[s] - 0.5 for s in starts] + [epochs[-1] + 0.5]
        for k in range(len(starts)):
            ax.axvspan(
                edges[k],
                edges[k + 1],
                color=style.PHASE_SHADES[k % len(style.PHASE_SHADES)],
                zorder=0,
                linewidth=0,
            )
            if k:
                ax.axvline(edges[k], color="#777777", linestyle=":", linewidth=1.5)
            label = (phases[k] if k < len(phases) else f"phase {k + 1}").replace(": ", ":\n", 1)
            x, ha, y = (edges[k] + edges[k + 1]) / 2, "center", 0.98
            if edges[k + 1] - edges[k] < 0.25 * (edges[-1] - edges[0]):
                # A short phase (3 fine-tuning epochs after 60): align the label with the
                # phase's outer edge so it stays inside the plot, one line lower.
                x, ha, y = (edges[k + 1], "right", 0.84) if k == len(starts) - 1 else (edges[k], "left", 0.84)
            ax.text(
                x, y, label, transform=ax.get_xaxis_transform(), ha=ha, va="top", fontsize=13, color="#444444"
            )
    ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel(_LABELS.get(name, name))
    ax.set_title(_TITLES.get(name, name))
    if name in ("acc", "accuracy"):
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    if len(starts) > 1 and headroom:  # head-room for the phase labels
        _add_headroom(ax, *ax.get_ylim())
    ax.grid(True)


@style.slide_style
def plot_history(
    histories, path: str, title: str = "Training curves", weights_source=None, phases=None
) -> str:
    """Loss and accuracy per epoch, training and validation, one panel each.

    Args:
        histories: a ``History`` (from ``fit``), a dict of per-epoch lists, or a
            list of them, e.g. the two phases of the original blog post's recipe.
        path: the PNG to write (an SVG is written next to it).
        weights_source: for the footer; by default the history's model's
            ``weights_source`` (see :func:`numvgg.figures.style.weights_source_of`).
        phases: a label per phase; by default, for two phases, "conv base
            frozen" and "block5 fine-tuned" (:data:`RECIPE_PHASES`).
    Returns ``path`` (the PNG).
    """
    logs, epochs, starts = merge_histories(histories)
    if not epochs:
        raise ValueError("plot_history: the history is empty (did fit() run any epoch?)")
    if weights_source is None:
        first = _as_phases(histories)[0]
        weights_source = style.weights_source_of(getattr(first, "model", None))
    phases = list(phases) if phases is not None else list(RECIPE_PHASES if len(starts) == 2 else ())
    names = _metric_names(logs)
    fig, axes = style.new_slide(1, len(names))
    for ax, name in zip(axes[0], names):
        _draw_panel(ax, logs, epochs, starts, name, phases)
    axes[0][0].legend(loc="lower left")
    fig.suptitle(title)
    style.footer(fig, weights_source)
    return style.save(fig, path)


@style.slide_style
def plot_pretrained_vs_random(
    pretrained,
    random,
    path: str,
    title: str = "Same recipe, two starting points",
    pretrained_source="imagenet",
    phases=None,
) -> str:
    """The lesson of the main job: training curves with ImageNet weights (left)
    and with random initialisation (right), same axes, loss above accuracy.

    Args:
        pretrained, random: History-like (see :func:`plot_history`), e.g.
            ``{"loss": [...], "acc": [...], "val_loss": [...], "val_acc": [...]}``,
            or a list of phases.
        pretrained_source: the left run's weights, for its title and the footer.
    Returns ``path`` (the PNG).
    """
    runs = [merge_histories(pretrained), merge_histories(random)]
    for (_logs, epochs, _), which in zip(runs, ("pretrained", "random")):
        if not epochs:
            raise ValueError(f"plot_pretrained_vs_random: the {which} history is empty")
    names = [n for n in _metric_names(runs[0][0]) if n in _metric_names(runs[1][0])]
    if not names:
        raise ValueError(
            "plot_pretrained_vs_random: the two histories share no metric; got "
            f"{sorted(runs[0][0])} and {sorted(runs[1][0])}"
        )
    fig, axes = style.new_slide(len(names), 2, sharey="row")
    left = style.weights_label(pretrained_source).removeprefix("weights: ")
    headers = (f"{left.split(' (')[0]} weights", "random initialisation")
    for col, (logs, epochs, starts) in enumerate(runs):
        run_phases = list(phases) if phases is not None else list(RECIPE_PHASES if len(starts) == 2 else ())
        for row, name in enumerate(names):
            ax = axes[row][col]
            _draw_panel(ax, logs, epochs, starts, name, run_phases, headroom=False)
            ax.set_title(f"{headers[col]} · {_LABELS.get(name, name)}")
            if row < len(names) - 1:
                ax.set_xlabel("")
            if col:
                ax.set_ylabel("")
    for row, name in enumerate(names):  # one y range per row, both runs inside
        low, high = (f(r) for f, r in zip((min, max), zip(*(_data_range(run[0], name) for run in runs))))
        pad = 0.05 * (high - low or 1.0)
        low, high = low - pad, high + pad
        if any(len(run[2]) > 1 for run in runs):
            _add_headroom(axes[row][0], low, high)
        else:
            axes[row][0].set_ylim(low, high)
    axes[0][0].legend(loc="lower left")
    fig.suptitle(title)
    style.footer(fig, None, text=f"weights: left {left}; right random (untrained start)")
    return style.save(fig, path)
