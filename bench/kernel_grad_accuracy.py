"""Float32 error of the conv kernel gradient, per VGG16 layer shape: kernel rows, Winograd F(2x2, 3x3)
and F(4x4, 3x3), and Keras, each against a float64 reference.

Run it (imports TensorFlow unless ``--no-keras``)::

    PYTHONPATH=$PWD .venv/bin/python bench/kernel_grad_accuracy.py

For each of VGG16's 13 convolutions at ``--size`` (default 224), ``--batch``
images (default 2): ``x`` is a ReLU output (half zeros, like a conv input in
VGG16), ``dout`` a random gradient with half its entries zero (like one after
a ReLU's derivative). The reference is ``dkernel`` by kernel rows in float64;
each float32 result is reported as ``max|dkernel - reference| / max|reference|``.
The last column compares numvgg's F(4x4, 3x3) with Keras directly, the
quantity the parity tests bound (1e-3).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from conv_paths import vgg16_convs  # noqa: E402  (bench/ is on the path when run as a script)

from numvgg.ops.conv import kernel_grad_by_rows  # noqa: E402
from numvgg.ops.winograd import MATRICES  # noqa: E402
from numvgg.ops.winograd_grad import kernel_grad_winograd  # noqa: E402


def keras_kernel_grad(x: np.ndarray, dout: np.ndarray, filters: int) -> np.ndarray:
    """Keras' ``dkernel`` of a 3x3 'same' Conv2D at ``x``, upstream gradient ``dout``."""
    import keras
    import tensorflow as tf

    layer = keras.layers.Conv2D(filters, 3, padding="same")
    layer.build(x.shape)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(tf.constant(x)) * dout)
    return np.asarray(tape.gradient(loss, layer.kernel))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=2, help="images (default 2)")
    p.add_argument("--size", type=int, default=224, help="VGG16 input side (default 224)")
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: all 13)")
    p.add_argument("--no-keras", action="store_true", help="skip the Keras columns")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    columns = ["kernel rows", "winograd2", "winograd4"] + (
        [] if args.no_keras else ["keras", "winograd4 vs keras"]
    )
    print(
        f"batch {args.batch}, {args.size}x{args.size} input, float32 against float64 (max|a - b| / max|b|)\n"
    )
    print("| layer | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    worst = dict.fromkeys(columns, 0.0)
    for name, side, c, f in vgg16_convs(args.size):
        if args.layers is not None and name not in args.layers.split(","):
            continue
        x = np.maximum(rng.standard_normal((args.batch, side, side, c)), 0).astype(np.float32)
        dout = rng.standard_normal((args.batch, side, side, f)) * (
            rng.random((args.batch, side, side, f)) > 0.5
        )
        dout = dout.astype(np.float32)
        pads = (1, 1, 1, 1)
        ref = kernel_grad_by_rows(x.astype(np.float64), dout.astype(np.float64), (3, 3, c, f), pads)
        results = {
            "kernel rows": kernel_grad_by_rows(x, dout, (3, 3, c, f), pads),
            "winograd2": kernel_grad_winograd(x, dout, pads, MATRICES[2])[0],
            "winograd4": kernel_grad_winograd(x, dout, pads, MATRICES[4])[0],
        }
        errors = {k: np.abs(v - ref).max() / np.abs(ref).max() for k, v in results.items()}
        if not args.no_keras:
            theirs = keras_kernel_grad(x, dout, f)
            errors["keras"] = np.abs(theirs - ref).max() / np.abs(ref).max()
            errors["winograd4 vs keras"] = np.abs(results["winograd4"] - theirs).max() / np.abs(theirs).max()
        for k in columns:
            worst[k] = max(worst[k], errors[k])
        print(f"| {name} | " + " | ".join(f"{errors[k]:.1e}" for k in columns) + " |", flush=True)
    print("| **worst** | " + " | ".join(f"**{worst[k]:.1e}**" for k in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
