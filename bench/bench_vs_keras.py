"""numvgg against Keras-TensorFlow on the CPU: time, memory, and where the time goes.

Run it (the OpenBLAS variables are unset for this one command; see bench/README.md)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_vs_keras.py

Cases (``--cases``, comma separated; ratios are numvgg / Keras, lower is better):

============  =====================================================================  =======
case          what is timed                                                          goal
============  =====================================================================  =======
forward       ``predict_on_batch``, VGG16 without top, batch 8, 224x224, numvgg's    <= 1.3
              default conv algorithm
train_full    ``train_on_batch``, recipe head on VGG16, everything trainable, Adam,     <= 1.2
              binary cross-entropy, numvgg's fastest conv algorithm
train_frozen  the same with the VGG16 base frozen (the recipe's phase 1)             <= 0.9
memory        peak RSS of ``predict`` on 32 images without top, above the RSS        <= 2 GiB
              once the model is built (one fresh child process per framework)
winograd      ``forward`` with numvgg's fastest conv algorithm (Winograd F(4x4,3x3)) <= 0.8
============  =====================================================================  =======

"Fastest" is ``--conv-algorithm`` (default ``'winograd4'`` when numvgg offers
it), set with ``numvgg.config.using_conv_algorithm`` around numvgg's calls;
Keras is unchanged.

The recipe head is VGG16 (no top) + GlobalAveragePooling2D + Dense(512, relu) +
Dense(1, sigmoid). Both frameworks get the same weights (numvgg's random
weights copied into Keras with ``set_weights``) and the same random batch; the
script checks that they agree (output difference, first-step loss) before it
trusts any timing.

How timing is fair: numvgg and Keras live in one process and take turns
(numvgg, Keras, numvgg, Keras, ...), so a burst of load from elsewhere hits
both; the first ``--warmup`` calls of each are not timed (Keras traces its
``tf.function`` there, numvgg's Adam creates its slots); the table shows medians.

``--profile`` runs only numvgg, under cProfile, and prints the functions that
take the time (``tottime``: time inside the function itself, so BLAS calls show
up as ``numpy.matmul`` or ``numpy.dot``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import importlib
import io
import json
import os
import platform
import pstats
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Before TensorFlow is imported anywhere: quiet its C++ logs and pick the TF backend.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# The checkout's numvgg, even when it is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

CASES = ("forward", "train_full", "train_frozen", "memory", "winograd")
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
GIB = 2**30

# The goals from the issue; they are stated for batch 8, 224x224 (memory: 32 images).
GOALS = {
    "forward": ("<=", 1.3, "ratio <= 1.3"),
    "train_full": ("<=", 1.2, "ratio <= 1.2"),
    "train_frozen": ("<=", 0.9, "ratio <= 0.9"),
    "memory": ("<=", 2.0, "numvgg <= 2 GiB above the weights"),
    "winograd": ("<=", 0.8, "ratio <= 0.8"),
}
GOAL_BATCH, GOAL_SIZE, GOAL_MEMORY_IMAGES = 8, 224, 32

SEED = 20240601
LEARNING_RATE = 1e-5  # small, so a few timed steps cannot drive the random net into NaNs


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    """The options; ``--quick`` shrinks everything to a seconds-long smoke run."""
    p = argparse.ArgumentParser(
        description="Time and measure numvgg against Keras-TensorFlow "
        "on the CPU (same weights, same data, one process)."
    )
    p.add_argument(
        "--cases",
        default=None,
        help=f"comma-separated subset of {','.join(CASES)} (default: all; with --profile: forward)",
    )
    p.add_argument("--batch", type=int, help="batch size of the timed cases (8; --quick: 1)")
    p.add_argument("--size", type=int, help="image side, >= 32 (224; --quick: 32)")
    p.add_argument("--repeats", type=int, help="timed calls per framework and case (5; --quick: 1)")
    p.add_argument("--warmup", type=int, help="untimed calls per framework first (1)")
    p.add_argument(
        "--memory-images", type=int, help="images given to predict() in the memory case (32; --quick: 2)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS threads for numvgg and intra-op threads for TensorFlow "
        "(default: each library's own, one per core)",
    )
    p.add_argument(
        "--conv-algorithm",
        default=None,
        help="numvgg's fastest conv algorithm, used by the 'winograd', 'train_full' and "
        "'train_frozen' cases (default: 'winograd4' if numvgg offers it, else a name "
        "containing 'winograd')",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny run to check the script: 32x32, batch 1, 1 repeat, 2 memory images",
    )
    p.add_argument("--json", metavar="OUT.json", default=None, help="also write the results as JSON")
    p.add_argument(
        "--profile",
        action="store_true",
        help="profile numvgg only (cProfile, by function) instead of comparing",
    )
    p.add_argument("--profile-top", type=int, default=25, help="functions listed per profile (25)")
    p.add_argument("--child-memory", choices=("numvgg", "keras"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    # Options given on the command line win; --quick only changes the defaults.
    defaults = (
        {"batch": 1, "size": 32, "repeats": 1, "warmup": 1, "memory_images": 2}
        if args.quick
        else {
            "batch": GOAL_BATCH,
            "size": GOAL_SIZE,
            "repeats": 5,
            "warmup": 1,
            "memory_images": GOAL_MEMORY_IMAGES,
        }
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.cases is None:
        args.cases = ["forward"] if args.profile else list(CASES)
    else:
        args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
        unknown = [c for c in args.cases if c not in CASES]
        if unknown:
            p.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    if args.size < 32:
        p.error(f"--size must be >= 32 (VGG16 halves the image five times), got {args.size}")
    for name in ("batch", "repeats", "memory_images"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0, got {args.warmup}")
    return args


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what platform knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def blas_info() -> list[dict]:
    """Which BLAS (and OpenMP) libraries are loaded, their kernel and thread count."""
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "architecture", "num_threads", "version", "filepath")
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info()]


def machine_info(tf=None, keras=None) -> dict:
    """Everything a reader needs to compare two runs of this benchmark."""
    import numvgg

    info = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numvgg": numvgg.__version__,
        "openblas_env": {v: os.environ.get(v) for v in OPENBLAS_VARS},
        "blas": blas_info(),
    }
    if tf is not None:
        info["tensorflow"] = tf.__version__
        info["keras"] = keras.__version__
        info["tf_intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        info["tf_inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
        info["TF_ENABLE_ONEDNN_OPTS"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    return info


def print_machine(info: dict) -> None:
    print("## Machine")
    print(f"CPU: {info['cpu']}, {info['cpu_count']} logical cores ({info['cpus_usable']} usable)")
    print(f"Platform: {info['platform']}; Python {info['python']}")
    versions = f"numpy {info['numpy']}, numvgg {info['numvgg']}"
    if "tensorflow" in info:
        versions += f", tensorflow {info['tensorflow']}, keras {info['keras']}"
    print(f"Versions: {versions}")
    for var, value in info["openblas_env"].items():
        print(f"{var}: {'unset' if value is None else 'SET to ' + repr(value)}")
    for lib in info["blas"]:
        print(
            f"Thread pool: {lib['user_api']}/{lib['internal_api']} {lib['version']}, "
            f"kernel {lib['architecture']}, {lib['num_threads']} threads ({lib['filepath']})"
        )
    if "tensorflow" in info:
        print(
            f"TF threads: intra-op {info['tf_intra_op_threads']}, inter-op "
            f"{info['tf_inter_op_threads']} (0 = TF's default, one per core); "
            f"TF_ENABLE_ONEDNN_OPTS={info['TF_ENABLE_ONEDNN_OPTS']}"
        )


def load_average() -> float | None:
    """1-minute load average; above ~1 on this 2-core machine the timings are noisy."""
    with contextlib.suppress(OSError, AttributeError):
        return os.getloadavg()[0]
    return None


# ---------------------------------------------------------------------------
# Models and data, identical in both frameworks
# ---------------------------------------------------------------------------


def make_batch(batch: int, size: int, seed: int = SEED):
    """A random batch of 0..255 images after Caffe preprocessing, and 0/1 labels.

    Returns: ``x`` ``(batch, size, size, 3)`` float32, ``y`` ``(batch, 1)`` float32.
    """
    from numvgg.applications.vgg16 import preprocess_input

    rng = np.random.default_rng(seed)
    x = preprocess_input(rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32))
    y = rng.integers(0, 2, (batch, 1)).astype(np.float32)
    return x, y


def build_base_pair(keras, size: int):
    """numvgg's and Keras' VGG16 without top, the same random weights in both."""
    from numvgg import initializers
    from numvgg.applications.vgg16 import VGG16

    initializers.set_seed(SEED)
    ours = VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    theirs = keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def build_seed_pair(keras, size: int, frozen: bool):
    """The seed's transfer-learning model in both frameworks, compiled with Adam and BCE.

    VGG16 (no top) + GlobalAveragePooling2D + Dense(512, relu) + Dense(1, sigmoid);
    ``frozen=True`` sets the base's ``trainable = False`` before compiling (phase 1).
    """
    from numvgg.layers import Dense, GlobalAveragePooling2D
    from numvgg.models import Sequential
    from numvgg.optimizers import Adam

    base, keras_base = build_base_pair(keras, size)
    ours = Sequential(
        [base, GlobalAveragePooling2D(), Dense(512, activation="relu"), Dense(1, activation="sigmoid")]
    )
    theirs = keras.Sequential(
        [
            keras.Input(shape=(size, size, 3)),
            keras_base,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    theirs.set_weights(ours.get_weights())
    base.trainable = not frozen
    keras_base.trainable = not frozen
    ours.compile(optimizer=Adam(learning_rate=LEARNING_RATE), loss="binary_crossentropy")
    theirs.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE), loss="binary_crossentropy")
    return ours, theirs


def conv_flops(model) -> int:
    """Multiply-adds x 2 of every Conv2D in a built numvgg model, per image."""
    from numvgg.layers import Conv2D
    from numvgg.models import leaf_layers

    total = 0
    for layer in leaf_layers(model):
        if isinstance(layer, Conv2D):
            kh, kw, c, f = layer.params["kernel"].shape
            _, oh, ow, _ = layer.output_shape
            total += 2 * oh * ow * kh * kw * c * f
    return total


# ---------------------------------------------------------------------------
# numvgg's optional conv algorithm (the stretch goal)
# ---------------------------------------------------------------------------


def find_conv_algorithm_switch(requested: str | None):
    """numvgg's switch for its conv algorithm: ``(name, use, reason)``.

    ``use(name)`` is ``numvgg.config.using_conv_algorithm``, a context manager
    that runs numvgg with that algorithm and then restores the previous
    one. ``name`` is ``requested``, else ``'winograd4'`` (F(4x4, 3x3)), else the
    first of ``CONV_ALGORITHMS`` that contains 'winograd'. ``(None, None, reason)`` when numvgg has no such switch
    (older numvgg) or no such algorithm.
    """
    try:
        config = importlib.import_module("numvgg.config")
    except ImportError:
        return None, None, "numvgg has no conv_algorithm option (no numvgg.config)"
    use = getattr(config, "using_conv_algorithm", None)
    offered = tuple(getattr(config, "CONV_ALGORITHMS", ()))
    if use is None:
        return None, None, "numvgg has no conv_algorithm option (no numvgg.config.using_conv_algorithm)"
    name = requested or (
        "winograd4" if "winograd4" in offered else next((a for a in offered if "winograd" in a.lower()), None)
    )
    if name is None or name not in offered:
        return None, None, f"numvgg offers no conv algorithm {name or 'winograd'!r} (it has {list(offered)})"
    return name, use, "numvgg.config.using_conv_algorithm"


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


def seconds(fn) -> float:
    """Wall time of one call; garbage from the previous call is collected first, untimed."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_alternating(run_numvgg, run_keras, repeats: int, warmup: int):
    """Time two callables taking turns: numvgg, Keras, numvgg, Keras...

    Returns: two lists of ``repeats`` wall times in seconds (warm-up calls excluded).
    """
    for _ in range(warmup):
        run_numvgg()
        run_keras()
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(seconds(run_numvgg))
        theirs.append(seconds(run_keras))
    return ours, theirs


