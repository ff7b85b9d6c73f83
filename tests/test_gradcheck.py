"""numvgg.debug.gradcheck: the checker itself must measure correctly and catch
wrong backward passes (a checker that always passes would be worse than none)."""

import numpy as np
import pytest

import numvgg.layers
from numvgg.debug import gradcheck
from numvgg.debug.gradcheck import (
    GradCheckReport,
    check_all_layers,
    check_layer,
    check_op,
    numerical_gradient_array,
    rel_error,
)
from numvgg.layers import Conv2D, Dense, Dropout
from numvgg.ops import activations as act
from numvgg.ops.dense import dense_backward, dense_forward


def test_rel_error_formula():
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    # max over elements of |a-b| / (|a|+|b|): (1.1-1)/2.1 beats (2.05-2)/4.05.
    assert rel_error([1.0, 2.0], [1.1, 2.05]) == pytest.approx(0.1 / 2.1)
    # The 1e-8 floor: two tiny numbers are not "100% apart".
    assert rel_error([1e-12], [-1e-12]) == pytest.approx(2e-12 / 1e-8)
    assert rel_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(2), np.zeros(3))


def test_numerical_gradient_of_a_known_function(rng):
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    x_before = x.copy()
    grad = numerical_gradient_array(lambda a: a**3, x, dout)
    np.testing.assert_allclose(grad, 3 * x_before**2 * dout, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(x, x_before)  # every nudge was undone


def test_numerical_gradient_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient_array(lambda a: a, np.ones(3, np.float32), np.ones(3))


def test_check_op_passes_a_right_backward_and_leaves_inputs_alone(rng):
    x, kernel, bias = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    copies = [a.copy() for a in (x, kernel, bias)]
    errors = check_op(dense_forward, dense_backward, x, kernel, bias, names=("x", "kernel", "bias"))
    assert set(errors) == {"x", "kernel", "bias"} and max(errors.values()) < 1e-7
    for a, b in zip((x, kernel, bias), copies):
        np.testing.assert_array_equal(a, b)


def test_check_op_catches_a_wrong_backward(rng):
    def relu_backward_forgets_mask(dout, mask):
        return dout  # the classic bug: gradient flows everywhere

    errors = check_op(act.relu_forward, relu_backward_forgets_mask, rng.standard_normal((4, 5)))
    assert errors["input0"] > 0.1


def test_random_dout_catches_a_backward_that_ignores_dout(rng):
    """With dout = 1 this bug would pass; the random dout exposes it."""

    def sigmoid_backward_ignores_dout(dout, s):
        return s * (1 - s)

    errors = check_op(act.sigmoid_forward, sigmoid_backward_ignores_dout, rng.standard_normal(6))
    assert errors["input0"] > 0.1


def test_check_op_catches_a_transposed_weight_gradient(rng):
    def dense_backward_wrong_dw(dout, cache):
        dx, dw, db = dense_backward(dout, cache)
        return dx, dw[::-1], db  # rows in the wrong order

    errors = check_op(
        dense_forward,
        dense_backward_wrong_dw,
        rng.standard_normal((3, 4)),
        rng.standard_normal((4, 2)),
        None,
        names=("x", "kernel", "bias"),
    )
    assert errors["x"] < 1e-7 and errors["kernel"] > 0.1 and "bias" not in errors


def test_check_op_argument_errors(rng):
    with pytest.raises(ValueError, match="2 inputs but 1 names"):
        check_op(
            dense_forward,
            dense_backward,
            rng.standard_normal((2, 3)),
            rng.standard_normal((3, 1)),
            names=("x",),
        )


def test_check_layer_reports_input_and_every_weight():
    errors = check_layer(Conv2D(3, (3, 3), strides=2, padding="same", activation="relu"), (2, 5, 6, 2))
    assert list(errors) == ["x", "kernel", "bias"]
    assert max(errors.values()) < 1e-6, errors
    assert list(check_layer(Dense(2, use_bias=False), (3, 4))) == ["x", "kernel"]


def test_check_layer_is_repeatable_and_seeded():
    layer = Dense(3, activation="tanh")
    assert check_layer(layer, (2, 4), seed=3) == check_layer(layer, (2, 4), seed=3)
    assert check_layer(layer, (2, 4), seed=3) != check_layer(layer, (2, 4), seed=4)


def test_check_layer_catches_a_broken_layer(monkeypatch):
    """A bug in an op (bias gradient summed over the wrong axis) shows up in the layer check."""
    from numvgg.ops import dense as dense_ops

    def broken(dout, cache, need_input_grad=True, need_weight_grads=True):
        dx, dw, db = dense_backward(dout, cache, need_input_grad, need_weight_grads)
        return dx, dw, dout[0]  # only the first sample's gradient

    monkeypatch.setattr(dense_ops, "dense_backward", broken)
    errors = check_layer(Dense(3), (4, 5))
    assert errors["bias"] > 0.1 and errors["kernel"] < 1e-6


def test_check_layer_dropout_in_training_uses_one_mask():
    errors = check_layer(Dropout(0.5, seed=2), (3, 6), training=True)
    assert errors["x"] < 1e-6


def test_check_all_layers_covers_every_layer_type_and_passes():
    report = check_all_layers()
    assert isinstance(report, GradCheckReport)
    assert report.passed, str(report)
    checked = {case.split()[0] for case, _, _ in report.rows}
    # Classes, not names (MaxPool2D is MaxPooling2D). Not single-input layers: the base
    # class, the graph's entry points, and the merge layers (checked with lists of inputs
    # in tests/test_merging.py).
    every_type = {getattr(numvgg.layers, name).__name__ for name in numvgg.layers.__all__} - {
        "Layer",
        "Input",
        "InputLayer",
        "KerasTensor",
        "Concatenate",
        "Add",
        "Multiply",
        "Average",
        "ResizeLike",  # takes [x, reference]: checked in tests/test_hed_app.py
    }
    assert checked == every_type
    assert report.max_error < gradcheck.TOLERANCE


def test_report_table_and_verdicts():
    report = GradCheckReport(tolerance=1e-6)
    report.add("Dense relu on 3x7", {"x": 2e-9, "kernel": 3e-3})
    text = str(report)
    lines = text.splitlines()
    assert lines[0].split() == ["case", "tensor", "rel.", "error", "result"]
    assert any(
        line.startswith("Dense relu on 3x7") and "x" in line and line.endswith("PASS") for line in lines
    )
    assert any("kernel" in line and "3.00e-03" in line and line.endswith("FAIL") for line in lines)
    assert "1 FAILED" in lines[-1] and "max error 3.00e-03" in lines[-1]
    assert not report.passed and report.failures == [("Dense relu on 3x7", "kernel", 3e-3)]


def test_check_layer_takes_a_whole_nested_model():
    """A model is checked as one function of its input and of every weight inside it
    (a float64 twin rebuilt from its config); a wrong backward inside shows up."""
    from numvgg.layers import AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten, Input
    from numvgg.models import Sequential

    numvgg.set_random_seed(0)
    inner = Sequential(
        [Input((6, 6, 2)), Conv2D(3, 3, activation="tanh", name="c"), AveragePooling2D()], name="inner"
    )
    model = Sequential([inner, BatchNormalization(), Dropout(0.3), Flatten(), Dense(2, activation="softmax")])
    errors = gradcheck.check_layer(model, (2, 6, 6, 2), training=True, verbose=0)
    assert set(errors) == {"x", *(n for n in model.weight_names if "moving" not in n)}
    assert max(errors.values()) < 1e-6, errors
    assert model.get_layer("c").dtype == np.float32  # the model itself is untouched

    from numvgg.layers.pooling import AveragePooling2D as Avg

    real = Avg.backward
    try:
        Avg.backward = lambda self, dout, **kw: 0.5 * real(self, dout, **kw)  # a wrong derivative
        broken = gradcheck.check_layer(model, (2, 6, 6, 2), training=True, verbose=0)
    finally:
        Avg.backward = real
    assert broken["x"] > 0.1 and broken["c/kernel"] > 0.1
