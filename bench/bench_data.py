"""Decode + augment time per image: image_dataset_from_directory, then augmentation in map().

Generates a 2,000-image JPEG folder (two classes, 375x500 photos-like
pictures, as the cats-vs-dogs set has) once, then times one epoch at 150x150:

1. decoding + resizing alone (``image_dataset_from_directory``, which
   decodes each batch's files in threads);
2. the same plus ``RandomFlip`` + ``RandomRotation`` + ``RandomZoom`` in
   ``map(..., num_parallel_calls=AUTOTUNE)``, with ``prefetch``;
3. optionally (``--conv-base``) one frozen-base forward pass of VGG16's conv
   base per batch, to compare: the epoch should be bound by the base.

Usage::

    python bench/bench_data.py [--folder /tmp/numvgg_bench_jpegs] [--images 2000] [--conv-base]

Prints seconds per epoch and milliseconds per image. Figures depend on the
machine and its load: report them with both.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from PIL import Image

from numvgg.data import AUTOTUNE, image_dataset_from_directory
from numvgg.layers import RandomFlip, RandomRotation, RandomZoom


def make_folder(root: str, count: int) -> None:
    """``count`` JPEGs, half per class, 375x500 with smooth colour and noise (quality 90)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:375, 0:500].astype(np.float32)
    for i in range(count):
        folder = os.path.join(root, ("cats", "dogs")[i % 2])
        path = os.path.join(folder, f"{i:05d}.jpg")
        if os.path.exists(path):
            continue
        os.makedirs(folder, exist_ok=True)
        a, b, c = rng.uniform(10, 60, 3)
        photo = np.stack(
            [(np.sin(xx / a) + 1) * 110, (np.cos(yy / b) + 1) * 110, (np.sin((xx + yy) / c) + 1) * 110], -1
        ) + rng.normal(0, 10, (375, 500, 3))
        Image.fromarray(photo.clip(0, 255).astype(np.uint8)).save(path, quality=90)


def timed_epoch(ds) -> tuple[float, int]:
    start, images = time.perf_counter(), 0
    for x, _ in ds:
        images += len(x)
    return time.perf_counter() - start, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", default="/tmp/numvgg_bench_jpegs")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--conv-base", action="store_true", help="also time the frozen conv base")
    args = parser.parse_args()

    make_folder(args.folder, args.images)
    ds = image_dataset_from_directory(
        args.folder,
        image_size=(150, 150),
        batch_size=args.batch_size,
        label_mode="binary",
        seed=0,
        verbose=False,
    )
    seconds, n = timed_epoch(ds)
    print(
        f"decode + resize:            {seconds:7.2f} s/epoch  {1000 * seconds / n:6.2f} ms/image  ({n} images)"
    )

    flip, rotate, zoom = (
        RandomFlip("horizontal", seed=0),
        RandomRotation(0.1, seed=1),
        RandomZoom(0.2, seed=2),
    )

    def augment(x, y):
        # Layers called from several threads draw in a nondeterministic order: fine for timing.
        return zoom(rotate(flip(x, training=True), training=True), training=True), y

    augmented = ds.map(augment, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    seconds_aug, n = timed_epoch(augmented)
    print(f"decode + resize + augment:  {seconds_aug:7.2f} s/epoch  {1000 * seconds_aug / n:6.2f} ms/image")

    if args.conv_base:
        from numvgg.applications.vgg16 import VGG16

        base = VGG16(weights=None, include_top=False, input_shape=(150, 150, 3))
        start = time.perf_counter()
        for x, _ in ds.take(4):
            base(x)
        per_image = (time.perf_counter() - start) / (4 * args.batch_size)
        print(
            f"frozen conv base forward:   {per_image * n:7.2f} s/epoch  {1000 * per_image:6.2f} ms/image"
            f"  (from 4 batches)"
        )
        print(
            f"decode + augment share of a frozen-base epoch: "
            f"{100 * seconds_aug / (seconds_aug + per_image * n):.1f}%"
        )


if __name__ == "__main__":
    main()