def relative_difference(a, b) -> float:
    """``max|a - b| / max|b|``: how far numvgg's numbers are from Keras'."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def timed_row(case: str, what: str, ours: list, theirs: list, **extra) -> dict:
    """One table row from two lists of times."""
    n_med, k_med = statistics.median(ours), statistics.median(theirs)
    return {
        "case": case,
        "what": what,
        "unit": "s",
        "numvgg": n_med,
        "keras": k_med,
        "ratio": n_med / k_med,
        "numvgg_times": ours,
        "keras_times": theirs,
        **extra,
    }


def case_forward(keras, args, pair, x):
    ours, theirs = pair
    check = relative_difference(ours.predict_on_batch(x), theirs.predict_on_batch(x))
    t_ours, t_theirs = time_alternating(
        lambda: ours.predict_on_batch(x), lambda: theirs.predict_on_batch(x), args.repeats, args.warmup
    )
    flops = conv_flops(ours) * x.shape[0]
    default = getattr(importlib.import_module("numvgg.config"), "conv_algorithm", lambda: "im2col")()
    return timed_row(
        "forward",
        f"predict_on_batch, VGG16 no top, batch {args.batch}, "
        f"{args.size}x{args.size}, default conv algorithm '{default}'",
        t_ours,
        t_theirs,
        check_rel_diff=check,
        conv_gflop=flops / 1e9,
        gflops={
            "numvgg": flops / 1e9 / statistics.median(t_ours),
            "keras": flops / 1e9 / statistics.median(t_theirs),
        },
    )


def case_train(keras, args, frozen: bool, x, y):
    ours, theirs = build_seed_pair(keras, args.size, frozen)
    name, use, _ = find_conv_algorithm_switch(args.conv_algorithm)
    algorithm = use(name) if use is not None else contextlib.nullcontext()
    with algorithm:
        # The warm-up's first step starts from identical weights: its losses must agree.
        first = (float(ours.train_on_batch(x, y)), float(theirs.train_on_batch(x, y)))
        t_ours, t_theirs = time_alternating(
            lambda: ours.train_on_batch(x, y),
            lambda: theirs.train_on_batch(x, y),
            args.repeats,
            max(args.warmup - 1, 0),
        )
    case = "train_frozen" if frozen else "train_full"
    what = (
        f"train_on_batch, recipe head, {'base frozen' if frozen else 'all trainable'}, "
        f"batch {args.batch}, {args.size}x{args.size}, Adam, BCE, numvgg conv algorithm "
        f"'{name or 'default'}'"
    )
    return timed_row(
        case,
        what,
        t_ours,
        t_theirs,
        first_loss={"numvgg": first[0], "keras": first[1]},
        check_rel_diff=abs(first[0] - first[1]) / max(abs(first[1]), 1e-30),
    )


def case_winograd(keras, args, pair, x):
    name, use, how = find_conv_algorithm_switch(args.conv_algorithm)
    what = (
        f"predict_on_batch, VGG16 no top, numvgg conv algorithm '{name or 'winograd'}', "
        f"batch {args.batch}, {args.size}x{args.size}"
    )
    if use is None:
        return {
            "case": "winograd",
            "what": what,
            "unit": "s",
            "numvgg": None,
            "keras": None,
            "ratio": None,
            "note": how,
        }
    ours, theirs = pair
    with use(name):
        check = relative_difference(ours.predict_on_batch(x), theirs.predict_on_batch(x))
        t_ours, t_theirs = time_alternating(
            lambda: ours.predict_on_batch(x), lambda: theirs.predict_on_batch(x), args.repeats, args.warmup
        )
    return timed_row(
        "winograd",
        what,
        t_ours,
        t_theirs,
        check_rel_diff=check,
        note=f"numvgg switched with {how}('{name}'); Keras unchanged",
    )


# ---------------------------------------------------------------------------
# Memory: one fresh child process per framework
# ---------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size now (Linux /proc; elsewhere the high-water mark)."""
    with contextlib.suppress(OSError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    return peak_rss_bytes()


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0), so building the
    model does not count towards the peak of ``predict``. False if impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """RSS high-water mark: VmHWM (honours :func:`reset_peak_rss`), else ru_maxrss."""
    with contextlib.suppress(OSError, AttributeError):
        match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
        if match:
            return int(match.group(1)) * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # macOS: bytes, Linux: KiB


