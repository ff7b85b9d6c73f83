"""Float32 error of every conv algorithm against Keras, layer by layer, on VGG16.

Run it (imports TensorFlow)::

    PYTHONPATH=$PWD .venv/bin/python bench/conv_accuracy.py [--size 224] [--batch 2]

numvgg's VGG16 without top gets seeded random weights (Glorot, as Keras
initialises it), Keras' VGG16 receives them with ``set_weights``, and both
run the same batch of random 0..255 images after Caffe preprocessing. For
each algorithm it prints, for every convolution and pooling layer,
``max|numvgg - keras| / max|keras|`` of that layer's output, both networks
running end to end (so errors can accumulate from layer to layer, as they do
in use). ``--points`` also measures F(4x4, 3x3) with the textbook points
``0, ±1, ±2, ∞`` and with ``0, ±1, ±1/2, ∞`` (numvgg uses ``0, ±1, 1/2, -2, ∞``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

ALGORITHMS = ("im2col", "kernel_rows", "winograd2", "winograd4", "auto")


def layer_errors(ours, keras_outputs, x) -> list[tuple[str, float]]:
    """Run numvgg's model layer by layer; error of each layer against Keras'."""
    from numvgg.models import leaf_layers

    errors = []
    for layer in leaf_layers(ours):
        x = layer(x)
        if layer.name in keras_outputs:
            ref = keras_outputs[layer.name]
            errors.append((layer.name, float(np.abs(x - ref).max() / np.abs(ref).max())))
    return errors


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--points", action="store_true", help="also the textbook points for F(4x4, 3x3)")
    args = p.parse_args(argv)

    import keras

    from numvgg import config, initializers
    from numvgg.applications.vgg16 import VGG16, preprocess_input
    from numvgg.ops import winograd

    initializers.set_seed(20240601)
    ours = VGG16(include_top=False, weights=None, input_shape=(args.size, args.size, 3))
    theirs = keras.applications.VGG16(include_top=False, weights=None, input_shape=(args.size, args.size, 3))
    theirs.set_weights(ours.get_weights())
    rng = np.random.default_rng(0)
    x = preprocess_input(rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype(np.float32))
    names = [layer.name for layer in theirs.layers[1:]]
    probe = keras.Model(theirs.input, [theirs.get_layer(n).output for n in names])
    keras_outputs = {n: np.asarray(o) for n, o in zip(names, probe(x))}

    runs = {}
    for algorithm in ALGORITHMS:
        with config.using_conv_algorithm(algorithm):
            runs[algorithm] = layer_errors(ours, keras_outputs, x)
    for label, points in (
        [("0, ±1, ±2", winograd.POINTS_F4_TEXTBOOK), ("0, ±1, ±1/2", winograd.POINTS_F4_HALVES)]
        if args.points
        else []
    ):
        saved = winograd.MATRICES[4]
        winograd.MATRICES[4] = winograd.winograd_matrices(4, points)
        try:
            with config.using_conv_algorithm("winograd4"):
                runs[f"winograd4 ({label})"] = layer_errors(ours, keras_outputs, x)
        finally:
            winograd.MATRICES[4] = saved

    print(
        f"VGG16 without top, {args.batch} images {args.size}x{args.size}, float32; "
        "max|numvgg - keras| / max|keras| per layer"
    )
    print("| layer | " + " | ".join(runs) + " |")
    print("|---|" + "---|" * len(runs))
    for i, (name, _) in enumerate(runs[ALGORITHMS[0]]):
        print(f"| {name} | " + " | ".join(f"{runs[a][i][1]:.1e}" for a in runs) + " |")
    print("| **worst** | " + " | ".join(f"**{max(e for _, e in runs[a]):.1e}**" for a in runs) + " |")


if __name__ == "__main__":
    main()
