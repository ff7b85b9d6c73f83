"""Where one training step's time goes, phase by phase (numvgg alone, no TensorFlow).

Run it (the OpenBLAS variables are unset for this one command; see bench/README.md)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=$PWD nice .venv/bin/python bench/train_phases.py

The model is the one of ``bench_vs_keras.py``'s ``train_full`` case: VGG16
without top + GlobalAveragePooling2D + Dense(512, relu) + Dense(1, sigmoid),
everything trainable (``--frozen``: the base frozen), Adam, binary
cross-entropy, batch 8 at 224x224, conv algorithm ``--conv-algorithm``
(default ``'winograd4'``). After ``--warmup`` untimed steps it times
``--repeats`` calls of ``train_on_batch``. During them, each phase's function
is wrapped in a wall-clock timer:

=====================  =====================================================
phase                  function timed
=====================  =====================================================
forward: conv          ``numvgg.ops.conv.conv2d_forward`` (bias included)
forward: ReLU          the activation inside ``Conv2D`` / ``Dense``
forward: max-pool      ``numvgg.ops.pooling.maxpool2d_forward`` (with argmax)
backward: ReLU         the activation's derivative inside ``Conv2D`` / ``Dense``
backward: max-pool     ``numvgg.ops.pooling.maxpool2d_backward``
backward: conv dx      ``numvgg.ops.conv.stride1_input_grad``
backward: conv dkernel the kernel gradient (``conv.kernel_gradient``)
backward: conv dbias   the bias gradient (``conv.bias_gradient``)
Adam update            ``Optimizer.apply`` (all weights)
everything else        the step's time minus the phases above
=====================  =====================================================

The table gives, per phase, the minimum over the repeats of its time within
one step, and its share of the fastest step. The wrappers call the real
functions, so the step computes exactly what it would unwrapped; the few
microseconds each wrapper adds (about 100 calls a step) are negligible.
The machine's load average is printed too: on a shared machine only the
shares are meaningful.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SEED = 20240601


def build_model(size: int, frozen: bool):
    """The recipe model of ``bench_vs_keras.py``'s train cases, compiled with Adam and BCE."""
    from numvgg import initializers
    from numvgg.applications.vgg16 import VGG16
    from numvgg.layers import Dense, GlobalAveragePooling2D
    from numvgg.models import Sequential
    from numvgg.optimizers import Adam

    initializers.set_seed(SEED)
    base = VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    model = Sequential(
        [base, GlobalAveragePooling2D(), Dense(512, activation="relu"), Dense(1, activation="sigmoid")]
    )
    base.trainable = not frozen
    model.compile(optimizer=Adam(learning_rate=1e-5), loss="binary_crossentropy")
    return model


def make_batch(batch: int, size: int):
    """Random 0..255 images after Caffe preprocessing, and random 0/1 labels."""
    from numvgg.applications.vgg16 import preprocess_input

    rng = np.random.default_rng(SEED)
    x = preprocess_input(rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32))
    y = rng.integers(0, 2, (batch, 1)).astype(np.float32)
    return x, y


def phase_targets():
    """``(phase, owner, attribute)``: ``getattr(owner, attribute)`` is the function to time."""
    from numvgg.layers.activation_mixin import ActivationMixin
    from numvgg.ops import conv, pooling
    from numvgg.optimizers.base import Optimizer

    return [
        ("forward: conv", conv, "conv2d_forward"),
        ("forward: ReLU", ActivationMixin, "_activate"),
        ("forward: max-pool", pooling, "maxpool2d_forward"),
        ("backward: ReLU", ActivationMixin, "_activation_backward"),
        ("backward: max-pool", pooling, "maxpool2d_backward"),
        ("backward: conv dx", conv, "stride1_input_grad"),
        ("backward: conv dkernel", conv, "kernel_gradient"),
        ("backward: conv dbias", conv, "bias_gradient"),
        ("Adam update", Optimizer, "apply"),
    ]


@contextlib.contextmanager
def timed_phases(totals: dict):
    """Wrap every phase's function so its wall time adds to ``totals[phase]``.

    Modules look their functions up by name at call time, and the layers call
    the ops through their modules, so replacing the attribute is enough.
    Nested calls of the same phase are counted once (the outermost).
    """
    saved = []
    depth = defaultdict(int)
    for phase, owner, attribute in phase_targets():
        if not hasattr(owner, attribute):
            continue  # an older numvgg without this function: the table says so
        original = owner.__dict__[attribute]

        def make(original, phase):
            @functools.wraps(original)
            def timed(*args, **kwargs):
                depth[phase] += 1
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    depth[phase] -= 1
                    if depth[phase] == 0:
                        totals[phase] += time.perf_counter() - start

            return timed

        saved.append((owner, attribute, original))
        setattr(owner, attribute, make(original, phase))
    try:
        yield
    finally:
        for owner, attribute, original in saved:
            setattr(owner, attribute, original)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8, help="images per step (default 8)")
    p.add_argument("--size", type=int, default=224, help="image side (default 224)")
    p.add_argument("--repeats", type=int, default=3, help="timed steps (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    p.add_argument("--frozen", action="store_true", help="freeze the VGG16 base (the recipe's phase 1)")
    p.add_argument(
        "--conv-algorithm", default="winograd4", help="numvgg.config conv algorithm (default winograd4)"
    )
    p.add_argument("--threads", type=int, default=None, help="numvgg.config.set_num_threads (default: cores)")
    args = p.parse_args(argv)

    import numvgg.config

    if args.threads is not None:
        numvgg.config.set_num_threads(args.threads)
    x, y = make_batch(args.batch, args.size)
    model = build_model(args.size, args.frozen)
    load_start = os.getloadavg()[0]
    steps = []  # one dict per timed step: phase -> seconds, plus "step"
    with numvgg.config.using_conv_algorithm(args.conv_algorithm):
        for _ in range(args.warmup):
            model.train_on_batch(x, y)
        for _ in range(args.repeats):
            totals = defaultdict(float)
            with timed_phases(totals):
                start = time.perf_counter()
                model.train_on_batch(x, y)
                totals["step"] = time.perf_counter() - start
            steps.append(totals)
    load_end = os.getloadavg()[0]

    phases = [phase for phase, _, _ in phase_targets()]
    fastest = min(s["step"] for s in steps)
    best = {phase: min(s[phase] for s in steps) for phase in phases}
    other = min(s["step"] - sum(s[phase] for phase in phases) for s in steps)
    print(
        f"numvgg train_on_batch, {'base frozen' if args.frozen else 'all trainable'}, "
        f"conv algorithm {args.conv_algorithm!r}, batch {args.batch}, {args.size}x{args.size}, "
        f"threads {numvgg.config.num_threads()}"
    )
    print(f"load average {load_start:.2f} at the start, {load_end:.2f} at the end")
    print("steps: " + ", ".join(f"{s['step']:.3f}" for s in steps) + " s\n")
    print("| phase | seconds (min over steps) | share of the fastest step |")
    print("|---|---|---|")
    for phase, owner, attribute in phase_targets():
        if not hasattr(owner, attribute):
            print(f"| {phase} | - | not in this numvgg ({attribute}) |")
            continue
        print(f"| {phase} | {best[phase]:.3f} | {best[phase] / fastest:.0%} |")
    print(f"| everything else | {other:.3f} | {other / fastest:.0%} |")
    print(f"| **step** | **{fastest:.3f}** | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