def child_memory_main(args) -> None:
    """In the child: build the model, note the RSS, run ``predict`` once, print JSON."""
    from numvgg import initializers

    initializers.set_seed(SEED)
    x, _ = make_batch(args.memory_images, args.size)
    shape = (args.size, args.size, 3)
    if args.child_memory == "numvgg":
        from numvgg.applications.vgg16 import VGG16

        model = VGG16(include_top=False, weights=None, input_shape=shape)
        weights_bytes = sum(w.nbytes for w in model.get_weights())
    else:
        import tensorflow as tf

        if args.threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        import keras

        model = keras.applications.VGG16(include_top=False, weights=None, input_shape=shape)
        weights_bytes = sum(w.nbytes for w in model.get_weights())
    gc.collect()
    build_peak = peak_rss_bytes()
    baseline = rss_bytes()
    was_reset = reset_peak_rss()
    out = model.predict(x, verbose=0)  # Keras' and numvgg's default batch_size is 32
    peak = peak_rss_bytes()
    print(
        json.dumps(
            {
                "framework": args.child_memory,
                "weights_bytes": weights_bytes,
                "baseline_rss": baseline,
                "build_peak_rss": build_peak,
                "peak_rss": peak,
                "peak_reset": was_reset,
                "above_baseline": peak - baseline,
                "output_shape": list(out.shape),
            }
        )
    )


