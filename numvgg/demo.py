"""The main job: the original blog post's two-phase transfer-learning recipe, end to end.

``make_demo_images`` draws a small two-class image set (``circles`` vs
``stripes``) deterministically, as JPEG files in ``train/<class>/`` and
``validation/<class>/``. ``run_recipe`` then does what the original blog post does with Keras:

1. VGG16 conv base without top (ImageNet weights when they are in Keras'
   cache, random initialisation otherwise, said in one line);
2. ``Sequential([conv_base, GlobalAveragePooling2D(), Dense(512, relu), Dense(1, sigmoid)])``;
3. phase 1: ``conv_base.trainable = False``, ``Adam(1e-3)``, binary cross-entropy, ``fit``;
4. phase 2: unfreeze ``block5``, recompile with a small rate, fine-tune;
5. save the weights and a PNG of the training curves.
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
    period = rng.uniform(4.0, 8.0)           # fine stripes: a texture, not an outline
    yy, xx = np.mgrid[0:size, 0:size]
    phase = (xx * math.cos(angle) + yy * math.sin(angle)) / period
    mask = (np.sin(2 * math.pi * phase) > 0)[..., None]
    color = rng.integers(0, 256, size=3)
    img = np.where(mask, color, _background(rng, size)).astype(np.uint8)
    return Image.fromarray(img)


def make_demo_images(root: str, n_train: int = 100, n_val: int = 50, size: int = 64,
                     seed: int = 1234) -> tuple[str, str]:
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
    history_phase1: object
    history_phase2: object
    val_acc: float
    weights_path: str
    curves_path: str
    used_imagenet: bool
    seconds: float


def _conv_base(image_size, weights, log):
    from .applications.vgg16 import VGG16
    from .io.download import find_cached_vgg16_weights
    shape = (image_size, image_size, 3)
    if weights == "imagenet":
        path = find_cached_vgg16_weights(include_top=False)
        if path is None:
            log("ImageNet weights not found in Keras' cache; using random initialisation "
                "(run `numvgg weights --fetch` to get them).")
            return VGG16(weights=None, include_top=False, input_shape=shape), False
        return VGG16(weights=path, include_top=False, input_shape=shape), True
    return VGG16(weights=weights, include_top=False, input_shape=shape), weights is not None


def run_recipe(train_dir: str, val_dir: str, out_dir: str, image_size: int = 64,
               batch_size: int = 16, epochs: int = 60, fine_tune_epochs: int = 3,
               learning_rate: float = 1e-3, fine_tune_learning_rate: float = 1e-5,
               weights="imagenet", seed: int = 0, verbose="auto", log=print,
               augment: bool = False) -> RecipeResult:
    """The original blog post's recipe on image folders; see the module docstring.

    ``augment=True`` puts Chollet's (2nd edition) augmentation in front of the
    conv base: ``RandomFlip('horizontal')``, ``RandomRotation(0.1)``,
    ``RandomZoom(0.2)``, active in ``fit`` only. The images then differ every
    epoch, so the frozen base's features are not cached.
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
    train_ds = image_dataset_from_directory(train_dir, label_mode="binary", batch_size=batch_size,
                                            image_size=(image_size, image_size), seed=seed)
    val_ds = image_dataset_from_directory(val_dir, label_mode="binary", batch_size=batch_size,
                                          image_size=(image_size, image_size), shuffle=False)
    log(f"Classes: {train_ds.class_names}")
    train_ds = train_ds.map(lambda x, y: (preprocess_input(x), y))
    val_ds = val_ds.map(lambda x, y: (preprocess_input(x), y))

    conv_base, used_imagenet = _conv_base(image_size, weights, log)
    model = Sequential(name="sequential")
    if augment:
        # On preprocessed pixels rather than raw ones (Chollet): the same images, since
        # flips, reflect-filled warps and bilinear blends commute with a per-channel shift.
        from .layers import RandomFlip, RandomRotation, RandomZoom
        model.add(RandomFlip("horizontal", seed=seed, input_shape=(image_size, image_size, 3)))
        model.add(RandomRotation(0.1, seed=seed + 1))
        model.add(RandomZoom(0.2, seed=seed + 2))
    model.add(conv_base)
    model.add(GlobalAveragePooling2D())
    model.add(Dense(512, activation="relu"))
    model.add(Dense(1, activation="sigmoid"))
    conv_base.trainable = False
    model.summary(print_fn=log)

    # cache_frozen_features: the frozen base runs once per image, not once per epoch
    # (Keras' "fast feature extraction", done inside fit; the numbers are the same).
    model.compile(optimizer=Adam(learning_rate=learning_rate), loss="binary_crossentropy",
                  metrics=["acc"], cache_frozen_features=not augment)
    log("Phase 1: conv base frozen, training the new head")
    history1 = model.fit(train_ds, epochs=epochs, validation_data=val_ds, verbose=verbose)

    # Phase 2: unfreeze block5 only, as the original blog post does, and fine-tune with a small rate.
    conv_base.trainable = True
    set_trainable = False
    for layer in conv_base.layers:
        if layer.name == "block5_conv1":
            set_trainable = True
        layer.trainable = set_trainable
    model.compile(optimizer=Adam(learning_rate=fine_tune_learning_rate), loss="binary_crossentropy",
                  metrics=["acc"])
    log("Phase 2: block5 unfrozen, fine-tuning")
    history2 = model.fit(train_ds, epochs=epochs + fine_tune_epochs, initial_epoch=epochs,
                         validation_data=val_ds, verbose=verbose)

    weights_path = os.path.join(out_dir, "seed_model.weights.h5")
    model.save_weights(weights_path)
    curves_path = os.path.join(out_dir, "training_curves.png")
    plot_history([history1, history2], curves_path,
                 title="numvgg: the original blog post's recipe (frozen base, then block5 fine-tuned)",
                 weights_source="imagenet" if used_imagenet else "random")
    val_acc = float(history2.history["val_acc"][-1])
    return RecipeResult(history1, history2, val_acc, weights_path, curves_path, used_imagenet,
                        time.time() - start)
