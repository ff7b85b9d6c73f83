"""Time every convolution path on VGG16's 13 layer shapes: the table behind ``'auto'``.

Run it (numvgg alone, no TensorFlow)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=$PWD .venv/bin/python bench/conv_paths.py

For each VGG16 convolution (batch ``--batch``, 224x224 input, random float32
data) it prints the median forward time of every path in
``numvgg.config.CONV_ALGORITHMS`` (aliases and ``'auto'`` excluded), with
``--backward`` the forward + backward time too, and the path
:func:`numvgg.ops.conv.auto_path` picks. It also prints each path's float32
error against a float64 reference of the same layer (``max|a - b| / max|b|``).

``--phases`` prints instead where Winograd's forward spends its time, phase by
phase (:func:`numvgg.ops.winograd._run_chunk`: gathering each tile's columns,
``B^T`` across the columns, ``B^T`` down the rows, the ``a*a`` matrix products, bias, ``A^T``, ReLU,
scatter into the output), for one worker's piece (the first of
:func:`numvgg.ops.winograd._pieces`) on one thread with BLAS on one thread, the way
each worker runs; ``--m 2`` for F(2x2, 3x3). The last line compares the
products with the bound: their GFLOP at the measured GEMM rate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from numvgg.applications.vgg16 import ARCH
from numvgg.ops import winograd
from numvgg.ops.conv import auto_path, conv2d_backward, conv2d_forward

PATHS = ("im2col", "kernel_rows", "winograd2", "winograd4")


def vgg16_convs(size: int = 224) -> list[tuple[str, int, int, int]]:
    """``(name, input side, C, F)`` of VGG16's 13 convolutions on ``size x size`` images,
    from :data:`numvgg.applications.vgg16.ARCH` (each block halves the side)."""
    convs, c, side = [], 3, size
    for block, (n_convs, filters) in enumerate(ARCH, start=1):
        for i in range(1, n_convs + 1):
            convs.append((f"block{block}_conv{i}", side, c, filters))
            c = filters
        side //= 2
    return convs


VGG16_CONVS = vgg16_convs()


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


PHASES = ("gather", "B^T columns", "B^T rows", "products", "bias", "A^T", "ReLU", "scatter")


class PhaseClock:
    """Called after each phase of a chunk: adds the time since the last call to that phase."""

    def __init__(self):
        self.spent = dict.fromkeys(PHASES, 0.0)
        self.last = time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.spent[phase] += now - self.last
        self.last = now


def phase_times(x, kernel, bias, m: int, repeats: int) -> tuple[dict, float]:
    """Seconds per phase (min over ``repeats``) of the first piece of a 'same'
    Winograd forward with bias and ReLU, one thread; and that piece's GFLOP of products."""
    from threadpoolctl import threadpool_limits

    u = winograd.transform_kernel(kernel, m)
    n, h, w, c = x.shape
    f = kernel.shape[3]
    plan = winograd._plan(x.shape, u.shape, (1, 1, 1, 1), (h, w), m, None, x.dtype)
    piece = winograd._pieces(n, plan.th)[0]
    chunks, nb, t = winograd._piece_chunks(plan, piece)
    out = np.empty((n, h, w, f), x.dtype)
    best = {}
    with threadpool_limits(1, "blas"):
        for _ in range(repeats):
            ws = winograd._Workspace(nb, t, plan.tw, c, f, m, x.dtype)
            clock = PhaseClock()
            for chunk in chunks:
                clock.last = time.perf_counter()
                winograd._run_chunk(ws, plan, x, u, bias, True, out, chunk, clock)
            best = {k: min(best.get(k, np.inf), v) for k, v in clock.spent.items()}
    images, rows = piece
    tiles = (images.stop - images.start) * (rows.stop - rows.start) * plan.tw
    return best, (m + 2) ** 2 * tiles * c * f * 2 / 1e9


def print_phases(layers, batch: int, m: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    print(f"Winograd F({m}x{m}, 3x3) forward, one piece of batch {batch} on one thread (ms)\n")
    header = "| layer | " + " | ".join(PHASES) + " | total | products GFLOP/s |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    totals = dict.fromkeys(PHASES, 0.0)
    gflop = 0.0
    for name, side, c, f in layers:
        x = np.maximum(rng.standard_normal((batch, side, side, c)), 0).astype(np.float32)
        kernel = (rng.standard_normal((3, 3, c, f)) / np.sqrt(9 * c)).astype(np.float32)
        bias = rng.standard_normal(f).astype(np.float32)
        spent, layer_gflop = phase_times(x, kernel, bias, m, repeats)
        gflop += layer_gflop
        for k in PHASES:
            totals[k] += spent[k]
        cells = " | ".join(f"{spent[k] * 1e3:.1f}" for k in PHASES)
        rate = layer_gflop / spent["products"]
        print(f"| {name} | {cells} | {sum(spent.values()) * 1e3:.1f} | {rate:.0f} |", flush=True)
    cells = " | ".join(f"**{totals[k] * 1e3:.0f}**" for k in PHASES)
    print(f"| **all** | {cells} | **{sum(totals.values()) * 1e3:.0f}** | {gflop / totals['products']:.0f} |")
    share = totals["products"] / sum(totals.values())
    print(
        f"\nproducts (one piece): {gflop:.1f} GFLOP in {totals['products']:.3f} s ({share:.0%} of the time); "
        f"everything else: {sum(totals.values()) - totals['products']:.3f} s"
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backward", action="store_true", help="also time forward + backward")
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: all 13)")
    p.add_argument("--phases", action="store_true", help="Winograd's forward, phase by phase")
    p.add_argument("--m", type=int, default=4, choices=(2, 4), help="Winograd size for --phases")
    args = p.parse_args(argv)
    layers = [c for c in VGG16_CONVS if args.layers is None or c[0] in args.layers.split(",")]
    if args.phases:
        print_phases(layers, args.batch, args.m, args.repeats)
        return
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