def run_memory_child(framework: str, args) -> dict:
    """Run this script as ``--child-memory FRAMEWORK`` in a fresh Python and read its JSON.

    A fresh process per case means the peak belongs to that case alone; the
    parent's ``RUSAGE_CHILDREN`` high-water mark cross-checks it.
    """
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-memory",
        framework,
        "--size",
        str(args.size),
        "--memory-images",
        str(args.memory_images),
    ]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"memory child for {framework} failed ({done.returncode}):\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result["rusage_children_maxrss"] = maxrss if sys.platform == "darwin" else maxrss * 1024
    return result


def case_memory(args) -> dict:
    ours, theirs = run_memory_child("numvgg", args), run_memory_child("keras", args)
    return {
        "case": "memory",
        "unit": "GiB",
        "what": f"peak RSS above the built model, predict on {args.memory_images} images "
        f"{args.size}x{args.size}, no top",
        "numvgg": ours["above_baseline"] / GIB,
        "keras": theirs["above_baseline"] / GIB,
        "ratio": ours["above_baseline"] / max(theirs["above_baseline"], 1),
        "detail": {"numvgg": ours, "keras": theirs},
    }


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------


def at_goal_config(case: str, args) -> bool:
    if case == "memory":
        return args.size == GOAL_SIZE and args.memory_images == GOAL_MEMORY_IMAGES
    return args.size == GOAL_SIZE and args.batch == GOAL_BATCH


