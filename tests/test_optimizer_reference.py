"""numvgg's optimizers against Keras' recorded updates (tests/reference/optimizers.npz),
without TensorFlow: the fast inner loop (``pytest -m "not keras"``) still catches a
wrong update rule. tests/reference/make_optimizer_refs.py writes the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from numvgg import optimizers

REFERENCE = Path(__file__).resolve().parent / "reference" / "optimizers.npz"


def _load():
    with np.load(REFERENCE, allow_pickle=False) as data:
        arrays = dict(data)
    return arrays, json.loads(str(arrays.pop("meta")))


ARRAYS, META = _load()
CASES = {case: (class_name, kwargs) for case, class_name, kwargs in META["cases"]}


def _inputs():
    n, steps = META["n_weights"], META["steps"]
    weights0 = [ARRAYS[f"weights0/{i}"] for i in range(n)]
    grads = [[ARRAYS[f"grads/{k}/{i}"] for i in range(n)] for k in range(steps)]
    return weights0, grads


def test_reference_covers_the_rules_that_matter():
    assert set(CASES) == {
        "sgd",
        "sgd_momentum",
        "sgd_nesterov",
        "adam",
        "adam_amsgrad",
        "rmsprop",
        "rmsprop_centered_momentum",
        "adagrad",
        "adadelta",
    }
    assert META["keras"].startswith("3."), META


@pytest.mark.parametrize("case", sorted(CASES))
def test_updates_match_recorded_keras(case):
    class_name, kwargs = CASES[case]
    opt = getattr(optimizers, class_name)(**kwargs)
    weights0, grads = _inputs()
    weights = [w.copy() for w in weights0]
    for k, step in enumerate(grads, start=1):
        opt.apply(step, weights)
        for i, w in enumerate(weights):
            expected = ARRAYS[f"{case}/step{k}/{i}"]
            assert not np.array_equal(expected, weights0[i]), "the reference did not move"
            np.testing.assert_allclose(
                w, expected, rtol=1e-6, atol=1e-7, err_msg=f"{class_name}({kwargs}) weight {i} after step {k}"
            )
