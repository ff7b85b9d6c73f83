"""Time every convolution path on VGG16's 13 layer shapes: the table behind ``'auto'``.

Run it (numvgg alone, no TensorFlow)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=$PWD .venv/bin/python bench/conv_paths.py

For each VGG16 convolution (batch ``--batch``, 224x224 input, random float32
data) it prints the median forward time of every path in
``numvgg.config.CONV_ALGORITHMS`` (aliases and ``'auto'`` excluded), with
``--backward`` the forward + backward time too, and the path
:func:`numvgg.ops.conv.auto_path` picks. It also prints each path's float32
error against a float64 reference of the same layer (``max|a - b| / max|b|``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from numvgg.ops.conv import auto_path, conv2d_backward, conv2d_forward

PATHS = ("im2col", "kernel_rows", "winograd2", "winograd4")
# (name, input side, C, F) of VGG16's convolutions at 224x224.
VGG16_CONVS = [
    ("block1_conv1", 224, 3, 64),
    ("block1_conv2", 224, 64, 64),
    ("block2_conv1", 112, 64, 128),
    ("block2_conv2", 112, 128, 128),
    ("block3_conv1", 56, 128, 256),
    ("block3_conv2", 56, 256, 256),
    ("block3_conv3", 56, 256, 256),
    ("block4_conv1", 28, 256, 512),
    ("block4_conv2", 28, 512, 512),
    ("block4_conv3", 28, 512, 512),
    ("block5_conv1", 14, 512, 512),
    ("block5_conv2", 14, 512, 512),
    ("block5_conv3", 14, 512, 512),
]


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backward", action="store_true", help="also time forward + backward")
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: all 13)")
    args = p.parse_args(argv)
    layers = [c for c in VGG16_CONVS if args.layers is None or c[0] in args.layers.split(",")]
    rng = np.random.default_rng(0)
    header = "| layer | " + " | ".join(PATHS) + " | auto picks | float32 error (" + ", ".join(PATHS) + ") |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, side, c, f in layers:
        x = np.maximum(rng.standard_normal((args.batch, side, side, c)), 0).astype(np.float32)
        kernel = (rng.standard_normal((3, 3, c, f)) / np.sqrt(9 * c)).astype(np.float32)
        ref, _ = conv2d_forward(
            x[:1].astype(np.float64), kernel.astype(np.float64), None, (1, 1), "same", "im2col"
        )
        cells, errors = [], []
        for path in PATHS:
            out, _ = conv2d_forward(x[:1], kernel, None, (1, 1), "same", path)
            errors.append(np.abs(out - ref).max() / np.abs(ref).max())

            def run(path=path, x=x, kernel=kernel):
                out, cache = conv2d_forward(x, kernel, None, (1, 1), "same", path)
                if args.backward:
                    conv2d_backward(out, cache)

            cells.append(f"{median_time(run, args.repeats):.3f}")
        pick = auto_path(x.shape, kernel.shape, (1, 1))
        print(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {pick} | "
            + ", ".join(f"{e:.1e}" for e in errors)
            + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