def goal_met(row: dict, args) -> str:
    """'yes' / 'no' at the goal's own sizes, '-' elsewhere or when not measured."""
    op, limit, _ = GOALS[row["case"]]
    value = row["numvgg"] if row["case"] == "memory" else row["ratio"]
    if value is None or not at_goal_config(row["case"], args):
        return "-"
    return "yes" if (value <= limit if op == "<=" else value < limit) else "no"


def fmt(value, unit: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f} {unit}"


def render_table(rows: list[dict], args) -> str:
    """A Markdown table: case, what, numvgg, keras, ratio, goal, met."""
    lines = ["| case | what | numvgg | keras | ratio | goal | met |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(
            f"| {row['case']} | {row['what']} | {fmt(row['numvgg'], row['unit'])} | "
            f"{fmt(row['keras'], row['unit'])} | {ratio} | {GOALS[row['case']][2]} | "
            f"{goal_met(row, args)} |"
        )
    return "\n".join(lines)


def print_details(rows: list[dict]) -> None:
    """Per-case checks and raw numbers below the table."""
    print("\n## Checks and details")
    for row in rows:
        if "check_rel_diff" in row:
            print(
                f"{row['case']}: numvgg vs Keras relative difference {row['check_rel_diff']:.2e}"
                + (
                    f" (first-step loss numvgg {row['first_loss']['numvgg']:.6f}, "
                    f"Keras {row['first_loss']['keras']:.6f})"
                    if "first_loss" in row
                    else ""
                )
            )
        if "numvgg_times" in row:
            print(
                f"{row['case']}: numvgg times {_fmt_times(row['numvgg_times'])}; "
                f"Keras times {_fmt_times(row['keras_times'])}"
            )
        if "gflops" in row:
            print(
                f"{row['case']}: {row['conv_gflop']:.1f} GFLOP of convolution per batch; "
                f"numvgg {row['gflops']['numvgg']:.1f} GFLOP/s, Keras {row['gflops']['keras']:.1f} GFLOP/s"
            )
        if row["case"] == "memory":
            for name, d in row["detail"].items():
                print(
                    f"memory/{name}: weights {d['weights_bytes'] / 2**20:.1f} MiB, RSS after build "
                    f"{d['baseline_rss'] / GIB:.3f} GiB (build peak {d['build_peak_rss'] / GIB:.3f}), "
                    f"predict peak {d['peak_rss'] / GIB:.3f} GiB, above build "
                    f"{d['above_baseline'] / GIB:.3f} GiB{'' if d['peak_reset'] else ' (peak not reset)'}"
                )
        if "note" in row:
            print(f"{row['case']}: {row['note']}")


