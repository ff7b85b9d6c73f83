"""Plots with matplotlib, saved as PNG (also callable from Python).

Only the Agg backend is used, so plots work on machines without a screen.
"""
from __future__ import annotations

import os


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
