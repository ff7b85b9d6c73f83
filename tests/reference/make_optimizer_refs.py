"""Record Keras' optimizer updates into tests/reference/optimizers.npz (needs Keras).

    PYTHONPATH=. python tests/reference/make_optimizer_refs.py

tests/test_optimizer_reference.py then compares numvgg's optimizers with these
numbers without importing TensorFlow, so a dropped Nesterov term or an
``abs(g)`` in RMSprop fails in the fast ``-m "not keras"`` loop too.

The file holds, for every case: the Keras optimizer's config, and the weights
after each of STEPS updates; plus the shared starting weights and gradients
and the Keras / TensorFlow versions that produced it. Rerun it (and commit the
file) when a case is added or Keras changes its rules.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "optimizers.npz"
SHAPES = [(3, 4), (5,), (2, 1, 3)]
STEPS = 4

# (case id, Keras class name, keyword arguments): every term of every rule in play.
CASES = [
    ("sgd", "SGD", {"learning_rate": 0.1}),
    ("sgd_momentum", "SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd_nesterov", "SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adam", "Adam", {"learning_rate": 0.01}),
    ("adam_amsgrad", "Adam", {"learning_rate": 0.01, "amsgrad": True, "beta_1": 0.8, "epsilon": 1e-3}),
    ("rmsprop", "RMSprop", {"learning_rate": 0.01}),
    (
        "rmsprop_centered_momentum",
        "RMSprop",
        {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True},
    ),
    ("adagrad", "Adagrad", {"learning_rate": 0.1}),
    ("adadelta", "Adadelta", {"learning_rate": 1.0, "rho": 0.9}),
]


def problem():
    """Float32 starting weights and STEPS gradient lists, of both signs and of
    scales 1e-3 .. 10 (so a sign or a square that goes missing shows)."""
    rng = np.random.default_rng(20261129)
    weights = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [
        [(rng.standard_normal(s) * 10 ** rng.uniform(-3, 1)).astype(np.float32) for s in SHAPES]
        for _ in range(STEPS)
    ]
    return weights, grads


def main() -> int:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    weights0, grads = problem()
    arrays = {f"weights0/{i}": w for i, w in enumerate(weights0)}
    arrays.update({f"grads/{k}/{i}": g for k, step in enumerate(grads) for i, g in enumerate(step)})
    for case, class_name, kwargs in CASES:
        opt = getattr(keras.optimizers, class_name)(**kwargs)
        variables = [keras.Variable(w) for w in weights0]
        for k, step in enumerate(grads):
            opt.apply_gradients(zip([tf.constant(g) for g in step], variables))
            for i, v in enumerate(variables):
                arrays[f"{case}/step{k + 1}/{i}"] = v.numpy()
    meta = {
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "steps": STEPS,
        "n_weights": len(SHAPES),
        "cases": [[c, n, kw] for c, n, kw in CASES],
    }
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(OUT, **arrays)
    print(
        f"wrote {OUT} ({OUT.stat().st_size} bytes): {len(CASES)} cases x {STEPS} steps, "
        f"Keras {keras.__version__}, TensorFlow {tf.__version__}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