def _fmt_load(load) -> str:
    return "unknown" if load is None else f"{load:.2f}"


def _fmt_times(times) -> str:
    return "[" + ", ".join(f"{t:.3f}" for t in times) + "] s"


# ---------------------------------------------------------------------------
# Profile mode
# ---------------------------------------------------------------------------


def profile_numvgg(args) -> dict:
    """cProfile numvgg's forward (and the other timed cases asked for); print the top functions."""
    from numvgg import initializers
    from numvgg.applications.vgg16 import VGG16

    info = machine_info()
    print_machine(info)
    x, y = make_batch(args.batch, args.size)
    reports = {}
    for case in args.cases:
        algorithm = contextlib.nullcontext()
        if case in ("forward", "winograd"):
            if case == "winograd":
                name, use, reason = find_conv_algorithm_switch(args.conv_algorithm)
                if use is None:
                    print(f"\n(--profile skips 'winograd': {reason})")
                    continue
                algorithm = use(name)
            initializers.set_seed(SEED)
            model = VGG16(include_top=False, weights=None, input_shape=(args.size, args.size, 3))
            step = lambda model=model: model.predict_on_batch(x)  # noqa: E731
        elif case in ("train_full", "train_frozen"):
            model = _numvgg_seed_model(args.size, frozen=case == "train_frozen")
            step = lambda model=model: model.train_on_batch(x, y)  # noqa: E731
            name, use, _ = find_conv_algorithm_switch(args.conv_algorithm)
            if use is not None:
                algorithm = use(name)
        else:
            print(f"\n(--profile skips '{case}': only forward, winograd and train steps are profiled)")
            continue
        with algorithm:
            for _ in range(args.warmup):
                step()
            profiler = cProfile.Profile()
            start = time.perf_counter()
            profiler.enable()
            for _ in range(args.repeats):
                step()
            profiler.disable()
            wall = (time.perf_counter() - start) / args.repeats
        text = io.StringIO()
        text.write(
            "By time inside each function (tottime). NumPy ufuncs such as np.matmul and\n"
            "np.maximum are invisible to cProfile: their time (the BLAS calls included)\n"
            "counts as the tottime of the numvgg function that calls them.\n"
        )
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats("tottime").print_stats(args.profile_top)
        text.write("numvgg's own functions by cumulative time (callees included):\n")
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(
            r"numvgg[/\\]", args.profile_top
        )
        print(
            f"\n## Profile: numvgg {case}, batch {args.batch}, {args.size}x{args.size}, "
            f"{args.repeats} call(s), {wall:.3f} s per call (under the profiler)"
        )
        print(text.getvalue())
        reports[case] = {"seconds_per_call": wall, "text": text.getvalue()}
    return {"machine": info, "config": vars(args), "profile": reports}


def _numvgg_seed_model(size: int, frozen: bool):
    """numvgg's half of :func:`build_seed_pair`, without Keras."""
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
    model.compile(optimizer=Adam(learning_rate=LEARNING_RATE), loss="binary_crossentropy")
    return model


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def compare(args) -> dict:
    """Run the chosen cases, print the machine, the table and the details."""
    load_start = load_average()
    rows = []
    if "memory" in args.cases:  # first, before TensorFlow is loaded in this process
        rows.append(case_memory(args))
    import tensorflow as tf

    if args.threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    import keras

    info = machine_info(tf, keras)
    x, y = make_batch(args.batch, args.size)
    pair = None
    for case in args.cases:
        if case in ("forward", "winograd") and pair is None:
            pair = build_base_pair(keras, args.size)
        if case == "forward":
            rows.append(case_forward(keras, args, pair, x))
        elif case == "winograd":
            rows.append(case_winograd(keras, args, pair, x))
        elif case in ("train_full", "train_frozen"):
            rows.append(case_train(keras, args, case == "train_frozen", x, y))
    rows.sort(key=lambda r: CASES.index(r["case"]))
    load_end = load_average()

    print_machine(info)
    print(
        f"Load average (1 min): {_fmt_load(load_start)} at start, {_fmt_load(load_end)} at end"
        + ("  -- machine busy, timings are noisy" if max(load_start or 0, load_end or 0) > 1.0 else "")
    )
    print(
        f"\n## numvgg / Keras: batch {args.batch}, {args.size}x{args.size}, median of "
        f"{args.repeats} alternating call(s) after {args.warmup} warm-up"
        + ("  (--quick: the goals apply to batch 8, 224x224 only)" if args.quick else "")
    )
    print(render_table(rows, args))
    print_details(rows)
    for row in rows:
        row["met"] = goal_met(row, args)
    return {"machine": info, "config": vars(args), "load_average": [load_start, load_end], "results": rows}


def limit_threads(n: int | None):
    """Cap numvgg's BLAS at ``n`` threads for the rest of the process (None: leave as is).

    Returns the threadpoolctl controller; keep it alive while the limit should hold."""
    if n is None:
        return None
    with contextlib.suppress(ImportError, AttributeError):  # numvgg's own pool, if it has one
        importlib.import_module("numvgg.config").set_num_threads(n)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def main(argv=None) -> int:
    args = parse_args(argv)
    blas_limit = limit_threads(args.threads)  # noqa: F841  (held until exit)
    if args.child_memory:
        child_memory_main(args)
        return 0
    report = profile_numvgg(args) if args.profile else compare(args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
